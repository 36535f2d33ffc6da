//! GPUs through NVML: utilization, memory, temperature, power, energy, clocks, throttle
//! reasons, ECC errors, MIG instances, and GPU memory per Kubernetes pod.
//!
//! The collector reads devices through the [`GpuSource`] trait, so tests drive it with
//! recorded readings (error paths included) and production uses [`NvmlSource`].
//!
//! A node without a GPU, without the NVIDIA driver or without libnvidia-ml is in a normal
//! state, not a failure: the collector is up, exports `tars_gpu_devices 0`, logs one line,
//! and checks again on its retry interval. A driver that is present but failing (any
//! other initialisation error, or a device that cannot be read) is a failure: the
//! collector reports down, logs once per change of state, and a device lost at run time
//! has its series dropped rather than frozen.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use tars_telemetry::catalog::{
    GPU_CLOCK, GPU_DEVICES, GPU_ECC_ERRORS, GPU_ENERGY, GPU_MEMORY_TOTAL, GPU_MEMORY_USED,
    GPU_POD_MEMORY, GPU_POD_UTILIZATION, GPU_POWER, GPU_TEMPERATURE, GPU_THROTTLED,
    GPU_UTILIZATION,
};

use super::{CollectError, Collector, NodeFacts};
use crate::Emitter;

/// One device's readings. Optional fields are what some devices do not support.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuReading {
    /// The device index, or `N/M` for MIG instance M of GPU N.
    pub id: String,
    pub uuid: String,
    pub name: String,
    pub utilization_percent: Option<f64>,
    pub memory_used_bytes: Option<f64>,
    pub memory_total_bytes: Option<f64>,
    pub temperature_celsius: Option<f64>,
    pub power_watts: Option<f64>,
    pub energy_joules: Option<f64>,
    /// (clock: graphics, sm, memory; hertz)
    pub clocks: Vec<(&'static str, f64)>,
    /// (reason, active)
    pub throttle_reasons: Vec<(&'static str, bool)>,
    /// (corrected, uncorrected), where ECC is enabled.
    pub ecc_errors: Option<(f64, f64)>,
    /// (pid, GPU memory bytes) of the processes using the device.
    pub processes: Vec<(u32, f64)>,
    /// (pid, SM utilization 0-100) of the processes that used the device lately, from
    /// NVML's per-process samples (none on MIG instances, where NVML has none).
    pub process_utilization: Vec<(u32, f64)>,
}

/// Why a device or the whole library could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuError {
    /// No GPU here: no NVIDIA driver loaded, no libnvidia-ml, or no device. A normal
    /// state for a CPU-only node.
    NoGpu(String),
    /// The driver is present but failing.
    Failed(String),
}

impl GpuError {
    /// The reason, without its kind.
    pub fn reason(&self) -> &str {
        match self {
            GpuError::NoGpu(s) | GpuError::Failed(s) => s,
        }
    }
}

impl std::fmt::Display for GpuError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for GpuError {}

/// One device's readings, or the device's id and why it could not be read.
pub type DeviceReading = Result<GpuReading, (String, GpuError)>;

/// A source of GPU readings: NVML in production, recorded readings in tests.
pub trait GpuSource: Send {
    /// Reads every device. The outer error means the library itself failed (the
    /// collector reconnects); an inner error means one device failed (it is dropped).
    fn read(&mut self) -> Result<Vec<DeviceReading>, GpuError>;
}

/// Opens a [`GpuSource`]: loading NVML can fail (no driver, no GPU) and is retried.
pub type GpuConnector = Box<dyn FnMut() -> Result<Box<dyn GpuSource>, GpuError> + Send>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Starting,
    Ready,
    /// No GPU on this node: up, with 0 devices.
    NoGpu(String),
    /// The driver fails: down.
    Unavailable(String),
}

/// The gpu collector.
pub struct GpuCollector {
    connect: GpuConnector,
    source: Option<Box<dyn GpuSource>>,
    retry_every: Duration,
    last_attempt: Option<Instant>,
    state: State,
    failed_devices: BTreeMap<String, String>,
    pods: PodResolver,
    /// Log lines written, for tests of "one line per change of state".
    pub log_lines: u64,
}

