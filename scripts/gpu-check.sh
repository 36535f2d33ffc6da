#!/usr/bin/env bash
# Exercises the agent's real NVML path on a machine with an NVIDIA GPU and driver.
# Build first (on any x86_64 Linux machine): cargo build --release -p tars-agent
# Then, on the GPU machine: scripts/gpu-check.sh [path/to/tars-agent] [output-dir]
# Writes the exposition and the agent's log to the output directory and fails unless
# every GPU family has a sample for every GPU nvidia-smi lists.
set -euo pipefail
agent=${1:-target/release/tars-agent}
out=${2:-${OUT:-/tmp/tars-gpu-check}}
mkdir -p "$out"
port=19400
nvidia-smi --query-gpu=index,uuid,name,utilization.gpu,memory.used,temperature.gpu --format=csv,noheader \
  | tee "$out/nvidia-smi.csv" || true
"$agent" --listen "127.0.0.1:$port" --interval 1 --collectors gpu,cost 2>"$out/agent.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  curl -sf "127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
sleep 2
curl -sf "127.0.0.1:$port/metrics" >"$out/metrics.txt"
curl -sf -H 'Accept: application/openmetrics-text; version=1.0.0' "127.0.0.1:$port/metrics" >"$out/metrics.om"
kill -TERM $pid
wait $pid || true
trap - EXIT
gpus=$(grep -c . "$out/nvidia-smi.csv" || echo 0)
status=0
grep -q 'tars_agent_collector_up{collector="gpu"} 1' "$out/metrics.txt" || { echo "gpu collector is not up"; status=1; }
for fam in tars_gpu_utilization_percent tars_gpu_memory_used_bytes tars_gpu_memory_total_bytes \
           tars_gpu_temperature_celsius tars_gpu_power_watts; do
  n=$(grep -c "^$fam{" "$out/metrics.txt" || true)
  echo "$fam: $n series (GPUs: $gpus)"
  [ "$n" -ge "$gpus" ] && [ "$n" -gt 0 ] || status=1
done
grep '^tars_gpu_' "$out/metrics.txt" | head -40
grep 'resource="gpu"' "$out/metrics.txt" || true
exit $status
