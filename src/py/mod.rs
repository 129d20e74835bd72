//! The only pyo3 code: the `oxicache._core` extension module.
//!
//! Conversions from Python live in `convert.rs`, errors are mapped in `errors.rs`; everything
//! else here is a thin class or function over `crate::core` and `crate::http`.

use pyo3::prelude::*;

mod blob_store;
mod codec_frames;
mod convert;
mod decoded;
mod errors;
mod functions;
mod interner;
mod key;
mod memcached_text;
mod middleware;
mod reply;
mod results;
mod route;
mod route_config;
mod store;

#[pymodule]
#[pyo3(name = "_core")]
fn core_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The statuses stored by default: one list, read by the Python side too.
    m.add(
        "DEFAULT_STATUSES",
        pyo3::types::PyTuple::new(m.py(), crate::http::storable::DEFAULT_STATUSES)?,
    )?;
    m.add_class::<key::Key>()?;
    m.add_class::<store::MemoryStore>()?;
    m.add_class::<blob_store::BlobStore>()?;
    m.add_class::<route::RouteCache>()?;
    m.add_class::<route_config::RouteConfig>()?;
    m.add_class::<route::Pending>()?;
    m.add_class::<middleware::MiddlewareEngine>()?;
    m.add_class::<middleware::MiddlewarePending>()?;
    results::register(m)?;
    m.add_function(wrap_pyfunction!(functions::parse_cache_control, m)?)?;
    m.add_function(wrap_pyfunction!(functions::etag_for, m)?)?;
    m.add_function(wrap_pyfunction!(functions::if_none_match_hits, m)?)?;
    m.add_function(wrap_pyfunction!(functions::encode_entry, m)?)?;
    m.add_function(wrap_pyfunction!(functions::decode_entry, m)?)?;
    m.add_function(wrap_pyfunction!(functions::inspect_entry, m)?)?;
    m.add_function(wrap_pyfunction!(functions::build_key, m)?)?;
    m.add_function(wrap_pyfunction!(functions::path_tag_of, m)?)?;
    m.add_function(wrap_pyfunction!(functions::bypass_status, m)?)?;
    codec_frames::register(m)?;
    memcached_text::register(m)?;
    Ok(())
}