impl std::fmt::Debug for GpuCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuCollector")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl GpuCollector {
    pub fn new(connect: GpuConnector, retry_every: Duration, pods: PodResolver) -> Self {
        GpuCollector {
            connect,
            source: None,
            retry_every,
            last_attempt: None,
            state: State::Starting,
            failed_devices: BTreeMap::new(),
            pods,
            log_lines: 0,
        }
    }

    /// The collector over the real NVML library: `library`, or `libnvidia-ml.so.1` from
    /// the library path.
    pub fn nvml(retry_every: Duration, pods: PodResolver, library: Option<PathBuf>) -> Self {
        Self::new(
            Box::new(move || {
                NvmlSource::open(library.as_deref()).map(|s| Box::new(s) as Box<dyn GpuSource>)
            }),
            retry_every,
            pods,
        )
    }

    fn transition(&mut self, next: State) {
        if self.state == next {
            return;
        }
        self.log_lines += 1;
        match &next {
            State::Ready => tracing::info!("gpu: NVML ready"),
            State::NoGpu(why) => tracing::info!(
                "gpu: no GPU on this node ({why}); exporting tars_gpu_devices 0, checking \
                 again every {:?}",
                self.retry_every
            ),
            State::Unavailable(why) => tracing::warn!(
                "gpu: unavailable ({why}); serving host metrics, retrying every {:?}",
                self.retry_every
            ),
            State::Starting => {}
        }
        self.state = next;
    }

    fn emit(&mut self, out: &mut Emitter, r: &GpuReading) {
        let l = [r.id.as_str(), r.uuid.as_str(), r.name.as_str()];
        let mut set = |def, v: Option<f64>| {
            if let Some(v) = v {
                out.set(def, &l, v);
            }
        };
        set(&GPU_UTILIZATION, r.utilization_percent);
        set(&GPU_MEMORY_USED, r.memory_used_bytes);
        set(&GPU_MEMORY_TOTAL, r.memory_total_bytes);
        set(&GPU_TEMPERATURE, r.temperature_celsius);
        set(&GPU_POWER, r.power_watts);
        set(&GPU_ENERGY, r.energy_joules);
        for (clock, hz) in &r.clocks {
            out.set(&GPU_CLOCK, &[l[0], l[1], l[2], clock], *hz);
        }
        for (reason, on) in &r.throttle_reasons {
            out.set(
                &GPU_THROTTLED,
                &[l[0], l[1], l[2], reason],
                f64::from(u8::from(*on)),
            );
        }
        if let Some((c, u)) = r.ecc_errors {
            out.set(&GPU_ECC_ERRORS, &[l[0], l[1], l[2], "corrected"], c);
            out.set(&GPU_ECC_ERRORS, &[l[0], l[1], l[2], "uncorrected"], u);
        }
        let mut per_pod: HashMap<(String, String, String), f64> = HashMap::new();
        for (pid, bytes) in &r.processes {
            if let Some(owner) = self.pods.owner(*pid) {
                *per_pod.entry(owner).or_default() += bytes;
            }
        }
        for ((ns, pod, container), bytes) in per_pod {
            out.set(&GPU_POD_MEMORY, &[&r.id, &ns, &pod, &container], bytes);
        }
        // Each pod's own share of a GPU that pods share (time-slicing, MPS): its
        // processes' samples, never the device's value.
        let mut per_pod: HashMap<(String, String, String), f64> = HashMap::new();
        for (pid, util) in &r.process_utilization {
            if let Some(owner) = self.pods.owner(*pid) {
                *per_pod.entry(owner).or_default() += util;
            }
        }
        for ((ns, pod, container), util) in per_pod {
            out.set(
                &GPU_POD_UTILIZATION,
                &[&r.id, &ns, &pod, &container],
                util.min(100.0),
            );
        }
    }
}

