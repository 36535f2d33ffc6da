//! A fake `libnvidia-ml.so.1` for tests: the NVML C ABI (the functions nvml-wrapper
//! resolves for what tars-agent reads), with the types and error codes of NVML's own
//! header (through nvml-wrapper-sys), answering from a scenario file named by
//! `TARS_FAKE_NVML_SCENARIO` (JSON):
//!
//! ```json
//! {
//!   "init": "SUCCESS",
//!   "driver_version": "550.54.15",
//!   "devices": [{
//!     "uuid": "GPU-6b1f...", "name": "NVIDIA H100 80GB HBM3",
//!     "memory_total": 85899345920, "memory_used": [1073741824, 2147483648],
//!     "utilization": [10, 90], "temperature": [41], "power_mw": [120000],
//!     "energy_mj": [5000, 9000], "clocks_mhz": {"graphics": 1980, "sm": 1980, "memory": 2619},
//!     "throttle_reasons": 1, "ecc": [0, 0],
//!     "processes": [{"pid": 4242, "memory": 1073741824}],
//!     "process_utilization": [{"pid": 4242, "sm": 35, "memory": 10}],
//!     "errors": {"power": "NOT_SUPPORTED"}, "lost_from": 3, "block": ["temperature"],
//!     "mig": [{"uuid": "MIG-...", "name": "...", "memory_total": 10737418240}]
//!   }]
//! }
//! ```
//!
//! - **Readings over time.** Every `nvmlDeviceGetCount_v2` call is a tick (the agent asks
//!   once per collection); a list of readings answers its `tick`-th value, then its last.
//!   An empty list is a field the device does not support (`NOT_SUPPORTED`).
//! - **Injected errors.** `init` is the return of `nvmlInit_v2` (`DRIVER_NOT_LOADED`,
//!   `LIB_RM_VERSION_MISMATCH`, ...); `errors` maps a reading (`uuid`, `name`, `memory`,
//!   `utilization`, `temperature`, `power`, `energy`, `clocks`, `throttle`, `ecc`,
//!   `processes`, `process_utilization`, `mig`) to the error it returns; from tick
//!   `lost_from` on, every call about the device returns `GPU_IS_LOST`; a reading named in
//!   `block` never returns (a hung driver).
//! - **A symbol missing from an old driver** is made by renaming it in a copy of this
//!   library's dynamic symbol table (see the agent's tests): nothing here.

#![allow(non_snake_case, non_upper_case_globals, clippy::missing_safety_doc)]

use std::collections::BTreeMap;
use std::ffi::{c_char, c_uint, c_ulonglong};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use nvml_wrapper_sys::bindings::*;
use serde::Deserialize;

/// The environment variable naming the scenario file.
pub const SCENARIO_ENV: &str = "TARS_FAKE_NVML_SCENARIO";

/// A whole scenario: the library's answers and its devices.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// What `nvmlInit_v2` returns, by NVML error name (`SUCCESS` when absent).
    pub init: Option<String>,
    pub driver_version: Option<String>,
    pub nvml_version: Option<String>,
    pub devices: Vec<Device>,
}

/// One GPU, or one MIG instance of one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Device {
    pub uuid: String,
    pub name: String,
    pub memory_total: u64,
    pub memory_used: Vec<u64>,
    pub utilization: Vec<u32>,
    pub temperature: Vec<u32>,
    pub power_mw: Vec<u32>,
    pub energy_mj: Vec<u64>,
    pub clocks_mhz: BTreeMap<String, u32>,
    pub throttle_reasons: Option<u64>,
    pub ecc: Option<(u64, u64)>,
    pub processes: Vec<Process>,
    pub process_utilization: Vec<ProcessSample>,
    pub errors: BTreeMap<String, String>,
    pub lost_from: Option<u64>,
    pub block: Vec<String>,
    pub mig: Vec<Device>,
}

/// A process using a device.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub pid: u32,
    pub memory: u64,
}

/// A process's share of a device over the last sample period.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessSample {
    pub pid: u32,
    pub sm: u32,
    pub memory: u32,
}

