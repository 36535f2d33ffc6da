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
    /// Seconds between collections [default: 15]
    #[arg(long, env = "TARS_AGENT_INTERVAL")]
    pub interval: Option<f64>,
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
            probe_timeout: Duration::from_secs(2),
            prices: Prices::default(),
            probes: Probes::default(),
        }
    }
}

fn seconds(what: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v < 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "{what} must be a number of seconds between 0 and 86400, not {v}"
        ))
    }
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
        Ok(Config {
            listen: cli.listen.or(file.listen).unwrap_or(d.listen),
            interval: match cli.interval.or(file.interval) {
                Some(v) => seconds("interval", v)?,
                None => d.interval,
            },
            collectors,
            net_ignore,
            procfs: cli.procfs.or(file.procfs).unwrap_or(d.procfs),
            rootfs: cli.rootfs.or(file.rootfs).unwrap_or(d.rootfs),
            pod_logs: cli.pod_logs.or(file.pod_logs).unwrap_or(d.pod_logs),
            node_name: cli.node_name.or(file.node_name).unwrap_or(d.node_name),
            gpu_retry: match cli.gpu_retry.or(file.gpu_retry) {
                Some(v) => seconds("gpu_retry", v)?,
                None => d.gpu_retry,
            },
            gpu_per_container: file.gpu_per_container.unwrap_or(false),
            probe_timeout: match file.probe_timeout {
                Some(v) => seconds("probe_timeout", v)?,
                None => d.probe_timeout,
            },
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