impl Collector for GpuCollector {
    fn name(&self) -> &'static str {
        "gpu"
    }

    fn collect(&mut self, out: &mut Emitter, facts: &mut NodeFacts) -> Result<(), CollectError> {
        if self.source.is_none() {
            let due = self
                .last_attempt
                .is_none_or(|t| t.elapsed() >= self.retry_every);
            if !due {
                return match &self.state {
                    State::NoGpu(_) => no_gpu(out, facts),
                    State::Unavailable(why) => Err(CollectError(why.clone())),
                    _ => Err(CollectError("not initialised".into())),
                };
            }
            self.last_attempt = Some(Instant::now());
            match (self.connect)() {
                Ok(s) => {
                    self.source = Some(s);
                    self.transition(State::Ready);
                }
                Err(GpuError::NoGpu(why)) => {
                    self.transition(State::NoGpu(why));
                    return no_gpu(out, facts);
                }
                Err(GpuError::Failed(why)) => {
                    self.transition(State::Unavailable(why.clone()));
                    return Err(CollectError(why));
                }
            }
        }
        let readings = match self.source.as_mut().map(|s| s.read()) {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                // The library failed as a whole (driver unloaded): reconnect later.
                self.source = None;
                self.last_attempt = Some(Instant::now());
                return match e {
                    GpuError::NoGpu(why) => {
                        self.transition(State::NoGpu(why));
                        no_gpu(out, facts)
                    }
                    GpuError::Failed(why) => {
                        self.transition(State::Unavailable(why.clone()));
                        Err(CollectError(why))
                    }
                };
            }
            None => return Err(CollectError("no source".into())),
        };
        self.pods.refresh();
        let found = readings.len() as f64;
        let (mut readable, mut util) = (0.0, 0.0);
        let mut failed = BTreeMap::new();
        for r in readings {
            match r {
                Ok(r) => {
                    readable += 1.0;
                    util += r.utilization_percent.unwrap_or(0.0) / 100.0;
                    self.failed_devices.remove(&r.id);
                    self.emit(out, &r);
                }
                Err((id, e)) => {
                    failed.insert(id, e.reason().to_string());
                }
            }
        }
        for (id, why) in &failed {
            if self.failed_devices.get(id) != Some(why) {
                self.log_lines += 1;
                tracing::warn!(gpu = %id, "gpu: device unreadable ({why}); its series are dropped");
            }
        }
        out.set(&GPU_DEVICES, &[], found);
        // A GPU that cannot be read still costs its price.
        facts.gpu_count = Some(found);
        facts.gpu_busy = (readable > 0.0).then(|| util / readable);
        let result = if failed.is_empty() {
            Ok(())
        } else {
            let list: Vec<String> = failed
                .iter()
                .map(|(id, why)| format!("{id}: {why}"))
                .collect();
            Err(CollectError(format!(
                "{} of {found} GPUs unreadable ({})",
                failed.len(),
                list.join("; ")
            )))
        };
        self.failed_devices = failed;
        result
    }
}

/// The state of a node without a GPU: up, no devices.
fn no_gpu(out: &mut Emitter, facts: &mut NodeFacts) -> Result<(), CollectError> {
    out.set(&GPU_DEVICES, &[], 0.0);
    facts.gpu_count = Some(0.0);
    Ok(())
}

/// Maps a PID to its Kubernetes (namespace, pod, container) through `/proc/PID/cgroup`
/// (pod UID and container id) and the kubelet's pod log directory
/// (`/var/log/pods/NAMESPACE_POD_UID`), both readable without privileges.
#[derive(Debug, Clone)]
pub struct PodResolver {
    procfs: PathBuf,
    pod_logs: PathBuf,
    per_container: bool,
    by_uid: HashMap<String, (String, String)>,
}

impl PodResolver {
    /// `per_container`: label by container id as well; by default GPU memory is
    /// aggregated per pod.
    pub fn new(
        procfs: impl Into<PathBuf>,
        pod_logs: impl Into<PathBuf>,
        per_container: bool,
    ) -> Self {
        PodResolver {
            procfs: procfs.into(),
            pod_logs: pod_logs.into(),
            per_container,
            by_uid: HashMap::new(),
        }
    }

    /// Rereads the pod log directory (once per collection, not per process).
    pub fn refresh(&mut self) {
        self.by_uid.clear();
        let Ok(dir) = std::fs::read_dir(&self.pod_logs) else {
            return;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // NAMESPACE_POD_UID; namespaces and pod names cannot contain '_'.
            let mut parts = name.splitn(3, '_');
            if let (Some(ns), Some(pod), Some(uid)) = (parts.next(), parts.next(), parts.next()) {
                self.by_uid
                    .insert(uid.replace('-', "_"), (ns.to_string(), pod.to_string()));
            }
        }
    }