/// A device handle as NVML hands it out: a pointer to one of these.
struct Handle {
    gpu: usize,
    mig: Option<usize>,
}

struct State {
    scenario: Scenario,
    handles: &'static [Handle],
}

static STATE: OnceLock<Result<State, String>> = OnceLock::new();
static TICK: AtomicU64 = AtomicU64::new(0);
static INITS: Mutex<u32> = Mutex::new(0);

fn error_code(name: &str) -> nvmlReturn_t {
    match name {
        "SUCCESS" => nvmlReturn_enum_NVML_SUCCESS,
        "UNINITIALIZED" => nvmlReturn_enum_NVML_ERROR_UNINITIALIZED,
        "INVALID_ARGUMENT" => nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT,
        "NOT_SUPPORTED" => nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED,
        "NO_PERMISSION" => nvmlReturn_enum_NVML_ERROR_NO_PERMISSION,
        "NOT_FOUND" => nvmlReturn_enum_NVML_ERROR_NOT_FOUND,
        "DRIVER_NOT_LOADED" => nvmlReturn_enum_NVML_ERROR_DRIVER_NOT_LOADED,
        "TIMEOUT" => nvmlReturn_enum_NVML_ERROR_TIMEOUT,
        "LIBRARY_NOT_FOUND" => nvmlReturn_enum_NVML_ERROR_LIBRARY_NOT_FOUND,
        "GPU_IS_LOST" => nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST,
        "RESET_REQUIRED" => nvmlReturn_enum_NVML_ERROR_RESET_REQUIRED,
        "LIB_RM_VERSION_MISMATCH" => nvmlReturn_enum_NVML_ERROR_LIB_RM_VERSION_MISMATCH,
        "NO_DATA" => nvmlReturn_enum_NVML_ERROR_NO_DATA,
        _ => nvmlReturn_enum_NVML_ERROR_UNKNOWN,
    }
}

fn load() -> Result<State, String> {
    let path =
        std::env::var_os(SCENARIO_ENV).ok_or_else(|| format!("{SCENARIO_ENV} is not set"))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("reading {}: {e}", path.to_string_lossy()))?;
    let scenario: Scenario = serde_json::from_str(&text)
        .map_err(|e| format!("parsing {}: {e}", path.to_string_lossy()))?;
    let mut handles = Vec::new();
    for (gpu, d) in scenario.devices.iter().enumerate() {
        handles.push(Handle { gpu, mig: None });
        for m in 0..d.mig.len() {
            handles.push(Handle { gpu, mig: Some(m) });
        }
    }
    Ok(State {
        scenario,
        handles: Box::leak(handles.into_boxed_slice()),
    })
}

fn state() -> Option<&'static State> {
    STATE.get().and_then(|s| s.as_ref().ok())
}

fn handle_of(h: &'static Handle) -> nvmlDevice_t {
    (h as *const Handle).cast_mut().cast()
}

/// The device behind a handle this library gave out, and its GPU (for MIG instances).
fn device(h: nvmlDevice_t) -> Result<(&'static Device, &'static Device), nvmlReturn_t> {
    let s = state().ok_or(nvmlReturn_enum_NVML_ERROR_UNINITIALIZED)?;
    let ours = s
        .handles
        .iter()
        .find(|x| std::ptr::eq(*x as *const Handle, h.cast::<Handle>()))
        .ok_or(nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT)?;
    let gpu = &s.scenario.devices[ours.gpu];
    let d = match ours.mig {
        Some(m) => &gpu.mig[m],
        None => gpu,
    };
    Ok((d, gpu))
}

fn tick() -> usize {
    TICK.load(Ordering::Relaxed).max(1) as usize
}

fn at<T: Copy>(v: &[T]) -> Option<T> {
    v.get(tick() - 1).or(v.last()).copied()
}

