//! Rust -> Python for replies: the one place a [`Reply`] (decided by `crate::http::reply`)
//! becomes the `(status, headers, body)` tuple Python sends, for the decorator's `RouteCache`
//! and the middleware's `MiddlewareEngine` alike.
//!
//! The names and labels every reply carries are built once per route or engine, and a hit
//! reuses the stored header pairs and body as they are: no copy, one list and one tuple.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::convert::Headers;
use super::store::PyPayload;
use crate::core::response_facts::ResponseFacts;
use crate::core::store::Stored;
use crate::http::cache_status::CacheStatus;
use crate::http::dates::format_http_date;
use crate::http::reply::{Field, Keep, Label, OwnFields, Reply, SetAside, StoredResponse};

/// Builds replies for one route or engine: its label's field name and the Python objects
/// every reply shares.
pub struct Replier {
    /// The label's field name, lower-case (`x-cache` by default).
    label_name: Vec<u8>,
    /// The label fields, `(name, value)`, in the order of [`Label`]: one tuple each, shared
    /// by every reply.
    py_labels: [Py<PyTuple>; 4],
    py_age: Py<PyBytes>,
    py_cache_status: Py<PyBytes>,
    py_empty: Py<PyBytes>,
    py_content_length: Py<PyBytes>,
    py_etag: Py<PyBytes>,
    py_last_modified: Py<PyBytes>,
    /// The last `Last-Modified` value formatted, by its time: hits of one entry send the
    /// same date, formatted once (RFC 9110 §5.6.7 IMF-fixdate).
    last_date: Mutex<Option<(i64, Py<PyBytes>)>>,
}

/// A reply's status, header list and body.
pub type Parts<'py> = (u16, Bound<'py, PyList>, Bound<'py, PyBytes>);

/// The reply tuple `(status, headers, body)` Python sends.
#[inline]
fn tuple<'py>(
    py: Python<'py>,
    status: u16,
    headers: Bound<'py, PyList>,
    body: Bound<'py, PyBytes>,
) -> PyResult<Bound<'py, PyTuple>> {
    (status, headers, body).into_pyobject(py)
}

/// The most fields a reply adds after the base list (see `Reply::try_for_each_added`).
const MAX_ADDED: usize = 6;

/// The `Cache-Status` member as bytes, assembled on the stack (on the heap only past the
/// length of any member this cache writes today).
fn cache_status_bytes<'py>(py: Python<'py>, status: &CacheStatus<'_>) -> Bound<'py, PyBytes> {
    let mut buf = [0u8; 128];
    let mut at = 0;
    let mut long = false;
    status.write_with(|piece| match buf.get_mut(at..at + piece.len()) {
        Some(slot) => {
            slot.copy_from_slice(piece);
            at += piece.len();
        }
        None => long = true,
    });
    if long {
        return PyBytes::new(py, &status.to_vec());
    }
    PyBytes::new(py, &buf[..at])
}

fn label_index(label: Label) -> usize {
    match label {
        Label::Hit => 0,
        Label::Miss => 1,
        Label::Stale => 2,
        Label::Bypass => 3,
    }
}

impl Replier {
    /// The replier of a cache whose label field is `label_name` (any case).
    pub fn new(py: Python<'_>, label_name: &str) -> PyResult<Self> {
        let label_name = label_name.to_ascii_lowercase().into_bytes();
        let bytes = |b: &[u8]| PyBytes::new(py, b).unbind();
        let pair = |label: Label| {
            let name = PyBytes::new(py, &label_name);
            Ok::<_, PyErr>(
                (name, PyBytes::new(py, label.as_bytes()))
                    .into_pyobject(py)?
                    .unbind(),
            )
        };
        Ok(Replier {
            py_labels: [
                pair(Label::Hit)?,
                pair(Label::Miss)?,
                pair(Label::Stale)?,
                pair(Label::Bypass)?,
            ],
            label_name,
            py_age: bytes(b"age"),
            py_cache_status: bytes(b"cache-status"),
            py_empty: bytes(b""),
            py_content_length: bytes(b"content-length"),
            py_etag: bytes(b"etag"),
            py_last_modified: bytes(b"last-modified"),
            last_date: Mutex::new(None),
        })
    }

