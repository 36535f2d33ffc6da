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

/// As `render_multiprocess_dir`, in any format by its name (`prometheus`, `openmetrics`,
/// `protobuf`).
#[napi(catch_unwind)]
pub fn render_multiprocess_dir_as(path: String, format: String) -> Result<AsyncTask<RenderDir>> {
    Ok(AsyncTask::new(RenderDir {
        dir: MultiprocessDir::new(path),
        format: crate::telemetry::named_format(&format)?,
    }))
}

/// The environment variable naming the multi-process directory.
#[napi]
pub const MULTIPROC_DIR_ENV: &str = tars_telemetry::multiproc::MULTIPROC_DIR_ENV;

/// The environment variable that, set to `1`, lets workers use a directory other users
/// can write to.
#[napi]
pub const MULTIPROC_ALLOW_SHARED_ENV: &str = tars_telemetry::multiproc::MULTIPROC_ALLOW_SHARED_ENV;

/// What a render of the directory could not use.
#[napi(object)]
pub struct MultiprocessWarning {
    /// The file (or the directory, for a fold that failed).
    pub path: String,
    /// `file_skipped`, `records_dropped`, `archive_replaced`, `dead_file_set_aside` or
    /// `fold_failed`.
    pub event: String,
    /// `not_a_regular_file`, `not_ours`, `layout`, `catalog`, `truncated`, `corrupt`,
    /// `unwritable`, `no_space` or `io`.
    pub reason: String,
    /// The whole warning, in words.
    pub message: String,
}

/// A render and what it could not use.
#[napi(object)]
pub struct MultiprocessReport {
    /// The exposition.
    pub text: String,
    /// Empty when every file was read whole.
    pub warnings: Vec<MultiprocessWarning>,
}

/// Renders a directory, with its warnings, on the libuv thread pool.
pub struct RenderDirReport {
    dir: MultiprocessDir,
    format: Format,
}

impl Task for RenderDirReport {
    type Output = MultiprocessReport;
    type JsValue = MultiprocessReport;

    fn compute(&mut self) -> Result<Self::Output> {
        let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut out = Vec::with_capacity(64 * 1024);
            self.dir
                .render_report(self.format, &mut out)
                .map(|w| (out, w))
        }))
        .map_err(|_| error::panicked("rendering the multi-process directory"))?;
        let (out, warnings) =
            rendered.map_err(|e| error::multiproc(e, &self.dir.path().to_string_lossy()))?;
        Ok(MultiprocessReport {
            text: String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            warnings: warnings
                .into_iter()
                .map(|w| MultiprocessWarning {
                    path: w.path.to_string_lossy().into_owned(),
                    event: w.event.as_str().to_string(),
                    reason: w.cause.as_str().to_string(),
                    message: w.to_string(),
                })
                .collect(),
        })
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output)
    }
}

/// As `render_multiprocess_dir`, and what the render could not use.
#[napi(catch_unwind)]
pub fn render_multiprocess_dir_report(
    path: String,
    openmetrics: bool,
) -> Result<AsyncTask<RenderDirReport>> {
    Ok(AsyncTask::new(RenderDirReport {
        dir: MultiprocessDir::new(path),
        format: crate::telemetry::format(openmetrics),
    }))
}
