//! Configuration from flags, environment variables and an optional TOML file, in that
//! order of precedence.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::collector::cost::Prices;
use crate::collector::network::DEFAULT_IGNORE;

/// Every collector the agent knows.
pub const COLLECTORS: &[&str] = &[
    "cpu",
    "memory",
    "filesystem",
    "disk",
    "network",
    "gpu",
    "cost",
];

/// Command line and environment.
#[derive(Debug, Parser)]
#[command(
    name = "tars-agent",
    version,
    about = "Node agent: GPU and host metrics, service probes, node cost, on /metrics"
)]
pub struct Cli {
    /// Address to serve /metrics, /healthz and /readyz on [default: 0.0.0.0:9400]
    #[arg(long, env = "TARS_AGENT_LISTEN")]
    pub listen: Option<String>,
    /// Seconds between collections, at least 0.1 [default: 15]
    #[arg(long, env = "TARS_AGENT_INTERVAL")]
    pub interval: Option<f64>,
    /// Seconds a collector's run may take before it is reported down [default: 5]
    #[arg(long, env = "TARS_AGENT_COLLECTOR_TIMEOUT")]
    pub collector_timeout: Option<f64>,
    /// Seconds one probe may take in all (connect, query, reply), less than the collector
    /// timeout [default: 2]
    #[arg(long, env = "TARS_AGENT_PROBE_TIMEOUT")]
    pub probe_timeout: Option<f64>,
    /// TOML configuration file
    #[arg(long, env = "TARS_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Collectors to run, comma separated [default: all of cpu,memory,filesystem,disk,network,gpu,cost]
    #[arg(long, env = "TARS_AGENT_COLLECTORS", value_delimiter = ',')]
    pub collectors: Option<Vec<String>>,
    /// Regular expression of network interfaces to skip
    #[arg(long, env = "TARS_AGENT_NET_IGNORE")]
    pub net_ignore: Option<String>,
    /// Where procfs is mounted
    #[arg(long, env = "TARS_AGENT_PROCFS")]
    pub procfs: Option<PathBuf>,
    /// Where the host's root filesystem is mounted (in a container: e.g. /host) [default: /]
    #[arg(long, env = "TARS_AGENT_ROOTFS")]
    pub rootfs: Option<PathBuf>,
    /// The kubelet's pod log directory, for GPU memory per pod [default: /var/log/pods]
    #[arg(long, env = "TARS_AGENT_POD_LOGS")]
    pub pod_logs: Option<PathBuf>,
    /// Node name (the Kubernetes downward API's spec.nodeName)
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,
    /// Seconds between attempts to initialise NVML when it is unavailable [default: 60]
    #[arg(long, env = "TARS_AGENT_GPU_RETRY")]
    pub gpu_retry: Option<f64>,
    /// The NVML library to load, for a driver installed where the loader does not look
    /// [default: libnvidia-ml.so.1 from the library path]
    #[arg(long, env = "TARS_AGENT_NVML_LIBRARY")]
    pub nvml_library: Option<PathBuf>,
    /// Redis to probe, host:port
    #[arg(long, env = "TARS_AGENT_REDIS")]
    pub redis: Option<String>,
    /// Redis password
    #[arg(long, env = "REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    /// PostgreSQL to probe: a libpq connection string or URL
    #[arg(long, env = "TARS_AGENT_POSTGRES", hide_env_values = true)]
    pub postgres: Option<String>,
    /// ChromaDB to probe, base URL
    #[arg(long, env = "TARS_AGENT_CHROMADB")]
    pub chromadb: Option<String>,
    /// Ollama to probe, base URL
    #[arg(long, env = "TARS_AGENT_OLLAMA")]
    pub ollama: Option<String>,
}

/// The TOML file: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub interval: Option<f64>,
    pub collectors: Option<Vec<String>>,
    pub net_ignore: Option<String>,
    pub procfs: Option<PathBuf>,
    pub rootfs: Option<PathBuf>,
    pub pod_logs: Option<PathBuf>,
    pub node_name: Option<String>,
    pub gpu_retry: Option<f64>,
    pub gpu_per_container: Option<bool>,
    pub nvml_library: Option<PathBuf>,
    pub collector_timeout: Option<f64>,
    pub probe_timeout: Option<f64>,
    pub prices: Prices,
    pub probes: Probes,
}

/// Services to probe.
#[derive(Debug, Default, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Probes {
    pub redis: Option<String>,
    pub redis_password: Option<String>,
    pub postgres: Option<String>,
    pub chromadb: Option<String>,
    pub ollama: Option<String>,
}

