//! Conversions from Python objects into what `core` and `http` take. One place, one direction.

use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple,
};

use super::errors::unkeyable;
use crate::core::key::KeyBuilder;

/// An ASGI header list, kept as Python bytes so the Rust side can borrow without copying.
pub type Headers<'py> = Vec<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)>;

/// Reads an ASGI header list (`[(name: bytes, value: bytes), ...]`). Anything else is an error,
/// which callers turn into a bypass so the request is answered as if there were no cache.
pub fn headers<'py>(value: &Bound<'py, PyAny>) -> PyResult<Headers<'py>> {
    let mut out = Vec::new();
    if let Ok(list) = value.cast::<PyList>() {
        out.reserve(list.len());
        for item in list.iter() {
            out.push(pair(&item)?);
        }
    } else {
        for item in value.try_iter()? {
            out.push(pair(&item?)?);
        }
    }
    Ok(out)
}

fn pair<'py>(item: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    if let Ok(t) = item.cast::<PyTuple>() {
        if t.len() == 2 {
            let name = t.get_item(0)?.cast_into::<PyBytes>()?;
            let value = t.get_item(1)?.cast_into::<PyBytes>()?;
            return Ok((name, value));
        }
    }
    let name = item.get_item(0)?.cast_into::<PyBytes>()?;
    let value = item.get_item(1)?.cast_into::<PyBytes>()?;
    Ok((name, value))
}

/// Borrowed view of a header list for the pure-Rust parsers.
pub fn header_slices<'a>(headers: &'a Headers<'_>) -> Vec<(&'a [u8], &'a [u8])> {
    headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect()
}

/// Nesting depth past which a value is refused (self-referencing lists, hostile input).
const MAX_DEPTH: u32 = 32;

/// Appends one Python value to a key. Plain values are encoded here; anything else is handed to
/// `fallback` (Python), which returns plain values for models, dataclasses, dates, UUIDs... or
/// raises `UnkeyableArgument`.
pub fn encode_value(
    kb: &mut KeyBuilder,
    obj: &Bound<'_, PyAny>,
    fallback: &Bound<'_, PyAny>,
    depth: u32,
) -> PyResult<()> {
    let py = obj.py();
    if depth > MAX_DEPTH {
        return Err(unkeyable(
            py,
            "value nested too deeply to be part of a cache key".into(),
        ));
    }
    if obj.is_none() {
        kb.none();
    } else if let Ok(s) = obj.cast::<PyString>() {
        kb.str(s.to_str()?);
    } else if let Ok(b) = obj.cast::<PyBool>() {
        // Before int: bool is an int subclass, and True must not key like 1.
        kb.bool(b.is_true());
    } else if let Ok(i) = obj.cast::<PyInt>() {
        match i.extract::<i64>() {
            Ok(v) => kb.int(v),
            Err(_) => kb.big_int(i.str()?.to_str()?),
        };
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        kb.float(f.value());
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        kb.bytes(b.as_bytes());
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        // Its own tag: `(1, 2)` and `[1, 2]` are different values to the function.
        kb.tuple(t.len());
        for item in t.iter() {
            encode_value(kb, &item, fallback, depth + 1)?;
        }
    } else if let Ok(l) = obj.cast::<PyList>() {
        kb.list(l.len());
        for item in l.iter() {
            encode_value(kb, &item, fallback, depth + 1)?;
        }
    } else if let Ok(d) = obj.cast::<PyDict>() {
        // Sorted by encoded key, so equal dicts key the same whatever their insertion order.
        let mut entries = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let mut kpart = KeyBuilder::new();
            encode_value(&mut kpart, &k, fallback, depth + 1)?;
            let mut vpart = KeyBuilder::new();
            encode_value(&mut vpart, &v, fallback, depth + 1)?;
            entries.push((kpart.fields().to_vec(), vpart.fields().to_vec()));
        }
        entries.sort();
        kb.map(entries.len());
        for (k, v) in &entries {
            kb.raw_fields(k).raw_fields(v);
        }
    } else if obj.cast::<PySet>().is_ok() || obj.cast::<PyFrozenSet>().is_ok() {
        // Sorted by encoding: set iteration order differs between processes.
        let mut items = Vec::new();
        for item in obj.try_iter()? {
            let mut part = KeyBuilder::new();
            encode_value(&mut part, &item?, fallback, depth + 1)?;
            items.push(part.fields().to_vec());
        }
        items.sort();
        kb.set(items.len());
        for item in &items {
            kb.raw_fields(item);
        }
    } else {
        let plain = fallback.call1((obj,))?;
        if plain.is(obj) {
            return Err(unkeyable(
                py,
                "key fallback returned its input unchanged".into(),
            ));
        }
        // Marked, so that a UUID never keys like the tuple `("uuid", b"...")` it converts to.
        kb.converted();
        encode_value(kb, &plain, fallback, depth + 1)?;
    }
    Ok(())
}

/// The parts of an ASGI HTTP scope the key needs.
pub struct ScopeParts<'py> {
    pub method: Bound<'py, PyString>,
    pub scheme: Bound<'py, PyString>,
    pub raw_path: Bound<'py, PyBytes>,
    pub query: Bound<'py, PyBytes>,
    pub headers: Headers<'py>,
}

impl<'py> ScopeParts<'py> {
    /// None when the scope is not shaped as the ASGI spec says; the caller bypasses.
    pub fn read(scope: &Bound<'py, PyDict>) -> Option<Self> {
        let py = scope.py();
        // Interned keys: a hit must not build and hash the same strings every time.
        let method = scope
            .get_item(pyo3::intern!(py, "method"))
            .ok()??
            .cast_into::<PyString>()
            .ok()?;
        let scheme = match scope.get_item(pyo3::intern!(py, "scheme")).ok()? {
            Some(s) => s.cast_into::<PyString>().ok()?,
            None => pyo3::intern!(py, "http").clone(),
        };
        // The raw path, not the percent-decoded one: the router distinguishes what decoding
        // would merge (docs/http.md, keys). Servers may omit it; then use the decoded path.
        let raw_path = match scope.get_item(pyo3::intern!(py, "raw_path")).ok()? {
            Some(p) if !p.is_none() => p.cast_into::<PyBytes>().ok()?,
            _ => {
                let path = scope
                    .get_item(pyo3::intern!(py, "path"))
                    .ok()??
                    .cast_into::<PyString>()
                    .ok()?;
                PyBytes::new(py, path.to_str().ok()?.as_bytes())
            }
        };
        let query = match scope.get_item(pyo3::intern!(py, "query_string")).ok()? {
            Some(q) => q.cast_into::<PyBytes>().ok()?,
            None => PyBytes::new(py, b""),
        };
        let headers = headers(&scope.get_item(pyo3::intern!(py, "headers")).ok()??).ok()?;
        Some(ScopeParts {
            method,
            scheme,
            raw_path,
            query,
            headers,
        })
    }
}
