//! `Key`: a finished cache key, hashable so Python can use it in dicts (single-flight).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::core::key::Key as CoreKey;

/// A cache key: canonical bytes and their BLAKE3 digest.
#[pyclass(frozen, eq, hash, module = "oxicache._core")]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub(crate) inner: CoreKey,
}

#[pymethods]
impl Key {
    /// The digest as 64 hex characters.
    #[getter]
    fn hex(&self) -> String {
        self.inner.hex()
    }

    /// The canonical key bytes.
    #[getter]
    fn canonical<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.canonical())
    }

    fn __repr__(&self) -> String {
        // Never echo key material: the digest prefix is enough to tell keys apart.
        format!("<oxicache Key {}…>", &self.inner.hex()[..12])
    }
}
