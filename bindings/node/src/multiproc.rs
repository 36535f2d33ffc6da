//! The multi-process directory, read from any process: every worker's series merged into
//! one exposition (a worker's own telemetry renders its directory the same way).

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::Format;
use tars_telemetry::multiproc::MultiprocessDir;

use crate::error;

/// Renders a directory on the libuv thread pool.
pub struct RenderDir {
    dir: MultiprocessDir,
    format: Format,
}

impl Task for RenderDir {
    type Output = Vec<u8>;
    type JsValue = Buffer;

    fn compute(&mut self) -> Result<Self::Output> {
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut out = Vec::with_capacity(64 * 1024);
            self.dir.render_into(self.format, &mut out).map(|()| out)
        }))
        .map_err(|_| error::panicked("rendering the multi-process directory"))?;
        rendered.map_err(|e| error::multiproc(e, &self.dir.path().to_string_lossy()))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.into())
    }
}

/// Renders the multi-process directory at `path` off the main thread: every worker's
/// series merged, dead workers folded into the archive first.
#[napi(catch_unwind)]
pub fn render_multiprocess_dir(path: String, openmetrics: bool) -> Result<AsyncTask<RenderDir>> {
    Ok(AsyncTask::new(RenderDir {
        dir: MultiprocessDir::new(path),
        format: crate::telemetry::format(openmetrics),
    }))
}
