//! The hot calls: recording through an interned handle id. These are raw N-API callbacks,
//! not generated code: they read two numbers, index a table and record, with no borrow
//! tracking, no object unwrapping and no allocation (docs/BENCHMARKS.md has the numbers
//! behind this choice).
//!
//! Soundness: a callback touches only `HANDLES`, a table of `Send + Sync` handles that is
//! only ever appended to (under its write lock) and read (under its read lock); a handle is
//! an immutable `Arc` to atomics, so a reentrant or concurrent call (worker threads) cannot
//! observe a half-made value. Arguments are checked with the N-API status of each read: a
//! wrong type throws a `TypeError`, an unknown id a `RangeError`. Panics are caught.

use std::ffi::{CStr, c_char};
use std::ptr;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use parking_lot::RwLock;
use tars_telemetry::custom::FloatCounter;
use tars_telemetry::{Gauge, Histogram};

/// One recording handle: a series of a family, resolved once.
pub enum Handle {
    /// A counter series (counts fractions).
    Counter(FloatCounter),
    /// A gauge series.
    Gauge(Gauge),
    /// A histogram series.
    Histogram(Histogram),
}

/// Every handle made in this process, by id. Never shrinks: ids stay valid for the life of
/// the process, and the interning in `custom.rs` bounds how many there are.
pub static HANDLES: RwLock<Vec<Handle>> = RwLock::new(Vec::new());

/// Adds a handle and returns its id.
pub fn push(h: Handle) -> u32 {
    let mut t = HANDLES.write();
    t.push(h);
    (t.len() - 1) as u32
}

#[derive(Clone, Copy)]
enum Op {
    Inc,
    Set,
    Add,
    Observe,
}

unsafe fn throw(env: sys::napi_env, range: bool, code: &CStr, msg: &CStr) {
    // SAFETY: env is the callback's environment; the strings are NUL-terminated.
    unsafe {
        if range {
            sys::napi_throw_range_error(env, code.as_ptr(), msg.as_ptr());
        } else {
            sys::napi_throw_type_error(env, code.as_ptr(), msg.as_ptr());
        }
    }
}

/// Reads `(id, value?)` and records. Returns false (with a JavaScript exception pending)
/// when the arguments are wrong.
unsafe fn record(env: sys::napi_env, info: sys::napi_callback_info, op: Op) {
    let mut argc: usize = 2;
    let mut argv: [sys::napi_value; 2] = [ptr::null_mut(); 2];
    // SAFETY: argv has room for argc values; env and info come from N-API.
    let st = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if st != sys::Status::napi_ok || argc == 0 {
        // SAFETY: as above.
        unsafe {
            throw(
                env,
                false,
                c"ERR_INVALID_ARG_TYPE",
                c"a handle id is required",
            )
        };
        return;
    }
    let mut id: u32 = 0;
    // SAFETY: argv[0] is a value of this callback.
    if unsafe { sys::napi_get_value_uint32(env, argv[0], &mut id) } != sys::Status::napi_ok {
        // SAFETY: as above.
        unsafe {
            throw(
                env,
                false,
                c"ERR_INVALID_ARG_TYPE",
                c"the handle id must be a number",
            )
        };
        return;
    }
    let mut v: f64 = 1.0;
    let mut t: sys::napi_valuetype = sys::ValueType::napi_undefined;
    if argc >= 2 {
        // SAFETY: argv[1] is a value of this callback.
        unsafe { sys::napi_typeof(env, argv[1], &mut t) };
    }
    if t != sys::ValueType::napi_undefined {
        // SAFETY: as above.
        if unsafe { sys::napi_get_value_double(env, argv[1], &mut v) } != sys::Status::napi_ok {
            // SAFETY: as above.
            unsafe {
                throw(
                    env,
                    false,
                    c"ERR_INVALID_ARG_TYPE",
                    c"the value must be a number",
                )
            };
            return;
        }
    } else if !matches!(op, Op::Inc | Op::Add) {
        // SAFETY: as above.
        unsafe { throw(env, false, c"ERR_INVALID_ARG_TYPE", c"a value is required") };
        return;
    }

    let ok = std::panic::catch_unwind(|| {
        let t = HANDLES.read();
        let Some(h) = t.get(id as usize) else {
            return Some(c"no handle has this id");
        };
        // Invalid values (NaN, infinite, a negative counter increment) are dropped and
        // counted by the core (tars_telemetry_invalid_values_total), as in Rust.
        match (op, h) {
            (Op::Inc | Op::Add, Handle::Counter(c)) => c.inc_by(v),
            (Op::Inc | Op::Add, Handle::Gauge(g)) => g.inc_by(v),
            (Op::Set, Handle::Gauge(g)) => g.set(v),
            (Op::Observe, Handle::Histogram(hi)) => hi.observe(v),
            _ => return Some(c"this operation does not apply to this handle's type"),
        }
        None
    });
    match ok {
        Ok(None) => {}
        // SAFETY: as above.
        Ok(Some(msg)) => unsafe { throw(env, true, c"ERR_TARS_HANDLE", msg) },
        // SAFETY: as above.
        Err(_) => unsafe { throw(env, false, c"ERR_TARS_INTERNAL", c"recording panicked") },
    }
}

