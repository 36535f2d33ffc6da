//! Calls that do nothing, to measure what a call costs through each kind of binding
//! (`bench/napi-cost.js`): a generated free function, a generated class method, and a raw
//! N-API callback.

use napi::sys;
use napi_derive::napi;

/// A generated free function taking two numbers.
#[napi]
pub fn noop_free(_id: u32, _value: f64) {}

/// A generated class, as a handle object would be.
#[napi]
pub struct NoopHandle {
    id: u32,
}

#[napi]
impl NoopHandle {
    /// Makes one.
    #[napi(constructor)]
    pub fn new(id: u32) -> Self {
        NoopHandle { id }
    }

    /// A generated method taking a number (`&self`: borrow tracking applies).
    #[napi]
    pub fn inc(&self, _value: f64) -> u32 {
        self.id
    }
}

/// A raw N-API callback reading two numbers, as the hot calls do.
///
/// # Safety
/// Called by N-API with its own env and info.
pub unsafe extern "C" fn noop_raw(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut argc: usize = 2;
    let mut argv: [sys::napi_value; 2] = [std::ptr::null_mut(); 2];
    let mut id = 0u32;
    let mut v = 0f64;
    // SAFETY: argv has room for argc values.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        if argc >= 2 {
            sys::napi_get_value_uint32(env, argv[0], &mut id);
            sys::napi_get_value_double(env, argv[1], &mut v);
        }
    }
    std::hint::black_box((id, v));
    std::ptr::null_mut()
}
