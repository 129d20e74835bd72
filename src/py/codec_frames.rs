//! The zstd frame around stored envelopes (`crate::core::compress`), for the remote backends.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::errors::frame_error;
use crate::core::compress;

/// Inputs at least this long are packed or unpacked with the GIL released: below it, the
/// release and re-acquire cost more than the work they would let other threads do.
const DETACH_AT: usize = 64 * 1024;

// `pack_frame`'s default is written as a literal so that its signature (and the stub) shows it.
const _: () = assert!(compress::DEFAULT_THRESHOLD == 1024);

/// Wraps an encoded envelope in a frame, zstd-compressed when `data` is longer than `threshold`
/// bytes and compression saves space.
#[pyfunction]
#[pyo3(signature = (data, threshold = 1024))]
pub fn pack_frame<'py>(py: Python<'py>, data: &[u8], threshold: usize) -> Bound<'py, PyBytes> {
    let frame = if data.len() >= DETACH_AT {
        py.detach(|| compress::pack(data, threshold))
    } else {
        compress::pack(data, threshold)
    };
    PyBytes::new(py, &frame)
}

/// The envelope inside a frame; raises `EntryDecodeError` if `data` is not a frame, is cut
/// short or corrupt, or would decode to more than `max_len` bytes.
#[pyfunction]
pub fn unpack_frame<'py>(
    py: Python<'py>,
    data: &[u8],
    max_len: usize,
) -> PyResult<Bound<'py, PyBytes>> {
    let unpacked = if data.len() >= DETACH_AT {
        py.detach(|| compress::unpack(data, max_len))
    } else {
        compress::unpack(data, max_len)
    };
    match unpacked {
        Ok(envelope) => Ok(PyBytes::new(py, &envelope)),
        Err(e) => Err(frame_error(py, e)),
    }
}

/// Adds this file's functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pack_frame, m)?)?;
    m.add_function(wrap_pyfunction!(unpack_frame, m)?)?;
    Ok(())
}
