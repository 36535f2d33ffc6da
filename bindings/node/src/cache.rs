//! Caches: operations by cache, operation and result, and the end of a cache call.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use tars_telemetry::{CacheName, CacheOperation, CacheResult};

use crate::error;
use crate::stage::{self, Stage};

/// The cache label tables, by the indexes `cache_record` and `cache_finish` take.
#[napi(object)]
pub struct CacheTables {
    pub caches: Vec<String>,
    pub operations: Vec<String>,
    pub results: Vec<String>,
}

/// The cache label tables.
#[napi]
pub fn cache_tables() -> CacheTables {
    CacheTables {
        caches: CacheName::ALL.iter().map(|c| c.as_str().into()).collect(),
        operations: CacheOperation::ALL
            .iter()
            .map(|c| c.as_str().into())
            .collect(),
        results: CacheResult::ALL.iter().map(|c| c.as_str().into()).collect(),
    }
}

fn index<T: Copy>(all: &[T], i: u32, what: &str) -> Result<T> {
    all.get(i as usize)
        .copied()
        .ok_or_else(|| error::invalid("ERR_TARS_INVALID_LABEL", format!("no such {what}")))
}

/// Counts one cache operation.
#[napi(catch_unwind)]
pub fn cache_record(telemetry: u32, cache: u32, operation: u32, result: u32) -> Result<()> {
    let state = crate::telemetry::get(telemetry)?;
    state.tel.cache().record(
        index(&CacheName::ALL, cache, "cache")?,
        index(&CacheOperation::ALL, operation, "operation")?,
        index(&CacheResult::ALL, result, "result")?,
    );
    Ok(())
}

/// Ends a cache call (a Redis command, an embedding-cache lookup) with its result.
#[napi(catch_unwind)]
pub fn cache_finish(call: u32, result: u32) -> Result<()> {
    let r = index(&CacheResult::ALL, result, "result")?;
    match stage::take(call)? {
        Stage::Cache(c) => {
            c.finish(r);
            Ok(())
        }
        other => {
            drop(other);
            Err(error::invalid("ERR_TARS_WRONG_STAGE", "not a cache call"))
        }
    }
}

/// Ends a cache read as a hit or a miss; returns `hit`.
#[napi(catch_unwind)]
pub fn cache_finish_lookup(call: u32, hit: bool) -> Result<bool> {
    match stage::take(call)? {
        Stage::Cache(c) => Ok(c.finish_lookup(hit)),
        other => {
            drop(other);
            Err(error::invalid("ERR_TARS_WRONG_STAGE", "not a cache call"))
        }
    }
}
