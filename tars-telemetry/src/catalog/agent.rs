//! The families the node agent (tars-agent) emits: GPUs, the host, probes, itself.

use super::{B, Domain, Merge, MetricDef, MetricKind, NONE, S};

// Node agent (tars-agent): GPUs, per device
def!(
    GPU_UTILIZATION,
    "tars_gpu_utilization_percent",
    Gauge,
    Gpu,
    None,
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU utilization, 0-100 (the semconv hw.gpu.utilization ratio x 100)."
);
def!(
    GPU_MEMORY_USED,
    "tars_gpu_memory_used_bytes",
    Gauge,
    Gpu,
    B,
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU memory in use."
);
def!(
    GPU_MEMORY_TOTAL,
    "tars_gpu_memory_total_bytes",
    Gauge,
    Gpu,
    B,
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU memory installed."
);
def!(
    GPU_TEMPERATURE,
    "tars_gpu_temperature_celsius",
    Gauge,
    Gpu,
    Some("celsius"),
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU core temperature."
);
def!(
    GPU_POWER,
    "tars_gpu_power_watts",
    Gauge,
    Gpu,
    Some("watts"),
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU power draw."
);
def!(
    GPU_ENERGY,
    "tars_gpu_energy_joules_total",
    Counter,
    Gpu,
    Some("joules"),
    ["gpu_id", "uuid", "name"],
    NONE,
    "GPU energy consumed since the driver loaded."
);
def!(
    GPU_CLOCK,
    "tars_gpu_clock_hertz",
    Gauge,
    Gpu,
    Some("hertz"),
    ["gpu_id", "uuid", "name", "clock"],
    NONE,
    "GPU clock frequency, by clock (graphics, sm, memory)."
);
def!(
    GPU_THROTTLED,
    "tars_gpu_throttled",
    Gauge,
    Gpu,
    None,
    ["gpu_id", "uuid", "name", "reason"],
    NONE,
    "1 while the GPU is throttled for this reason, else 0."
);
def!(
    GPU_ECC_ERRORS,
    "tars_gpu_ecc_errors_total",
    Counter,
    Gpu,
    None,
    ["gpu_id", "uuid", "name", "type"],
    NONE,
    "ECC memory errors since the driver loaded, by type (corrected, uncorrected)."
);
def!(
    GPU_POD_MEMORY,
    "tars_gpu_pod_memory_used_bytes",
    Gauge,
    Gpu,
    B,
    ["gpu_id", "namespace", "pod", "container"],
    NONE,
    "GPU memory used by the processes of one Kubernetes container."
);
def!(
    GPU_POD_UTILIZATION,
    "tars_gpu_pod_utilization_percent",
    Gauge,
    Gpu,
    None,
    ["gpu_id", "namespace", "pod", "container"],
    NONE,
    "GPU (SM) utilization of the processes of one Kubernetes container, 0-100, from NVML's per-process samples; absent where NVML cannot attribute it (MIG instances, no recent sample)."
);
def!(
    GPU_DEVICES,
    "tars_gpu_devices",
    Gauge,
    Gpu,
    None,
    [],
    NONE,
    "GPUs found on this node; 0 on a node without a GPU or without the NVIDIA driver."
);
// Node agent: host
def!(
    NODE_CPU,
    "tars_node_cpu_seconds_total",
    Counter,
    Host,
    S,
    ["cpu", "mode"],
    NONE,
    "CPU time by CPU and mode, from /proc/stat."
);
def!(
    NODE_LOAD,
    "tars_node_load_average",
    Gauge,
    Host,
    None,
    ["window"],
    NONE,
    "Load average over 1m, 5m and 15m."
);
def!(
    NODE_MEMORY_TOTAL,
    "tars_node_memory_total_bytes",
    Gauge,
    Host,
    B,
    [],
    NONE,
    "Physical memory installed."
);
def!(
    NODE_MEMORY_AVAILABLE,
    "tars_node_memory_available_bytes",
    Gauge,
    Host,
    B,
    [],
    NONE,
    "Memory available to new work (MemAvailable)."
);
def!(
    NODE_FS_SIZE,
    "tars_node_filesystem_size_bytes",
    Gauge,
    Host,
    B,
    ["device", "mountpoint", "fstype"],
    NONE,
    "Filesystem size."
);
def!(
    NODE_FS_AVAILABLE,
    "tars_node_filesystem_available_bytes",
    Gauge,
    Host,
    B,
    ["device", "mountpoint", "fstype"],
    NONE,
    "Filesystem space available to unprivileged users."
);
def!(
    NODE_DISK_READ,
    "tars_node_disk_read_bytes_total",
    Counter,
    Host,
    B,
    ["device"],
    NONE,
    "Bytes read from a block device."
);
def!(
    NODE_DISK_WRITTEN,
    "tars_node_disk_written_bytes_total",
    Counter,
    Host,
    B,
    ["device"],
    NONE,
    "Bytes written to a block device."
);
def!(
    NODE_NET_RX,
    "tars_node_network_receive_bytes_total",
    Counter,
    Host,
    B,
    ["interface"],
    NONE,
    "Bytes received on a network interface."
);
def!(
    NODE_NET_TX,
    "tars_node_network_transmit_bytes_total",
    Counter,
    Host,
    B,
    ["interface"],
    NONE,
    "Bytes sent on a network interface."
);
def!(
    NODE_HOURLY_COST,
    "tars_node_hourly_cost_dollars",
    Gauge,
    Host,
    Some("dollars"),
    ["resource"],
    NONE,
    "What the node's resources cost per hour at the configured prices, by resource (cpu, memory, gpu, storage)."
);
def!(
    NODE_RESOURCE_USED,
    "tars_node_resource_used_ratio",
    Gauge,
    Host,
    Some("ratio"),
    ["resource"],
    NONE,
    "Share of the node's resource in use, 0-1, by resource."
);
// Node agent: probes of the services the platform depends on
def!(
    PROBE_UP,
    "tars_probe_up",
    Gauge,
    Probe,
    None,
    ["service", "target"],
    NONE,
    "1 when the last probe of the service succeeded, else 0 (service: redis, postgresql, chromadb, ollama)."
);
def!(
    PROBE_DURATION,
    "tars_probe_duration_seconds",
    Gauge,
    Probe,
    S,
    ["service", "target"],
    NONE,
    "How long the last probe took."
);
def!(
    POSTGRESQL_CONNECTIONS,
    "tars_postgresql_connections",
    Gauge,
    Probe,
    None,
    ["target"],
    NONE,
    "Open PostgreSQL connections (pg_stat_activity)."
);
def!(
    POSTGRESQL_REPLICATION_LAG,
    "tars_postgresql_replication_lag_seconds",
    Gauge,
    Probe,
    S,
    ["target"],
    NONE,
    "Replication lag of a PostgreSQL replica; 0 on a primary."
);
def!(
    OLLAMA_MODELS,
    "tars_ollama_models",
    Gauge,
    Probe,
    None,
    ["target"],
    NONE,
    "Models Ollama has available."
);
// Node agent: itself
def!(
    AGENT_BUILD_INFO,
    "tars_agent_build_info",
    Info,
    Agent,
    None,
    ["version", "node"],
    NONE,
    "The agent's version and the node it runs on."
);
def!(
    AGENT_COLLECTOR_UP,
    "tars_agent_collector_up",
    Gauge,
    Agent,
    None,
    ["collector"],
    NONE,
    "1 when the collector's last run succeeded, else 0."
);
def!(
    AGENT_COLLECTOR_DURATION,
    "tars_agent_collector_duration_seconds",
    Gauge,
    Agent,
    S,
    ["collector"],
    NONE,
    "How long the collector's last run took."
);
def!(
    AGENT_COLLECTOR_ERRORS,
    "tars_agent_collector_errors_total",
    Counter,
    Agent,
    None,
    ["collector"],
    NONE,
    "Failed collector runs."
);

