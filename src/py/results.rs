//! What the engines hand back to Python, by type: a lookup is a `Hit`, a `Pending` (or
//! `MiddlewarePending`) or a `Bypass`; the middleware's verdict on a response in flight is a
//! `ResponseAction`. Python dispatches on the class (`result.__class__ is Bypass`), never on
//! the shape of a value.
//!
//! A `Hit` is the reply tuple `(status, headers, body)` itself: `_core.Hit` is `tuple`, and
//! the stub names its shape. A frozen pyclass carrying the three was measured
//! (bench/instructions.py, release build) at about 270 more instructions per middleware hit
//! and 1,300 per decorator hit than the tuple: its allocation, three attribute reads through
//! getters where a tuple unpacks in one step, and its deallocation, on the path the cache
//! exists to make cheap.

use std::borrow::Cow;

use pyo3::prelude::*;

/// A request the cache does not handle (RFC 9211 §2.2 `fwd=bypass`): the app answers it,
/// labelled BYPASS with `reason` (a fixed token, RFC 9211 §2.8 `detail`).
#[pyclass(frozen, eq, hash, module = "oxicache._core")]
#[derive(PartialEq, Eq, Hash)]
pub struct Bypass {
    reason: Cow<'static, str>,
}

impl Bypass {
    /// A bypass for one of the engine's fixed reasons.
    pub fn of<'py>(py: Python<'py>, reason: &'static str) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(
            py,
            Bypass {
                reason: Cow::Borrowed(reason),
            },
        )?
        .into_any())
    }
}

#[pymethods]
impl Bypass {
    #[new]
    fn new(reason: String) -> Self {
        Bypass {
            reason: Cow::Owned(reason),
        }
    }

    /// Why the cache stepped aside: `method`, `credentials`, `request-body`...
    #[getter]
    fn reason(&self) -> &str {
        &self.reason
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let reason = pyo3::types::PyString::new(py, &self.reason).repr()?;
        Ok(format!("Bypass({reason})"))
    }
}

/// What `MiddlewareEngine.on_response` asks Python to do with the app's response as it starts.
#[pyclass(frozen, eq, eq_int, hash, module = "oxicache._core")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseAction {
    /// Pass it on as it comes, with the fields returned (it will not be stored).
    #[pyo3(name = "PASS")]
    Pass = 0,
    /// Hold it back until complete: it may be stored (`MiddlewareEngine.complete`).
    #[pyo3(name = "BUFFER")]
    Buffer = 1,
    /// The app confirmed the stale entry with a 304 to the cache's validation (RFC 9111
    /// §4.3.4): answer from the entry (`MiddlewareEngine.freshen`).
    #[pyo3(name = "FRESHEN")]
    Freshen = 2,
    /// The app failed inside the entry's stale-if-error window (RFC 5861 §4): answer with
    /// the stale reply instead.
    #[pyo3(name = "STALE_ON_ERROR")]
    StaleOnError = 3,
}

/// Registers the result types, and `Hit` as the name of the reply tuple's type.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Bypass>()?;
    m.add_class::<ResponseAction>()?;
    m.add("Hit", m.py().get_type::<pyo3::types::PyTuple>())?;
    Ok(())
}