macro_rules! hot_fn {
    ($name:ident, $op:expr) => {
        unsafe extern "C" fn $name(
            env: sys::napi_env,
            info: sys::napi_callback_info,
        ) -> sys::napi_value {
            // SAFETY: called by N-API with its own env and info.
            unsafe { record(env, info, $op) };
            ptr::null_mut()
        }
    };
}
hot_fn!(hot_inc, Op::Inc);
hot_fn!(hot_set, Op::Set);
hot_fn!(hot_add, Op::Add);
hot_fn!(hot_observe, Op::Observe);

/// The object of raw hot functions (`inc`, `set`, `add`, `observe`).
pub struct HotCalls;

impl TypeName for HotCalls {
    fn type_name() -> &'static str {
        "HotCalls"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

type RawFn = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

impl ToNapiValue for HotCalls {
    unsafe fn to_napi_value(env: sys::napi_env, _: Self) -> Result<sys::napi_value> {
        let fns: [(&CStr, RawFn); 5] = [
            (c"inc", hot_inc),
            (c"set", hot_set),
            (c"add", hot_add),
            (c"observe", hot_observe),
            (c"noopRaw", crate::bench::noop_raw),
        ];
        let mut obj = ptr::null_mut();
        // SAFETY: env is valid for the duration of this conversion.
        check(unsafe { sys::napi_create_object(env, &mut obj) })?;
        for (name, f) in fns {
            let mut func = ptr::null_mut();
            // SAFETY: name is NUL-terminated (length: NAPI_AUTO_LENGTH); f has the N-API
            // callback signature.
            check(unsafe {
                sys::napi_create_function(
                    env,
                    name.as_ptr() as *const c_char,
                    usize::MAX as _,
                    Some(f),
                    ptr::null_mut(),
                    &mut func,
                )
            })?;
            // SAFETY: obj and func are live values of env.
            check(unsafe { sys::napi_set_named_property(env, obj, name.as_ptr(), func) })?;
        }
        Ok(obj)
    }
}

fn check(st: sys::napi_status) -> Result<()> {
    if st == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(
            Status::GenericFailure,
            format!("ERR_TARS_INTERNAL: N-API call failed with status {st}"),
        ))
    }
}

/// The raw hot functions.
#[napi(
    catch_unwind,
    ts_return_type = "{ inc(id: number, value?: number): void; set(id: number, value: number): void; add(id: number, value?: number): void; observe(id: number, value: number): void; noopRaw(id: number, value?: number): void }"
)]
pub fn hot_calls() -> HotCalls {
    HotCalls
}

/// The current value of a handle's series: a counter's or gauge's value, a histogram's
/// count (for tests and snapshots; not a hot call).
#[napi(catch_unwind)]
pub fn handle_value(id: u32) -> Result<f64> {
    let t = HANDLES.read();
    match t.get(id as usize) {
        Some(Handle::Counter(c)) => Ok(c.get()),
        Some(Handle::Gauge(g)) => Ok(g.get()),
        Some(Handle::Histogram(h)) => Ok(h.count() as f64),
        None => Err(crate::error::invalid(
            "ERR_TARS_HANDLE",
            "no handle has this id",
        )),
    }
}
