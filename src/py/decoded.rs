//! The entries a remote route last decoded, kept with the frames they came from.
//!
//! A route on a remote backend reads the backend on every request: that read is what makes
//! every process see the same entry, and nothing here changes it. What it saves is the work
//! after the read. A hot key's frame is usually byte for byte the frame the previous request
//! got, and decoding it again (zstd, the envelope's checksum and fields, the header objects)
//! would give the same entry. So [`DecodedFrames`] remembers, per key, the last frame and the
//! entry decoded from it, and hands the entry back only for an identical frame (compared in
//! full, not by hash). Any other frame (the entry was rewritten, invalidated and stored again,
//! or is corrupt) is decoded as usual and replaces the remembered one.
//!
//! Bounded: frames up to [`MAX_FRAME`] bytes, at most [`MAX_ENTRIES`] keys per route, and at
//! most [`MAX_BYTES`] charged (frames plus decoded sizes) in the whole process, whatever the
//! number of routes. A route past its key bound starts its table over; a frame that would take
//! the process past its byte bound empties its route's table and, if that is not enough, is
//! simply not remembered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::store::PyPayload;
use crate::core::key::Key;
use crate::core::store::Stored;

/// Frames longer than this are not remembered (their copy would cost more memory than the
/// decode costs time).
pub const MAX_FRAME: usize = 64 * 1024;
/// Keys remembered per route at most.
pub const MAX_ENTRIES: usize = 256;
/// Bytes (frames plus decoded entries) remembered in the whole process at most.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// Bytes remembered now, all routes together.
static PROCESS_BYTES: AtomicUsize = AtomicUsize::new(0);

struct Remembered {
    frame: Py<PyBytes>,
    entry: Arc<Stored<PyPayload>>,
    charged: usize,
}

#[derive(Default)]
struct Table {
    by_digest: HashMap<[u8; 32], Remembered>,
    /// This route's share of [`PROCESS_BYTES`].
    bytes: usize,
}

impl Table {
    fn release(&mut self, charged: usize) {
        self.bytes = self.bytes.saturating_sub(charged);
        PROCESS_BYTES.fetch_sub(charged, Ordering::Relaxed);
    }

    fn clear(&mut self) {
        self.by_digest.clear();
        PROCESS_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
        self.bytes = 0;
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        PROCESS_BYTES.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Whether `charged` more bytes fit in the process's budget.
fn within_budget(charged: usize) -> bool {
    PROCESS_BYTES
        .load(Ordering::Relaxed)
        .saturating_add(charged)
        <= MAX_BYTES
}

/// Per key, the last frame read from the backend and the entry decoded from it.
#[derive(Default)]
pub struct DecodedFrames {
    table: Mutex<Table>,
}

impl DecodedFrames {
    fn lock(&self) -> MutexGuard<'_, Table> {
        match self.table.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The entry decoded before from exactly these `frame` bytes for `key`, if any.
    pub fn get(&self, py: Python<'_>, key: &Key, frame: &[u8]) -> Option<Arc<Stored<PyPayload>>> {
        let table = self.lock();
        let seen = table.by_digest.get(key.digest())?;
        // The digest names the key; the canonical bytes prove it (a collision is a miss), and
        // the whole frame must match, not a hash of it.
        (seen.frame.as_bytes(py) == frame && seen.entry.key() == key.canonical())
            .then(|| Arc::clone(&seen.entry))
    }

    /// Remembers `entry` as what `frame` decodes to for `key`. `decoded_bytes` is the entry's
    /// charged size.
    pub fn remember(
        &self,
        key: &Key,
        frame: &Bound<'_, PyBytes>,
        entry: Arc<Stored<PyPayload>>,
        decoded_bytes: usize,
    ) {
        let len = frame.as_bytes().len();
        if len > MAX_FRAME {
            return;
        }
        let charged = len.saturating_add(decoded_bytes);
        let mut table = self.lock();
        if let Some(old) = table.by_digest.remove(key.digest()) {
            table.release(old.charged);
        }
        if table.by_digest.len() >= MAX_ENTRIES || !within_budget(charged) {
            table.clear();
        }
        if !within_budget(charged) {
            return;
        }
        PROCESS_BYTES.fetch_add(charged, Ordering::Relaxed);
        table.bytes += charged;
        table.by_digest.insert(
            *key.digest(),
            Remembered {
                frame: frame.clone().unbind(),
                entry,
                charged,
            },
        );
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.lock().by_digest.len()
    }
}