    /// The (namespace, pod, container) of a process, if it runs in a known pod.
    pub fn owner(&self, pid: u32) -> Option<(String, String, String)> {
        let cgroup =
            std::fs::read_to_string(self.procfs.join(pid.to_string()).join("cgroup")).ok()?;
        let (uid, container) = parse_cgroup(&cgroup)?;
        let (ns, pod) = self.by_uid.get(&uid.replace('-', "_"))?;
        let container = if self.per_container {
            container.chars().take(12).collect()
        } else {
            String::new()
        };
        Some((ns.clone(), pod.clone(), container))
    }
}

/// Extracts (pod UID, container id) from a `/proc/PID/cgroup` file, for the cgroupfs
/// (`/kubepods/burstable/pod<uid>/<id>`) and systemd
/// (`kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope`) drivers.
pub fn parse_cgroup(text: &str) -> Option<(String, String)> {
    let is_uid_char = |c: char| c.is_ascii_hexdigit() || c == '-' || c == '_';
    for line in text.lines() {
        let path = line.rsplit(':').next()?;
        // "kubepods" contains "pod" too: take the occurrence followed by a UID.
        let uid = path.match_indices("pod").find_map(|(i, _)| {
            let rest = &path[i + 3..];
            let end = rest.find(|c: char| !is_uid_char(c)).unwrap_or(rest.len());
            (end >= 32).then(|| rest[..end].to_string())
        });
        let Some(uid) = uid else { continue };
        let last = path.rsplit('/').next().unwrap_or("");
        let id = last
            .trim_end_matches(".scope")
            .rsplit(['-', ':'])
            .next()
            .unwrap_or("");
        let container = if id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            id.to_string()
        } else {
            String::new()
        };
        return Some((uid, container));
    }
    None
}

/// Readings from the NVIDIA driver through nvml-wrapper.
pub struct NvmlSource {
    nvml: nvml_wrapper::Nvml,
}

impl NvmlSource {
    /// Loads libnvidia-ml (`library`, or `libnvidia-ml.so.1` from the library path) and
    /// initialises it. Fails with [`GpuError::NoGpu`] on a node without the library or
    /// the driver, with [`GpuError::Failed`] when the driver is there but fails.
    pub fn open(library: Option<&std::path::Path>) -> Result<Self, GpuError> {
        let mut builder = nvml_wrapper::Nvml::builder();
        if let Some(path) = library {
            builder.lib_path(path.as_os_str());
        }
        builder
            .init()
            .map(|nvml| NvmlSource { nvml })
            .map_err(|e| classify_init_error(&e))
    }
}

/// Sorts an initialisation error into "no GPU here" and "the driver fails".
pub fn classify_init_error(e: &nvml_wrapper::error::NvmlError) -> GpuError {
    use nvml_wrapper::error::NvmlError as E;
    let why = format!("NVML: {e}");
    match e {
        E::DriverNotLoaded | E::LibraryNotFound => GpuError::NoGpu(why),
        // dlopen's message: a missing library is absent, one that will not load is broken.
        E::LibloadingError(l) if l.to_string().contains("No such file or directory") => {
            GpuError::NoGpu(why)
        }
        _ => GpuError::Failed(why),
    }
}