/// The agent's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: String,
    pub interval: Duration,
    pub collectors: Vec<String>,
    pub net_ignore: String,
    pub procfs: PathBuf,
    pub rootfs: PathBuf,
    pub pod_logs: PathBuf,
    pub node_name: String,
    pub gpu_retry: Duration,
    pub gpu_per_container: bool,
    /// The NVML library to load; `None`: `libnvidia-ml.so.1` from the library path.
    pub nvml_library: Option<PathBuf>,
    /// How long one collector's run may take before it is reported down.
    pub collector_timeout: Duration,
    /// How long one probe may take in all: connect, query and reply.
    pub probe_timeout: Duration,
    pub prices: Prices,
    pub probes: Probes,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:9400".into(),
            interval: Duration::from_secs(15),
            collectors: COLLECTORS.iter().map(|s| s.to_string()).collect(),
            net_ignore: DEFAULT_IGNORE.into(),
            procfs: "/proc".into(),
            rootfs: "/".into(),
            pod_logs: "/var/log/pods".into(),
            node_name: String::new(),
            gpu_retry: Duration::from_secs(60),
            gpu_per_container: false,
            nvml_library: None,
            collector_timeout: Duration::from_secs(5),
            probe_timeout: Duration::from_secs(2),
            prices: Prices::default(),
            probes: Probes::default(),
        }
    }
}

/// The shortest collection interval: shorter ones would keep a core busy collecting.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest collector and probe timeouts: below them nothing could answer in time.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(10);

fn seconds(what: &str, v: f64, min: Duration) -> Result<Duration, String> {
    if v.is_finite() && v >= min.as_secs_f64() && v <= 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "{what} must be a number of seconds from {} to 86400, not {v}",
            min.as_secs_f64()
        ))
    }
}

/// Whether a collector reading procfs is enabled.
fn needs_procfs(collectors: &[String]) -> bool {
    collectors
        .iter()
        .any(|c| ["cpu", "memory", "filesystem", "disk", "network"].contains(&c.as_str()))
}

impl Config {
    /// Merges flags and environment (`cli`) over the TOML file over the defaults.
    pub fn from_cli(cli: Cli) -> Result<Config, String> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let d = Config::default();
        let collectors = cli.collectors.or(file.collectors).unwrap_or(d.collectors);
        for c in &collectors {
            if !COLLECTORS.contains(&c.as_str()) {
                return Err(format!(
                    "unknown collector {c:?}; known: {}",
                    COLLECTORS.join(", ")
                ));
            }
        }
        let net_ignore = cli.net_ignore.or(file.net_ignore).unwrap_or(d.net_ignore);
        regex_lite::Regex::new(&net_ignore)
            .map_err(|e| format!("--net-ignore {net_ignore:?}: {e}"))?;
        let p = file.prices;
        for (name, v) in [
            ("cpu_core_hour", p.cpu_core_hour),
            ("memory_gib_hour", p.memory_gib_hour),
            ("gpu_hour", p.gpu_hour),
            ("storage_gib_hour", p.storage_gib_hour),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!(
                    "prices.{name} must be a non-negative number, not {v}"
                ));
            }
        }
        let pr = file.probes;
        let collector_timeout = match cli.collector_timeout.or(file.collector_timeout) {
            Some(v) => seconds("collector_timeout", v, MIN_TIMEOUT)?,
            None => d.collector_timeout,
        };
        let probe_timeout = match cli.probe_timeout.or(file.probe_timeout) {
            Some(v) => seconds("probe_timeout", v, MIN_TIMEOUT)?,
            None => d.probe_timeout,
        };
        // A probe cut off by the collector deadline would lose its series instead of
        // reporting the service down.
        if probe_timeout >= collector_timeout {
            return Err(format!(
                "probe_timeout ({probe_timeout:?}) must be less than collector_timeout \
                 ({collector_timeout:?})"
            ));
        }
        let procfs = cli.procfs.or(file.procfs).unwrap_or(d.procfs);
        if needs_procfs(&collectors) && !procfs.is_dir() {
            return Err(format!(
                "procfs {} is not a directory (set --procfs to where procfs is mounted)",
                procfs.display()
            ));
        }
        let rootfs = cli.rootfs.or(file.rootfs).unwrap_or(d.rootfs);
        // Without the host's root every mount point is unreachable: the filesystem
        // collector would run with nothing to report.
        if collectors.iter().any(|c| c == "filesystem") && !rootfs.is_dir() {
            return Err(format!(
                "rootfs {} is not a directory (set --rootfs to where the host's / is \
                 mounted, or leave the filesystem collector out)",
                rootfs.display()
            ));
        }
        Ok(Config {
            listen: cli.listen.or(file.listen).unwrap_or(d.listen),
            interval: match cli.interval.or(file.interval) {
                Some(v) => seconds("interval", v, MIN_INTERVAL)?,
                None => d.interval,
            },
            collectors,
            net_ignore,
            procfs,
            rootfs,
            pod_logs: cli.pod_logs.or(file.pod_logs).unwrap_or(d.pod_logs),
            node_name: cli.node_name.or(file.node_name).unwrap_or(d.node_name),
            gpu_retry: match cli.gpu_retry.or(file.gpu_retry) {
                Some(v) => seconds("gpu_retry", v, MIN_TIMEOUT)?,
                None => d.gpu_retry,
            },
            gpu_per_container: file.gpu_per_container.unwrap_or(false),
            nvml_library: cli.nvml_library.or(file.nvml_library),
            collector_timeout,
            probe_timeout,
            prices: p,
            probes: Probes {
                redis: cli.redis.or(pr.redis),
                redis_password: cli.redis_password.or(pr.redis_password),
                postgres: cli.postgres.or(pr.postgres),
                chromadb: cli.chromadb.or(pr.chromadb),
                ollama: cli.ollama.or(pr.ollama),
            },
        })
    }
}
