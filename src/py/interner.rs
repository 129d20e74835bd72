//! Shares the stored header tuples between entries of one route.
//!
//! Most entries of a route carry the same static fields (`content-type`, `cache-control`,
//! `vary`); only `content-length` and `etag` differ, and those are rebuilt on replay from the
//! body length and the entry's ETag. Storing one tuple per distinct set of static fields
//! instead of one per entry saves most of the per-entry overhead (about a kilobyte of Python
//! objects for five header pairs), which is what keeps RSS close to the stored bytes.

use std::collections::HashMap;
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

/// How many distinct header sets one route shares before it stops interning: a route whose
/// responses carry a unique field each (a request id, say) must not grow this table forever.
const MAX_SHARED_SETS: usize = 256;

/// The shared header tuples of one route.
#[derive(Default)]
pub struct HeaderInterner {
    table: Mutex<HashMap<Vec<u8>, Py<PyTuple>>>,
}

impl HeaderInterner {
    /// A tuple of the given pairs, shared with earlier entries when the same set was seen.
    /// The flag says whether the tuple is shared (then it costs the entry nothing).
    pub fn intern<'py>(
        &self,
        py: Python<'py>,
        pairs: &[(Bound<'py, PyBytes>, Bound<'py, PyBytes>)],
    ) -> PyResult<(Py<PyTuple>, bool)> {
        // Length-prefixed, so that no two different header lists share a table key.
        let mut id = Vec::new();
        for (name, value) in pairs {
            for part in [name.as_bytes(), value.as_bytes()] {
                id.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_le_bytes());
                id.extend_from_slice(part);
            }
        }
        let mut table = match self.table.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(shared) = table.get(&id) {
            return Ok((shared.clone_ref(py), true));
        }
        let tuple = PyTuple::new(py, pairs.iter().map(|(n, v)| (n, v)))?.unbind();
        if table.len() < MAX_SHARED_SETS {
            table.insert(id, tuple.clone_ref(py));
            return Ok((tuple, true));
        }
        Ok((tuple, false))
    }
}