fn read_device(d: &nvml_wrapper::Device<'_>, id: String) -> Result<GpuReading, GpuError> {
    use nvml_wrapper::bitmasks::device::ThrottleReasons as T;
    use nvml_wrapper::enum_wrappers::device::{Clock, EccCounter, MemoryError, TemperatureSensor};
    let err = |e: nvml_wrapper::error::NvmlError| GpuError::Failed(e.to_string());
    // Identity and memory are required: a device that cannot give them is lost.
    let uuid = d.uuid().map_err(err)?;
    let name = d.name().map_err(err)?;
    let mem = d.memory_info().map_err(err)?;
    let clocks = [
        ("graphics", Clock::Graphics),
        ("sm", Clock::SM),
        ("memory", Clock::Memory),
    ]
    .into_iter()
    .filter_map(|(n, c)| d.clock_info(c).ok().map(|mhz| (n, f64::from(mhz) * 1e6)))
    .collect();
    let throttle_reasons = d
        .current_throttle_reasons()
        .map(|t| {
            [
                ("gpu_idle", T::GPU_IDLE),
                ("applications_clocks", T::APPLICATIONS_CLOCKS_SETTING),
                ("sw_power_cap", T::SW_POWER_CAP),
                ("hw_slowdown", T::HW_SLOWDOWN),
                ("sync_boost", T::SYNC_BOOST),
                ("sw_thermal", T::SW_THERMAL_SLOWDOWN),
            ]
            .into_iter()
            .map(|(n, bit)| (n, t.contains(bit)))
            .collect()
        })
        .unwrap_or_default();
    let ecc = match (
        d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile),
        d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile),
    ) {
        (Ok(c), Ok(u)) => Some((c as f64, u as f64)),
        _ => None,
    };
    let processes = d
        .running_compute_processes()
        .map(|ps| {
            ps.into_iter()
                .filter_map(|p| match p.used_gpu_memory {
                    nvml_wrapper::enums::device::UsedGpuMemory::Used(b) => Some((p.pid, b as f64)),
                    nvml_wrapper::enums::device::UsedGpuMemory::Unavailable => None,
                })
                .collect()
        })
        .unwrap_or_default();
    // Samples of the last 10 s (NVML keeps a ring of them): the latest per process. None
    // (NOT_FOUND) when no process used the device lately; NOT_SUPPORTED on MIG.
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
        .saturating_sub(10_000_000);
    let mut latest: HashMap<u32, (u64, u32)> = HashMap::new();
    for s in d.process_utilization_stats(since).unwrap_or_default() {
        let e = latest.entry(s.pid).or_insert((s.timestamp, s.sm_util));
        if s.timestamp >= e.0 {
            *e = (s.timestamp, s.sm_util);
        }
    }
    let process_utilization = latest
        .into_iter()
        .map(|(pid, (_, sm))| (pid, f64::from(sm)))
        .collect();
    Ok(GpuReading {
        id,
        uuid,
        name,
        utilization_percent: d.utilization_rates().ok().map(|u| f64::from(u.gpu)),
        memory_used_bytes: Some(mem.used as f64),
        memory_total_bytes: Some(mem.total as f64),
        temperature_celsius: d.temperature(TemperatureSensor::Gpu).ok().map(f64::from),
        power_watts: d.power_usage().ok().map(|mw| f64::from(mw) / 1000.0),
        energy_joules: d
            .total_energy_consumption()
            .ok()
            .map(|mj| mj as f64 / 1000.0),
        clocks,
        throttle_reasons,
        ecc_errors: ecc,
        processes,
        process_utilization,
    })
}

impl GpuSource for NvmlSource {
    fn read(&mut self) -> Result<Vec<DeviceReading>, GpuError> {
        let n = self
            .nvml
            .device_count()
            .map_err(|e| GpuError::Failed(format!("NVML device count: {e}")))?;
        let mut out = Vec::new();
        for i in 0..n {
            let id = i.to_string();
            let device = match self.nvml.device_by_index(i) {
                Ok(d) => d,
                Err(e) => {
                    out.push(Err((id, GpuError::Failed(e.to_string()))));
                    continue;
                }
            };
            // MIG: each instance is reported as a GPU of its own, `N/M`.
            let migs = device.mig_device_count().unwrap_or(0);
            let mut any_mig = false;
            for m in 0..migs {
                if let Ok(mig) = device.mig_device_by_index(m) {
                    any_mig = true;
                    out.push(
                        read_device(&mig, format!("{i}/{m}")).map_err(|e| (format!("{i}/{m}"), e)),
                    );
                }
            }
            if !any_mig {
                out.push(read_device(&device, id.clone()).map_err(|e| (id, e)));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cgroup;

    #[test]
    fn cgroupfs_and_systemd_paths() {
        let v1 = "12:memory:/kubepods/burstable/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a\n";
        let (uid, c) = parse_cgroup(v1).unwrap();
        assert_eq!(uid, "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b");
        assert!(c.starts_with("3f2a1b0c9d8e"));
        let v2 = "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b.slice/cri-containerd-aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899.scope\n";
        let (uid, c) = parse_cgroup(v2).unwrap();
        assert_eq!(uid, "0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b");
        assert!(c.starts_with("aabbccddeeff"));
        assert!(parse_cgroup("0::/user.slice/user-1000.slice/session-2.scope\n").is_none());
    }
}