    /// The fields this cache writes on its replies.
    pub fn own(&self) -> OwnFields<'_> {
        OwnFields {
            label: &self.label_name,
        }
    }

    /// What a stored entry brings to a reply: the decorator's entries keep their validators in
    /// the entry (ETag) and the payload (Last-Modified), the middleware's in its facts.
    #[inline(always)]
    pub fn facts<'e>(py: Python<'_>, entry: &'e Stored<PyPayload>) -> PyResult<StoredResponse<'e>> {
        let payload = &entry.payload;
        let (etag, modified) = match payload.mw.as_deref() {
            None => (Some(entry.etag()), payload.last_modified),
            Some(ResponseFacts::Response {
                etag,
                last_modified,
                ..
            }) => (etag.as_deref(), *last_modified),
            Some(ResponseFacts::Variants { .. }) => {
                return Err(pyo3::exceptions::PyRuntimeError::new_err(
                    "not a response entry",
                ))
            }
        };
        let content_length = payload
            .content_length
            .then(|| payload.body.bind(py).as_bytes().len());
        Ok(StoredResponse {
            status: entry.meta.status,
            etag,
            modified,
            set_aside: SetAside {
                content_length,
                last_modified: payload.last_modified,
                etag: Some(entry.etag()),
            },
        })
    }

    /// The reply tuple `(status, headers, body)` for a stored entry.
    pub fn replay<'py>(
        &self,
        py: Python<'py>,
        entry: &Stored<PyPayload>,
        reply: &Reply<'_>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (status, headers, body) = self.replay_parts(py, entry, reply)?;
        tuple(py, status, headers, body)
    }

    /// The status, header list and body of the reply for a stored entry.
    pub fn replay_parts<'py>(
        &self,
        py: Python<'py>,
        entry: &Stored<PyPayload>,
        reply: &Reply<'_>,
    ) -> PyResult<Parts<'py>> {
        let stored = entry.payload.headers.bind(py);
        let out = if reply.keep == Keep::All {
            // The common case, a 200: the added fields first, then the list made at its
            // final size from both halves, whose lengths are known (no regrowth), its items
            // given to it rather than appended.
            let mut added: [Option<Bound<'py, PyAny>>; MAX_ADDED] = Default::default();
            let mut n = 0;
            reply.try_for_each_added(|field| {
                added[n] = Some(self.field(py, &field)?.into_any());
                n += 1;
                Ok::<_, PyErr>(())
            })?;
            let items = stored
                .iter()
                .map(Some)
                .chain(added[..n].iter_mut().map(Option::take));
            PyList::new(py, items)?
        } else {
            let out = PyList::empty(py);
            for pair in stored.iter() {
                if reply.keeps(pair.get_item(0)?.cast::<PyBytes>()?.as_bytes()) {
                    out.append(pair)?;
                }
            }
            self.append_added(py, &out, reply)?;
            out
        };
        let body = if reply.body {
            entry.payload.body.bind(py)
        } else {
            self.py_empty.bind(py)
        };
        Ok((reply.status, out, body.clone()))
    }

    /// The reply tuple for a response passed on (`headers`, `body`: the app's).
    pub fn pass_on<'py>(
        &self,
        py: Python<'py>,
        headers: &Headers<'py>,
        body: &Bound<'py, PyBytes>,
        reply: &Reply<'_>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (status, headers, body) = self.pass_on_parts(py, headers, body, reply)?;
        tuple(py, status, headers, body)
    }

    /// The status, header list and body of the reply for a response passed on.
    pub fn pass_on_parts<'py>(
        &self,
        py: Python<'py>,
        headers: &Headers<'py>,
        body: &Bound<'py, PyBytes>,
        reply: &Reply<'_>,
    ) -> PyResult<Parts<'py>> {
        let out = self.fields(py, headers, reply)?;
        let body = if reply.body {
            body
        } else {
            self.py_empty.bind(py)
        };
        Ok((reply.status, out, body.clone()))
    }

    /// The fields of a reply whose base fields are `headers` (a response passed on).
    pub fn fields<'py>(
        &self,
        py: Python<'py>,
        headers: &Headers<'py>,
        reply: &Reply<'_>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for (name, value) in headers {
            if reply.keeps(name.as_bytes()) {
                out.append((name, value))?;
            }
        }
        self.append_added(py, &out, reply)?;
        Ok(out)
    }

    /// A reply with no base fields and no body (the 504 of only-if-cached).
    pub fn bare<'py>(&self, py: Python<'py>, reply: &Reply<'_>) -> PyResult<Bound<'py, PyTuple>> {
        let out = PyList::empty(py);
        self.append_added(py, &out, reply)?;
        tuple(py, reply.status, out, self.py_empty.bind(py).clone())
    }

    /// A list of the given fields.
    pub fn list<'py, 'a>(
        &self,
        py: Python<'py>,
        fields: impl IntoIterator<Item = Field<'a>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for field in fields {
            out.append(self.field(py, &field)?)?;
        }
        Ok(out)
    }

    fn append_added<'py>(
        &self,
        py: Python<'py>,
        out: &Bound<'py, PyList>,
        reply: &Reply<'_>,
    ) -> PyResult<()> {
        reply.try_for_each_added(|field| out.append(self.field(py, &field)?))
    }

    /// One added field as a `(name, value)` tuple of bytes.
    fn field<'py>(&self, py: Python<'py>, field: &Field<'_>) -> PyResult<Bound<'py, PyTuple>> {
        let mut digits = itoa::Buffer::new();
        let (name, value) = match field {
            Field::ContentLength(n) => (
                self.py_content_length.bind(py).clone(),
                PyBytes::new(py, digits.format(*n).as_bytes()),
            ),
            Field::LastModified(t) => (
                self.py_last_modified.bind(py).clone(),
                self.http_date(py, *t),
            ),
            Field::ETag(e) => (
                self.py_etag.bind(py).clone(),
                PyBytes::new(py, e.as_bytes()),
            ),
            // Whole seconds (RFC 9111 §1.2.2 delta-seconds), formatted as an integer.
            Field::Age(n) => (
                self.py_age.bind(py).clone(),
                PyBytes::new(py, digits.format(*n).as_bytes()),
            ),
            Field::Label(l) => return Ok(self.py_labels[label_index(*l)].bind(py).clone()),
            Field::CacheStatus(s) => (
                self.py_cache_status.bind(py).clone(),
                cache_status_bytes(py, s),
            ),
        };
        (name, value).into_pyobject(py)
    }

    /// `Last-Modified`'s value for `time` (Unix seconds), reusing the last one formatted.
    fn http_date<'py>(&self, py: Python<'py>, time: i64) -> Bound<'py, PyBytes> {
        let mut last = match self.last_date.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some((t, value)) = last.as_ref() {
            if *t == time {
                return value.bind(py).clone();
            }
        }
        let value = PyBytes::new(py, format_http_date(time).as_bytes());
        *last = Some((time, value.clone().unbind()));
        value
    }
}