/// Families emitted by the node agent.
pub const AGENT: &[MetricDef] = &[
    GPU_UTILIZATION,
    GPU_MEMORY_USED,
    GPU_MEMORY_TOTAL,
    GPU_TEMPERATURE,
    GPU_POWER,
    GPU_ENERGY,
    GPU_CLOCK,
    GPU_THROTTLED,
    GPU_ECC_ERRORS,
    GPU_POD_MEMORY,
    GPU_POD_UTILIZATION,
    GPU_DEVICES,
    NODE_CPU,
    NODE_LOAD,
    NODE_MEMORY_TOTAL,
    NODE_MEMORY_AVAILABLE,
    NODE_FS_SIZE,
    NODE_FS_AVAILABLE,
    NODE_DISK_READ,
    NODE_DISK_WRITTEN,
    NODE_NET_RX,
    NODE_NET_TX,
    NODE_HOURLY_COST,
    NODE_RESOURCE_USED,
    PROBE_UP,
    PROBE_DURATION,
    POSTGRESQL_CONNECTIONS,
    POSTGRESQL_REPLICATION_LAG,
    OLLAMA_MODELS,
    AGENT_BUILD_INFO,
    AGENT_COLLECTOR_UP,
    AGENT_COLLECTOR_DURATION,
    AGENT_COLLECTOR_ERRORS,
];
