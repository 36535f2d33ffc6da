//! Interning of handles asked for by name from JavaScript (routes, models, label sets):
//! each distinct key gets one id, up to a cap; past it, keys are not kept (the core folds
//! them into its overflow series) and share one id, so hostile input cannot grow the tables.

use std::collections::HashMap;

/// Ids by key, bounded.
pub struct Interner<K> {
    ids: HashMap<K, u32>,
    cap: usize,
    overflow: Option<u32>,
}

impl<K: std::hash::Hash + Eq> Interner<K> {
    /// An interner keeping at most `cap` keys.
    pub fn new(cap: usize) -> Self {
        Interner {
            ids: HashMap::new(),
            cap,
            overflow: None,
        }
    }

    /// The id of `key`, made by `make` (given whether the interner is full) when new.
    pub fn get_or_make<E>(
        &mut self,
        key: K,
        make: impl FnOnce(bool) -> Result<u32, E>,
    ) -> Result<u32, E> {
        if let Some(&id) = self.ids.get(&key) {
            return Ok(id);
        }
        if self.ids.len() >= self.cap {
            if let Some(id) = self.overflow {
                // Still resolve through the core so that it counts the overflow.
                make(true)?;
                return Ok(id);
            }
            let id = make(true)?;
            self.overflow = Some(id);
            return Ok(id);
        }
        let id = make(false)?;
        self.ids.insert(key, id);
        Ok(id)
    }
}
