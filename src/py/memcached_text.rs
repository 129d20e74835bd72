//! Memcached text-protocol replies (`crate::core::memcached_text`), for the Memcached
//! backend's pipelined reads.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::core::memcached_text::{parse, Reply};

/// The complete replies at the start of `data` and how many bytes they took; the rest is a
/// reply still arriving. Each reply is a dict `{key: (value, cas or None)}` (`get`/`gets`),
/// the bytes of a storage reply (`b"STORED"`...), or the `str` line of a refused command
/// (`ERROR`, `CLIENT_ERROR ...`, `SERVER_ERROR ...`). Raises `ValueError` when `data` is not
/// memcached's protocol.
#[pyfunction]
pub fn parse_memcached_replies<'py>(
    py: Python<'py>,
    data: &[u8],
) -> PyResult<(Bound<'py, PyList>, usize)> {
    let (replies, used) = parse(data).map_err(|e| PyValueError::new_err(e.message()))?;
    let out = PyList::empty(py);
    for reply in replies {
        match reply {
            Reply::Items(items) => {
                let found = PyDict::new(py);
                for item in items {
                    let cas = item.cas.into_pyobject(py)?.into_any();
                    let pair = PyTuple::new(py, [PyBytes::new(py, item.value).into_any(), cas])?;
                    found.set_item(PyBytes::new(py, item.key), pair)?;
                }
                out.append(found)?;
            }
            Reply::Stored(line) => out.append(PyBytes::new(py, line))?,
            Reply::Refused(line) => {
                out.append(PyString::new(py, &String::from_utf8_lossy(line)))?
            }
        }
    }
    Ok((out, used))
}

/// Adds this file's functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_memcached_replies, m)?)?;
    Ok(())
}
