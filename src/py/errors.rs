//! Rust errors to Python exceptions, in one place. The classes themselves are defined in
//! `oxicache.exceptions` (Python), where the hierarchy is documented.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

use crate::core::compress::FrameError;
use crate::core::envelope::EnvelopeError;
use crate::core::store::StoreError;

fn exception_class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> Option<Bound<'py, PyType>> {
    cell.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let module = py.import("oxicache.exceptions")?;
        Ok(module.getattr(name)?.cast_into::<PyType>()?.unbind())
    })
    .ok()
    .map(|t| t.bind(py).clone())
}

fn raise(py: Python<'_>, cell: &'static PyOnceLock<Py<PyType>>, name: &str, msg: String) -> PyErr {
    match exception_class(py, cell, name) {
        Some(class) => PyErr::from_type(class, msg),
        // Only when the Python package is broken; still an exception, never a panic.
        None => PyRuntimeError::new_err(msg),
    }
}

static ENTRY_DECODE_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ENTRY_TOO_LARGE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static CONFIG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static UNKEYABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A stored entry failed to decode.
pub fn envelope_error(py: Python<'_>, err: EnvelopeError) -> PyErr {
    raise(py, &ENTRY_DECODE_ERROR, "EntryDecodeError", err.to_string())
}

/// A stored frame failed to unpack (it is read as a miss, like a bad envelope).
pub fn frame_error(py: Python<'_>, err: FrameError) -> PyErr {
    raise(py, &ENTRY_DECODE_ERROR, "EntryDecodeError", err.to_string())
}

/// The store refused an entry.
pub fn store_error(py: Python<'_>, err: StoreError) -> PyErr {
    match err {
        StoreError::TooLarge { .. } => {
            raise(py, &ENTRY_TOO_LARGE, "EntryTooLarge", err.to_string())
        }
        StoreError::InvalidTtl => raise(py, &CONFIG_ERROR, "ConfigError", err.to_string()),
    }
}

/// A configuration value is out of range.
pub fn config_error(py: Python<'_>, msg: String) -> PyErr {
    raise(py, &CONFIG_ERROR, "ConfigError", msg)
}

/// A value cannot be part of a cache key.
pub fn unkeyable(py: Python<'_>, msg: String) -> PyErr {
    raise(py, &UNKEYABLE, "UnkeyableArgument", msg)
}