/// The checks every reading of `what` goes through: lost, blocked, injected error.
fn check(h: nvmlDevice_t, what: &str) -> Result<&'static Device, nvmlReturn_t> {
    let (d, gpu) = device(h)?;
    if gpu
        .lost_from
        .is_some_and(|t| TICK.load(Ordering::Relaxed) >= t)
    {
        return Err(nvmlReturn_enum_NVML_ERROR_GPU_IS_LOST);
    }
    if d.block.iter().any(|b| b == what) {
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
    if let Some(e) = d.errors.get(what) {
        return Err(error_code(e));
    }
    Ok(d)
}

fn answer(r: Result<(), nvmlReturn_t>) -> nvmlReturn_t {
    match r {
        Ok(()) => nvmlReturn_enum_NVML_SUCCESS,
        Err(e) => e,
    }
}

unsafe fn put<T>(out: *mut T, v: T) -> Result<(), nvmlReturn_t> {
    if out.is_null() {
        return Err(nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
    }
    // SAFETY: the caller's pointer, checked non-null.
    unsafe { out.write(v) };
    Ok(())
}

unsafe fn put_str(out: *mut c_char, len: c_uint, s: &str) -> Result<(), nvmlReturn_t> {
    if out.is_null() {
        return Err(nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
    }
    if s.len() + 1 > len as usize {
        return Err(nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE);
    }
    // SAFETY: the caller's buffer of `len` bytes, checked large enough.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), out.cast::<u8>(), s.len());
        out.add(s.len()).write(0);
    }
    Ok(())
}

fn supported<T: Copy>(v: &[T]) -> Result<T, nvmlReturn_t> {
    at(v).ok_or(nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED)
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInit_v2() -> nvmlReturn_t {
    let loaded = STATE.get_or_init(load);
    match loaded {
        Err(why) => {
            eprintln!("fake NVML: {why}");
            nvmlReturn_enum_NVML_ERROR_UNKNOWN
        }
        Ok(s) => {
            let r = error_code(s.scenario.init.as_deref().unwrap_or("SUCCESS"));
            if r == nvmlReturn_enum_NVML_SUCCESS {
                *INITS.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            }
            r
        }
    }
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlInitWithFlags(_flags: c_uint) -> nvmlReturn_t {
    nvmlInit_v2()
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlShutdown() -> nvmlReturn_t {
    let mut n = INITS.lock().unwrap_or_else(|e| e.into_inner());
    if *n == 0 {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    }
    *n -= 1;
    nvmlReturn_enum_NVML_SUCCESS
}

#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(_result: nvmlReturn_t) -> *const c_char {
    c"fake NVML error".as_ptr()
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetDriverVersion(out: *mut c_char, len: c_uint) -> nvmlReturn_t {
    let v = state()
        .and_then(|s| s.scenario.driver_version.as_deref())
        .unwrap_or("550.54.15");
    // SAFETY: the caller's buffer.
    answer(unsafe { put_str(out, len, v) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlSystemGetNVMLVersion(out: *mut c_char, len: c_uint) -> nvmlReturn_t {
    let v = state()
        .and_then(|s| s.scenario.nvml_version.as_deref())
        .unwrap_or("12.550.54.15");
    // SAFETY: the caller's buffer.
    answer(unsafe { put_str(out, len, v) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCount_v2(count: *mut c_uint) -> nvmlReturn_t {
    let Some(s) = state() else {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    };
    TICK.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the caller's pointer.
    answer(unsafe { put(count, s.scenario.devices.len() as c_uint) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetHandleByIndex_v2(
    index: c_uint,
    device: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    let Some(s) = state() else {
        return nvmlReturn_enum_NVML_ERROR_UNINITIALIZED;
    };
    let Some(h) = s
        .handles
        .iter()
        .find(|h| h.gpu == index as usize && h.mig.is_none())
    else {
        return nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT;
    };
    // SAFETY: the caller's pointer.
    answer(unsafe { put(device, handle_of(h)) })
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUUID(
    device: nvmlDevice_t,
    out: *mut c_char,
    len: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's buffer.
    answer(check(device, "uuid").and_then(|d| unsafe { put_str(out, len, &d.uuid) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetName(
    device: nvmlDevice_t,
    out: *mut c_char,
    len: c_uint,
) -> nvmlReturn_t {
    // SAFETY: the caller's buffer.
    answer(check(device, "name").and_then(|d| unsafe { put_str(out, len, &d.name) }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMemoryInfo_v2(
    device: nvmlDevice_t,
    memory: *mut nvmlMemory_v2_t,
) -> nvmlReturn_t {
    answer(check(device, "memory").and_then(|d| {
        if memory.is_null() {
            return Err(nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
        }
        // SAFETY: the caller's struct, version set by the caller.
        let version = unsafe { (*memory).version };
        if version >> 24 != 2 {
            return Err(nvmlReturn_enum_NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
        }
        let used = at(&d.memory_used).unwrap_or(0);
        // SAFETY: as above.
        unsafe {
            (*memory).total = d.memory_total;
            (*memory).reserved = 0;
            (*memory).used = used;
            (*memory).free = d.memory_total.saturating_sub(used);
        }
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetUtilizationRates(
    device: nvmlDevice_t,
    utilization: *mut nvmlUtilization_t,
) -> nvmlReturn_t {
    answer(check(device, "utilization").and_then(|d| {
        let gpu = supported(&d.utilization)?;
        // SAFETY: the caller's pointer.
        unsafe { put(utilization, nvmlUtilization_t { gpu, memory: 0 }) }
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTemperature(
    device: nvmlDevice_t,
    _sensor: nvmlTemperatureSensors_t,
    temp: *mut c_uint,
) -> nvmlReturn_t {
    answer(check(device, "temperature").and_then(|d| {
        let t = supported(&d.temperature)?;
        // SAFETY: the caller's pointer.
        unsafe { put(temp, t) }
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetPowerUsage(
    device: nvmlDevice_t,
    power: *mut c_uint,
) -> nvmlReturn_t {
    answer(check(device, "power").and_then(|d| {
        let p = supported(&d.power_mw)?;
        // SAFETY: the caller's pointer.
        unsafe { put(power, p) }
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTotalEnergyConsumption(
    device: nvmlDevice_t,
    energy: *mut c_ulonglong,
) -> nvmlReturn_t {
    answer(check(device, "energy").and_then(|d| {
        let e = supported(&d.energy_mj)?;
        // SAFETY: the caller's pointer.
        unsafe { put(energy, e) }
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetClockInfo(
    device: nvmlDevice_t,
    clock: nvmlClockType_t,
    mhz: *mut c_uint,
) -> nvmlReturn_t {
    answer(check(device, "clocks").and_then(|d| {
        let name = match clock {
            nvmlClockType_enum_NVML_CLOCK_GRAPHICS => "graphics",
            nvmlClockType_enum_NVML_CLOCK_SM => "sm",
            nvmlClockType_enum_NVML_CLOCK_MEM => "memory",
            _ => "video",
        };
        let v = d
            .clocks_mhz
            .get(name)
            .copied()
            .ok_or(nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED)?;
        // SAFETY: the caller's pointer.
        unsafe { put(mhz, v) }
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetCurrentClocksThrottleReasons(
    device: nvmlDevice_t,
    reasons: *mut c_ulonglong,
) -> nvmlReturn_t {
    answer(check(device, "throttle").and_then(|d| {
        let r = d
            .throttle_reasons
            .ok_or(nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED)?;
        // SAFETY: the caller's pointer.
        unsafe { put(reasons, r) }
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetTotalEccErrors(
    device: nvmlDevice_t,
    error_type: nvmlMemoryErrorType_t,
    _counter: nvmlEccCounterType_t,
    count: *mut c_ulonglong,
) -> nvmlReturn_t {
    answer(check(device, "ecc").and_then(|d| {
        let (corrected, uncorrected) = d.ecc.ok_or(nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED)?;
        let v = if error_type == nvmlMemoryErrorType_enum_NVML_MEMORY_ERROR_TYPE_CORRECTED {
            corrected
        } else {
            uncorrected
        };
        // SAFETY: the caller's pointer.
        unsafe { put(count, v) }
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetComputeRunningProcesses_v3(
    device: nvmlDevice_t,
    count: *mut c_uint,
    infos: *mut nvmlProcessInfo_t,
) -> nvmlReturn_t {
    answer(check(device, "processes").and_then(|d| {
        if count.is_null() {
            return Err(nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
        }
        let n = d.processes.len();
        // SAFETY: the caller's pointer, checked non-null.
        let room = unsafe { *count } as usize;
        // SAFETY: as above.
        unsafe { *count = n as c_uint };
        if n == 0 {
            return Ok(());
        }
        if infos.is_null() || room < n {
            return Err(nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE);
        }
        for (i, p) in d.processes.iter().enumerate() {
            // SAFETY: the caller's array of `room` >= n entries.
            unsafe {
                infos.add(i).write(nvmlProcessInfo_t {
                    pid: p.pid,
                    usedGpuMemory: p.memory,
                    gpuInstanceId: u32::MAX,
                    computeInstanceId: u32::MAX,
                })
            };
        }
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetProcessUtilization(
    device: nvmlDevice_t,
    samples: *mut nvmlProcessUtilizationSample_t,
    count: *mut c_uint,
    last_seen: c_ulonglong,
) -> nvmlReturn_t {
    answer(check(device, "process_utilization").and_then(|d| {
        if count.is_null() {
            return Err(nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT);
        }
        // Every sample is taken now (CPU time in microseconds, as NVML's are): newer
        // than any `last_seen` in the past.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let n = if last_seen < now {
            d.process_utilization.len()
        } else {
            0
        };
        if n == 0 {
            return Err(nvmlReturn_enum_NVML_ERROR_NOT_FOUND);
        }
        // SAFETY: the caller's pointer, checked non-null.
        let room = unsafe { *count } as usize;
        // SAFETY: as above.
        unsafe { *count = n as c_uint };
        if samples.is_null() || room < n {
            return Err(nvmlReturn_enum_NVML_ERROR_INSUFFICIENT_SIZE);
        }
        for (i, p) in d.process_utilization.iter().enumerate() {
            // SAFETY: the caller's array of `room` >= n entries.
            unsafe {
                samples.add(i).write(nvmlProcessUtilizationSample_t {
                    pid: p.pid,
                    timeStamp: now,
                    smUtil: p.sm,
                    memUtil: p.memory,
                    encUtil: 0,
                    decUtil: 0,
                })
            };
        }
        Ok(())
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMaxMigDeviceCount(
    device: nvmlDevice_t,
    count: *mut c_uint,
) -> nvmlReturn_t {
    answer(check(device, "mig").and_then(|d| {
        if d.mig.is_empty() {
            return Err(nvmlReturn_enum_NVML_ERROR_NOT_SUPPORTED);
        }
        // A MIG-enabled A100/H100 has room for 7 instances, whatever is configured.
        // SAFETY: the caller's pointer.
        unsafe { put(count, 7) }
    }))
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn nvmlDeviceGetMigDeviceHandleByIndex(
    device: nvmlDevice_t,
    index: c_uint,
    mig: *mut nvmlDevice_t,
) -> nvmlReturn_t {
    answer(check(device, "mig").and_then(|_| {
        let s = state().ok_or(nvmlReturn_enum_NVML_ERROR_UNINITIALIZED)?;
        let (_, gpu) = device_index(device)?;
        let h = s
            .handles
            .iter()
            .find(|h| h.gpu == gpu && h.mig == Some(index as usize))
            .ok_or(nvmlReturn_enum_NVML_ERROR_NOT_FOUND)?;
        // SAFETY: the caller's pointer.
        unsafe { put(mig, handle_of(h)) }
    }))
}

/// (is a MIG handle, GPU index) of a handle.
fn device_index(h: nvmlDevice_t) -> Result<(bool, usize), nvmlReturn_t> {
    let s = state().ok_or(nvmlReturn_enum_NVML_ERROR_UNINITIALIZED)?;
    s.handles
        .iter()
        .find(|x| std::ptr::eq(*x as *const Handle, h.cast::<Handle>()))
        .map(|x| (x.mig.is_some(), x.gpu))
        .ok_or(nvmlReturn_enum_NVML_ERROR_INVALID_ARGUMENT)
}
