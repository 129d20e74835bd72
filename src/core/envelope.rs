//! The versioned binary encoding of one cache entry, as stored by the remote backends.
//!
//! A remote backend (Redis, Memcached, DynamoDB) stores opaque bytes under a key derived from a
//! hash of the canonical request key. The envelope carries everything needed to replay the
//! response — metadata, headers, body — plus a key check, so that a reader can tell a genuine
//! hit from a hash collision or from a value some other program wrote under the same name
//! ([`decode_for`]). The check is a second digest of the canonical key
//! ([`crate::core::key::Key::check`]), never the canonical bytes: those can hold credentials and
//! other request data, and a backend (and its backups) must not.
//!
//! # Layout (version 2)
//!
//! All integers and floats are little-endian. `n`, `e`, `a`, `b` and `c` stand for the lengths
//! read just before the field they size.
//!
//! | Offset   | Size | Field                         | Notes                                        |
//! |----------|------|-------------------------------|----------------------------------------------|
//! | 0        | 4    | magic                         | [`MAGIC`]: `89 4F 58 43`                     |
//! | 4        | 1    | version                       | [`VERSION`]                                  |
//! | 5        | 1    | flags                         | reserved, stored verbatim (bit 0: zstd body) |
//! | 6        | 4    | key_len `u32` = n             |                                              |
//! | 10       | n    | key                           | the key check (32 bytes when oxicache writes)|
//! | 10+n     | 2    | status `u16`                  |                                              |
//! | 12+n     | 8    | stored_at `f64`               | finite                                       |
//! | 20+n     | 8    | ttl `f64`                     | finite                                       |
//! | 28+n     | 8    | stale_while_revalidate `f64`  | finite                                       |
//! | 36+n     | 8    | stale_if_error `f64`          | finite                                       |
//! | 44+n     | 2    | etag_len `u16` = e            |                                              |
//! | 46+n     | e    | etag                          | UTF-8                                        |
//! | 46+n+e   | 2    | header_count `u16`            | then, header_count times:                    |
//! |          | 2    | ┆ name_len `u16` = a          |                                              |
//! |          | a    | ┆ name                        | any bytes                                    |
//! |          | 4    | ┆ value_len `u32` = b         |                                              |
//! |          | b    | ┆ value                       | any bytes                                    |
//! | …        | 4    | body_len `u32` = c            |                                              |
//! | …        | c    | body                          | any bytes                                    |
//! | len − 8  | 8    | checksum `u64`                | xxh3-64 of every byte before it              |
//!
//! The checksum is the last thing in the buffer: nothing may follow it. The smallest possible
//! envelope (empty key, etag, headers and body) is 60 bytes.
//!
//! # Limits
//!
//! Each length prefix bounds its field: key, header values and body at most `u32::MAX` bytes;
//! etag and header names at most `u16::MAX` bytes; at most `u16::MAX` headers. [`encode`]
//! returns [`EnvelopeError::LengthOverflow`] rather than write a wrong prefix. Backends have far
//! smaller item limits anyway, which is why [`encoded_len`] exists: it gives the exact size
//! without building the buffer.
//!
//! # Why the checksum
//!
//! Remote stores can hand back a value cut short (a client-side size limit, an interrupted
//! write) or one written by an older or foreign program under the same name. Serving such bytes
//! as an HTTP response would be far worse than a miss, so every byte is either validated
//! structurally or covered by the checksum. xxh3 detects accidental corruption only; it is not a
//! MAC, so it does not protect against someone who can write to the backend.

use std::fmt;

use xxhash_rust::xxh3::xxh3_64;

use super::entry::EntryMeta;

/// The four bytes every envelope starts with.
///
/// The first byte is `0x89` for the same reason PNG uses it: it is not ASCII, and as a UTF-8
/// continuation byte it cannot start valid UTF-8, so no text or JSON value that another program
/// left under the same backend key can look like an envelope; it also differs from the `0x80`
/// that starts Python pickles (protocol 2 and later). The version lives in its own byte after
/// the magic, so a future format is reported as [`EnvelopeError::UnsupportedVersion`] rather
/// than as a foreign value.
pub const MAGIC: [u8; 4] = *b"\x89OXC";

/// The format version this module writes, and the only one it reads.
///
/// Entries written by any other version are rejected ([`EnvelopeError::UnsupportedVersion`]), so
/// during a rolling upgrade old and new workers each treat the other's entries as misses instead
/// of misreading them; the entry is simply recomputed and overwritten.
pub const VERSION: u8 = 2;

/// Magic, version and flags: what must be present to even identify the format.
const PREAMBLE_LEN: usize = MAGIC.len() + 1 + 1;

/// Size of the checksum trailer.
const CHECKSUM_LEN: usize = 8;

/// Bytes of every envelope that do not depend on the variable-length fields: preamble,
/// key_len, status, four times, etag_len, header_count, body_len and checksum.
const FIXED_LEN: usize = PREAMBLE_LEN + 4 + 2 + 4 * 8 + 2 + 2 + 4 + CHECKSUM_LEN;

/// Fixed bytes per header (name_len and value_len): used to bound `header_count` by what the
/// buffer could actually hold before reserving memory for it.
const HEADER_FIXED_LEN: usize = 2 + 4;

/// Why a buffer could not be decoded, or an entry could not be encoded.
///
/// Callers on the read path treat every variant as a cache miss; the variants exist for logs and
/// metrics, so that "the backend truncates values" can be told apart from "another program
/// writes under our keys".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The buffer cannot be an envelope: it is shorter than the magic, version and flags, or
    /// (once those are checked) shorter than the smallest complete envelope.
    TooShort,
    /// The buffer does not start with [`MAGIC`]: it was not written by oxicache.
    BadMagic,
    /// The buffer was written in another format version (older or newer), carried here.
    UnsupportedVersion(u8),
    /// A length prefix points past the end of the buffer, or the checksum is missing.
    Truncated,
    /// A length does not fit its destination: on encode, a field is longer than its length
    /// prefix allows (see the module's limits); on decode, a `u32` length exceeds this
    /// platform's `usize`.
    LengthOverflow,
    /// The stored checksum does not match the content: the bytes were corrupted.
    BadChecksum,
    /// The envelope is intact but stores a different canonical key than the one asked for
    /// (a hash collision between keys, or a foreign entry).
    KeyMismatch,
    /// Bytes follow the checksum.
    TrailingBytes,
    /// The etag is not valid UTF-8 although the checksum matches (a faulty writer).
    InvalidUtf8,
    /// One of the four times is NaN or infinite, on encode, or on decode although the checksum
    /// matches (a faulty writer). A non-finite time would make freshness arithmetic meaningless
    /// (NaN compares false both ways), so such an entry is refused rather than served.
    NonFiniteTime,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("envelope too short"),
            Self::BadMagic => f.write_str("not an oxicache envelope (bad magic)"),
            Self::UnsupportedVersion(v) => {
                write!(
                    f,
                    "unsupported envelope version {v} (this build reads {VERSION})"
                )
            }
            Self::Truncated => f.write_str("envelope truncated"),
            Self::LengthOverflow => f.write_str("envelope field length overflows its prefix"),
            Self::BadChecksum => f.write_str("envelope checksum mismatch"),
            Self::KeyMismatch => f.write_str("envelope stores a different key"),
            Self::TrailingBytes => f.write_str("bytes after the envelope checksum"),
            Self::InvalidUtf8 => f.write_str("envelope etag is not valid UTF-8"),
            Self::NonFiniteTime => f.write_str("envelope time is NaN or infinite"),
        }
    }
}

impl std::error::Error for EnvelopeError {}

/// A decoded envelope borrowing from the input buffer.
///
/// Borrowing means decoding copies nothing but the etag: a hit's body is copied once, by
/// whoever turns it into the response, not once more here.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    /// The canonical cache key the entry was stored under.
    pub key: &'a [u8],
    /// Status, times and etag.
    pub meta: EntryMeta,
    /// Response header fields in stored order, repeated names kept (e.g. `set-cookie`).
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// The response body (or serialized function value), exactly as stored.
    pub body: &'a [u8],
    /// The reserved flags byte, uninterpreted (bit 0 will mean "body zstd-compressed").
    pub flags: u8,
}

/// The exact size in bytes of the envelope [`encode`] would produce for these fields.
///
/// Backends call this to compare against their item size limit before paying for the encoding.
/// It does not check the per-field limits (those are [`encode`]'s job), and it saturates at
/// `usize::MAX` instead of overflowing — such a size is over every backend's limit anyway.
pub fn encoded_len(key: &[u8], meta: &EntryMeta, headers: &[(&[u8], &[u8])], body: &[u8]) -> usize {
    // Saturating because `headers` may repeat one large slice many times: the sum of lengths is
    // not bounded by the address space even though every slice is.
    headers
        .iter()
        .fold(FIXED_LEN, |acc, (name, value)| {
            acc.saturating_add(HEADER_FIXED_LEN)
                .saturating_add(name.len())
                .saturating_add(value.len())
        })
        .saturating_add(key.len())
        .saturating_add(meta.etag.len())
        .saturating_add(body.len())
}

/// Encode one entry into a fresh buffer of exactly [`encoded_len`] bytes.
///
/// This returns a `Result` rather than a bare `Vec`: silently truncating a length prefix would
/// store a corrupt entry, and panicking would take a worker down over an oversized response.
///
/// # Errors
///
/// - [`EnvelopeError::LengthOverflow`] if a field exceeds its length prefix: key, a header value
///   or the body over `u32::MAX` bytes, the etag or a header name over `u16::MAX` bytes, or more
///   than `u16::MAX` headers.
/// - [`EnvelopeError::NonFiniteTime`] if `stored_at`, `ttl`, `stale_while_revalidate` or
///   `stale_if_error` is NaN or infinite (decode would refuse it; use a large finite value for
///   "practically forever").
pub fn encode(
    key: &[u8],
    meta: &EntryMeta,
    headers: &[(&[u8], &[u8])],
    body: &[u8],
    flags: u8,
) -> Result<Vec<u8>, EnvelopeError> {
    let times = [
        meta.stored_at,
        meta.ttl,
        meta.stale_while_revalidate,
        meta.stale_if_error,
    ];
    if !times.iter().all(|t| t.is_finite()) {
        return Err(EnvelopeError::NonFiniteTime);
    }
    // Validate every prefix before allocating, so a refused entry costs nothing.
    let key_len = len_u32(key)?;
    let etag_len = len_u16(meta.etag.as_bytes())?;
    let header_count = u16::try_from(headers.len()).map_err(|_| EnvelopeError::LengthOverflow)?;
    for (name, value) in headers {
        len_u16(name)?;
        len_u32(value)?;
    }
    let body_len = len_u32(body)?;

    let mut out = Vec::with_capacity(encoded_len(key, meta, headers, body));
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&meta.status.to_le_bytes());
    for t in times {
        out.extend_from_slice(&t.to_le_bytes());
    }
    out.extend_from_slice(&etag_len.to_le_bytes());
    out.extend_from_slice(meta.etag.as_bytes());
    out.extend_from_slice(&header_count.to_le_bytes());
    for (name, value) in headers {
        // Both lengths were checked above; the `?` cannot fire but keeps this free of casts.
        out.extend_from_slice(&len_u16(name)?.to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&len_u32(value)?.to_le_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(body);
    let checksum = xxh3_64(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// Decode an envelope, borrowing key, headers and body from `buf`.
///
/// Checks, in this order: preamble length ([`TooShort`](EnvelopeError::TooShort)), magic,
/// version, minimum length, then walks the fields with every read bounds-checked
/// ([`Truncated`](EnvelopeError::Truncated)), requires the checksum to end the buffer
/// ([`TrailingBytes`](EnvelopeError::TrailingBytes)), verifies the checksum, and only then
/// validates content (etag UTF-8, finite times). Structure comes before the checksum because the
/// checksum's position depends on it, and it makes truncation — the likeliest fault of a remote
/// store — show up as such; content comes after, so that a content error means a faulty writer
/// rather than random corruption. Nothing is returned from a buffer whose checksum did not match.
///
/// This does not compare keys; use [`decode_for`] on the read path.
pub fn decode(buf: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    if buf.len() < PREAMBLE_LEN {
        return Err(EnvelopeError::TooShort);
    }
    let mut r = Reader { rest: buf };
    if r.array::<4>()? != MAGIC {
        return Err(EnvelopeError::BadMagic);
    }
    let version = r.u8()?;
    if version != VERSION {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    // Only now, so that a shorter future format still reports its version.
    if buf.len() < FIXED_LEN {
        return Err(EnvelopeError::TooShort);
    }
    let flags = r.u8()?;
    let key_len = r.len_u32()?;
    let key = r.bytes(key_len)?;
    let status = r.u16()?;
    let stored_at = r.f64()?;
    let ttl = r.f64()?;
    let stale_while_revalidate = r.f64()?;
    let stale_if_error = r.f64()?;
    let etag_len = usize::from(r.u16()?);
    let etag = r.bytes(etag_len)?;
    let header_count = usize::from(r.u16()?);
    // Reserve only what the remaining bytes could hold, so a corrupt count cannot make us
    // allocate for headers that are not there.
    let plausible = r.rest.len() / HEADER_FIXED_LEN;
    let mut headers = Vec::with_capacity(header_count.min(plausible));
    for _ in 0..header_count {
        let name_len = usize::from(r.u16()?);
        let name = r.bytes(name_len)?;
        let value_len = r.len_u32()?;
        let value = r.bytes(value_len)?;
        headers.push((name, value));
    }
    let body_len = r.len_u32()?;
    let body = r.bytes(body_len)?;
    let stored_checksum = u64::from_le_bytes(r.array::<CHECKSUM_LEN>()?);
    if !r.rest.is_empty() {
        return Err(EnvelopeError::TrailingBytes);
    }
    // The walk ended exactly at the end of `buf`, so the checksum is its last 8 bytes and covers
    // everything before them.
    let covered = buf
        .split_last_chunk::<CHECKSUM_LEN>()
        .map(|(covered, _)| covered)
        .ok_or(EnvelopeError::Truncated)?;
    if xxh3_64(covered) != stored_checksum {
        return Err(EnvelopeError::BadChecksum);
    }
    let etag = std::str::from_utf8(etag).map_err(|_| EnvelopeError::InvalidUtf8)?;
    let times = [stored_at, ttl, stale_while_revalidate, stale_if_error];
    if !times.iter().all(|t| t.is_finite()) {
        return Err(EnvelopeError::NonFiniteTime);
    }
    Ok(Envelope {
        key,
        meta: EntryMeta {
            status,
            stored_at,
            ttl,
            stale_while_revalidate,
            stale_if_error,
            etag: etag.to_owned(),
        },
        headers,
        body,
        flags,
    })
}

/// Decode and check that the stored canonical key equals `expected_key`.
///
/// Backends address entries by a hash of the canonical key, so two keys can in principle share
/// a slot, and another program may write under the same name; either way the stored key differs
/// and the result is [`EnvelopeError::KeyMismatch`], which callers treat as a miss.
pub fn decode_for<'a>(buf: &'a [u8], expected_key: &[u8]) -> Result<Envelope<'a>, EnvelopeError> {
    let envelope = decode(buf)?;
    if envelope.key != expected_key {
        return Err(EnvelopeError::KeyMismatch);
    }
    Ok(envelope)
}

/// A field's length as a `u32` prefix, or `LengthOverflow` if it does not fit.
fn len_u32(field: &[u8]) -> Result<u32, EnvelopeError> {
    u32::try_from(field.len()).map_err(|_| EnvelopeError::LengthOverflow)
}

/// A field's length as a `u16` prefix, or `LengthOverflow` if it does not fit.
fn len_u16(field: &[u8]) -> Result<u16, EnvelopeError> {
    u16::try_from(field.len()).map_err(|_| EnvelopeError::LengthOverflow)
}

/// Cursor over the unread suffix of the buffer.
///
/// Holding the suffix rather than an offset means every read is a checked split of a slice:
/// there is no position arithmetic that could overflow and no index that could be out of range.
struct Reader<'a> {
    /// The bytes not yet consumed; each read splits its field off the front.
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// The next `N` bytes as an array, or `Truncated`.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], EnvelopeError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(EnvelopeError::Truncated)?;
        self.rest = tail;
        Ok(*head)
    }

    /// The next `len` bytes, borrowed from the input, or `Truncated`.
    fn bytes(&mut self, len: usize) -> Result<&'a [u8], EnvelopeError> {
        let (head, tail) = self
            .rest
            .split_at_checked(len)
            .ok_or(EnvelopeError::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// The next byte, or `Truncated`.
    fn u8(&mut self) -> Result<u8, EnvelopeError> {
        Ok(u8::from_le_bytes(self.array()?))
    }

    /// The next little-endian `u16`, or `Truncated`.
    fn u16(&mut self) -> Result<u16, EnvelopeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// The next little-endian `f64`, or `Truncated`. Any bit pattern is accepted here;
    /// finiteness is checked once the checksum has vouched for the bytes.
    fn f64(&mut self) -> Result<f64, EnvelopeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    /// A `u32` length prefix as a `usize`; `LengthOverflow` only where `usize` is 16 bits.
    fn len_u32(&mut self) -> Result<usize, EnvelopeError> {
        let len = u32::from_le_bytes(self.array()?);
        usize::try_from(len).map_err(|_| EnvelopeError::LengthOverflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_meta() -> EntryMeta {
        EntryMeta {
            status: 200,
            stored_at: 1_700_000_000.25,
            ttl: 60.0,
            stale_while_revalidate: 30.0,
            stale_if_error: 300.0,
            etag: "W/\"abc-é\"".to_owned(),
        }
    }

    const SAMPLE_HEADERS: &[(&[u8], &[u8])] = &[
        (b"content-type", b"application/json"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"x-bin", b"\xff\x00\xc3\x28"),
    ];

    fn sample() -> Vec<u8> {
        encode(
            b"GET /items?q=1",
            &sample_meta(),
            SAMPLE_HEADERS,
            b"{\"ok\":true}\x00\xff",
            0b0000_0001,
        )
        .expect("sample encodes")
    }

    /// Encode, check the size promise, decode, and compare every field.
    fn round_trip(
        key: &[u8],
        meta: &EntryMeta,
        headers: &[(&[u8], &[u8])],
        body: &[u8],
        flags: u8,
    ) {
        let buf = encode(key, meta, headers, body, flags).expect("encodes");
        assert_eq!(buf.len(), encoded_len(key, meta, headers, body));
        let env = decode_for(&buf, key).expect("decodes");
        assert_eq!(env.key, key);
        assert_eq!(&env.meta, meta);
        assert_eq!(env.headers.as_slice(), headers);
        assert_eq!(env.body, body);
        assert_eq!(env.flags, flags);
    }

    /// Overwrite bytes at `at` and recompute the checksum, to build envelopes that are intact
    /// but carry content a correct writer would never produce.
    fn patch_and_reseal(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        let end = buf.len() - CHECKSUM_LEN;
        let sum = xxh3_64(&buf[..end]);
        buf[end..].copy_from_slice(&sum.to_le_bytes());
    }

    #[test]
    fn round_trips_sample() {
        round_trip(
            b"GET /items?q=1",
            &sample_meta(),
            SAMPLE_HEADERS,
            b"{\"ok\":true}\x00\xff",
            1,
        );
    }

    #[test]
    fn round_trips_empty_everything() {
        let meta = EntryMeta {
            status: 0,
            stored_at: 0.0,
            ttl: 0.0,
            stale_while_revalidate: 0.0,
            stale_if_error: 0.0,
            etag: String::new(),
        };
        round_trip(b"", &meta, &[], b"", 0);
        assert_eq!(encoded_len(b"", &meta, &[], b""), FIXED_LEN);
        assert_eq!(FIXED_LEN, 60, "module doc states the minimum size");
    }

    #[test]
    fn round_trips_empty_body_and_empty_headers() {
        round_trip(b"k", &sample_meta(), &[], b"", 0);
        round_trip(b"k", &sample_meta(), SAMPLE_HEADERS, b"", 0);
        round_trip(b"k", &sample_meta(), &[(b"", b"")], b"x", 0);
    }

    #[test]
    fn round_trips_repeated_names_and_non_ascii_header_bytes() {
        let headers: &[(&[u8], &[u8])] = &[
            (b"vary", b"accept"),
            (b"vary", b"accept-encoding"),
            (b"x-\xe2\x82\xac", b"\x80\x81\xfe\xff"),
            (b"x-latin1", b"caf\xe9"),
        ];
        round_trip(b"key", &sample_meta(), headers, b"body", 0xff);
    }

    #[test]
    fn round_trips_binary_and_one_megabyte_body() {
        let binary: Vec<u8> = (0..=255u8).collect();
        round_trip(b"k", &sample_meta(), SAMPLE_HEADERS, &binary, 0);
        let big: Vec<u8> = (0..1 << 20)
            .map(|i: u32| (i.wrapping_mul(31) >> 3) as u8)
            .collect();
        round_trip(b"k", &sample_meta(), SAMPLE_HEADERS, &big, 0);
    }

    #[test]
    fn round_trips_extreme_finite_times_and_negative_zero() {
        let meta = EntryMeta {
            status: u16::MAX,
            stored_at: f64::MAX,
            ttl: f64::MIN_POSITIVE / 2.0, // subnormal
            stale_while_revalidate: -0.0,
            stale_if_error: f64::MIN,
            etag: "\"x\"".to_owned(),
        };
        let buf = encode(b"k", &meta, &[], b"", 0).unwrap();
        let env = decode(&buf).unwrap();
        assert_eq!(env.meta, meta);
        assert!(env.meta.stale_while_revalidate.is_sign_negative());
    }

    #[test]
    fn flags_are_stored_not_interpreted() {
        for flags in [0u8, 1, 0x80, 0xff] {
            let buf = encode(b"k", &sample_meta(), &[], b"not zstd", flags).unwrap();
            let env = decode(&buf).unwrap();
            assert_eq!(env.flags, flags);
            assert_eq!(env.body, b"not zstd");
        }
    }

    #[test]
    fn layout_matches_module_doc() {
        let meta = sample_meta();
        let buf = encode(b"ab", &meta, &[(b"n", b"vv")], b"xyz", 7).unwrap();
        assert_eq!(&buf[..4], b"\x89OXC");
        assert_eq!(buf[4], VERSION);
        assert_eq!(buf[5], 7);
        assert_eq!(&buf[6..10], &2u32.to_le_bytes());
        assert_eq!(&buf[10..12], b"ab");
        assert_eq!(&buf[12..14], &200u16.to_le_bytes());
        assert_eq!(&buf[14..22], &meta.stored_at.to_le_bytes());
        assert_eq!(&buf[22..30], &meta.ttl.to_le_bytes());
        assert_eq!(&buf[30..38], &meta.stale_while_revalidate.to_le_bytes());
        assert_eq!(&buf[38..46], &meta.stale_if_error.to_le_bytes());
        let e = meta.etag.len();
        assert_eq!(&buf[46..48], &(e as u16).to_le_bytes());
        assert_eq!(&buf[48..48 + e], meta.etag.as_bytes());
        let h = 48 + e;
        assert_eq!(&buf[h..h + 2], &1u16.to_le_bytes());
        assert_eq!(&buf[h + 2..h + 4], &1u16.to_le_bytes());
        assert_eq!(&buf[h + 4..h + 5], b"n");
        assert_eq!(&buf[h + 5..h + 9], &2u32.to_le_bytes());
        assert_eq!(&buf[h + 9..h + 11], b"vv");
        assert_eq!(&buf[h + 11..h + 15], &3u32.to_le_bytes());
        assert_eq!(&buf[h + 15..h + 18], b"xyz");
        let end = buf.len() - 8;
        assert_eq!(end, h + 18);
        assert_eq!(&buf[end..], &xxh3_64(&buf[..end]).to_le_bytes());
    }

    #[test]
    fn every_truncation_fails_cleanly() {
        let buf = sample();
        for len in 0..buf.len() {
            let err = decode(&buf[..len]).expect_err("a truncated envelope must not decode");
            let expected_kinds = if len < FIXED_LEN {
                matches!(err, EnvelopeError::TooShort)
            } else {
                matches!(err, EnvelopeError::Truncated)
            };
            assert!(expected_kinds, "len {len}: unexpected {err:?}");
        }
    }

    /// Every single-bit flip is detected. No undetectable flip exists in this sample: a flip in
    /// the magic or version is refused outright, a flip in the checksum no longer matches the
    /// unchanged content, and a flip anywhere else changes the checksummed bytes — a length
    /// flip additionally moves or breaks the structure. A flip could only pass if xxh3-64 of the
    /// flipped content collided with the stored value; this exhaustive loop shows it does not
    /// for this sample.
    #[test]
    fn every_single_bit_flip_fails() {
        let buf = sample();
        let mut flipped = buf.clone();
        for i in 0..buf.len() {
            for bit in 0..8 {
                flipped[i] ^= 1 << bit;
                assert!(
                    decode(&flipped).is_err(),
                    "flip of bit {bit} in byte {i} went undetected"
                );
                flipped[i] ^= 1 << bit;
            }
        }
        // Content flips (flags, key, times, etag, header and body bytes) must be caught by the
        // checksum, not by luck: check one of each explicitly.
        for i in [5, 10, 30, buf.len() - 12] {
            flipped[i] ^= 0x10;
            assert_eq!(
                decode(&flipped),
                Err(EnvelopeError::BadChecksum),
                "byte {i}"
            );
            flipped[i] ^= 0x10;
        }
        assert_eq!(flipped, buf);
    }

    #[test]
    fn rejects_wrong_magic() {
        let mut buf = sample();
        buf[0] = b'O';
        assert_eq!(decode(&buf), Err(EnvelopeError::BadMagic));
        assert_eq!(
            decode(b"{\"json\": \"value\"}"),
            Err(EnvelopeError::BadMagic)
        );
        assert_eq!(decode(b"OXC"), Err(EnvelopeError::TooShort));
    }

    #[test]
    fn rejects_other_versions() {
        let mut buf = sample();
        buf[4] = VERSION + 1;
        assert_eq!(
            decode(&buf),
            Err(EnvelopeError::UnsupportedVersion(VERSION + 1))
        );
        buf[4] = 0;
        assert_eq!(decode(&buf), Err(EnvelopeError::UnsupportedVersion(0)));
        // Version 1 carried the canonical key in clear: read as foreign, then overwritten.
        buf[4] = 1;
        assert_eq!(decode(&buf), Err(EnvelopeError::UnsupportedVersion(1)));
        // A future format may be shorter than ours; its version is still reported.
        let mut short = MAGIC.to_vec();
        short.extend_from_slice(&[VERSION + 1, 0, 0]);
        assert_eq!(
            decode(&short),
            Err(EnvelopeError::UnsupportedVersion(VERSION + 1))
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut buf = sample();
        buf.push(0);
        assert_eq!(decode(&buf), Err(EnvelopeError::TrailingBytes));
        let mut twice = sample();
        twice.extend_from_slice(&sample());
        assert_eq!(decode(&twice), Err(EnvelopeError::TrailingBytes));
    }

    #[test]
    fn rejects_bad_checksum() {
        let mut buf = sample();
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        assert_eq!(decode(&buf), Err(EnvelopeError::BadChecksum));
    }

    #[test]
    fn decode_for_checks_the_key() {
        let buf = sample();
        assert!(decode_for(&buf, b"GET /items?q=1").is_ok());
        assert_eq!(
            decode_for(&buf, b"GET /items?q=2"),
            Err(EnvelopeError::KeyMismatch)
        );
        assert_eq!(decode_for(&buf, b""), Err(EnvelopeError::KeyMismatch));
        // Structural errors win over the key comparison.
        assert_eq!(decode_for(&buf[..20], b"x"), Err(EnvelopeError::TooShort));
    }

    #[test]
    fn intact_envelope_with_invalid_etag_is_refused() {
        let meta = EntryMeta {
            etag: "ab".to_owned(),
            ..sample_meta()
        };
        let mut buf = encode(b"", &meta, &[], b"", 0).unwrap();
        // Empty key: etag bytes start at 46.
        patch_and_reseal(&mut buf, 46, b"\xc3\x28");
        assert_eq!(decode(&buf), Err(EnvelopeError::InvalidUtf8));
    }

    #[test]
    fn intact_envelope_with_non_finite_time_is_refused() {
        // Empty key: the four times start at 12.
        for (offset, value) in [
            (12, f64::NAN),
            (20, f64::INFINITY),
            (28, f64::NEG_INFINITY),
            (36, f64::NAN),
        ] {
            let mut buf = encode(b"", &sample_meta(), &[], b"", 0).unwrap();
            patch_and_reseal(&mut buf, offset, &value.to_le_bytes());
            assert_eq!(
                decode(&buf),
                Err(EnvelopeError::NonFiniteTime),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn encode_refuses_non_finite_times() {
        let bad = [
            EntryMeta {
                stored_at: f64::NAN,
                ..sample_meta()
            },
            EntryMeta {
                ttl: f64::INFINITY,
                ..sample_meta()
            },
            EntryMeta {
                stale_while_revalidate: f64::NEG_INFINITY,
                ..sample_meta()
            },
            EntryMeta {
                stale_if_error: f64::NAN,
                ..sample_meta()
            },
        ];
        for meta in &bad {
            assert_eq!(
                encode(b"k", meta, &[], b"", 0),
                Err(EnvelopeError::NonFiniteTime)
            );
        }
    }

    #[test]
    fn encode_refuses_fields_longer_than_their_prefix() {
        let long = vec![b'a'; usize::from(u16::MAX) + 1];
        let meta = EntryMeta {
            etag: String::from_utf8(long.clone()).unwrap(),
            ..sample_meta()
        };
        assert_eq!(
            encode(b"k", &meta, &[], b"", 0),
            Err(EnvelopeError::LengthOverflow)
        );
        assert_eq!(
            encode(b"k", &sample_meta(), &[(&long, b"v")], b"", 0),
            Err(EnvelopeError::LengthOverflow)
        );
        let many: Vec<(&[u8], &[u8])> = vec![(b"", b""); usize::from(u16::MAX) + 1];
        assert_eq!(
            encode(b"k", &sample_meta(), &many, b"", 0),
            Err(EnvelopeError::LengthOverflow)
        );
        // Exactly at the limits is fine.
        let max_name = &long[..usize::from(u16::MAX)];
        let max_meta = EntryMeta {
            etag: String::from_utf8(max_name.to_vec()).unwrap(),
            ..sample_meta()
        };
        round_trip(b"k", &max_meta, &[(max_name, b"v")], b"", 0);
        round_trip(b"k", &sample_meta(), &many[1..], b"", 0);
        // Bodies, keys and values over u32::MAX would need 4 GiB to test; they go through the
        // same `len_u32` check as the header value below.
        assert_eq!(len_u32(&[]), Ok(0));
    }

    #[test]
    fn huge_claimed_lengths_do_not_allocate_or_panic() {
        let buf = sample();
        // key_len = u32::MAX.
        let mut b = buf.clone();
        b[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&b), Err(EnvelopeError::Truncated));
        // header_count = u16::MAX with too few bytes behind it.
        let meta = EntryMeta {
            etag: String::new(),
            ..sample_meta()
        };
        let mut b = encode(b"", &meta, &[], b"", 0).unwrap();
        b[46..48].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(decode(&b), Err(EnvelopeError::Truncated));
    }

    #[test]
    fn encoded_len_is_exact_with_repeated_slices() {
        let chunk = vec![0u8; 1 << 16];
        let headers: Vec<(&[u8], &[u8])> = vec![(&chunk[..100], &chunk); 4];
        let n = encoded_len(b"k", &sample_meta(), &headers, &chunk);
        assert_eq!(
            n,
            encode(b"k", &sample_meta(), &headers, &chunk, 0)
                .unwrap()
                .len()
        );
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            EnvelopeError::UnsupportedVersion(9).to_string(),
            format!("unsupported envelope version 9 (this build reads {VERSION})")
        );
        let e: Box<dyn std::error::Error> = Box::new(EnvelopeError::BadChecksum);
        assert_eq!(e.to_string(), "envelope checksum mismatch");
    }

    fn finite_f64() -> impl Strategy<Value = f64> {
        use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
    }

    fn arb_meta() -> impl Strategy<Value = EntryMeta> {
        (
            any::<u16>(),
            finite_f64(),
            finite_f64(),
            finite_f64(),
            finite_f64(),
            ".{0,40}",
        )
            .prop_map(|(status, stored_at, ttl, swr, sie, etag)| EntryMeta {
                status,
                stored_at,
                ttl,
                stale_while_revalidate: swr,
                stale_if_error: sie,
                etag,
            })
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn decode_never_panics_on_arbitrary_bytes(buf in bytes(256)) {
            let _ = decode(&buf);
        }

        /// Random bytes behind a valid preamble reach the field walk, which plain random input
        /// almost never does.
        #[test]
        fn decode_never_panics_behind_a_valid_preamble(flags: u8, tail in bytes(256)) {
            let mut buf = MAGIC.to_vec();
            buf.push(VERSION);
            buf.push(flags);
            buf.extend_from_slice(&tail);
            // Valid only if the tail happened to carry a matching checksum: odds of 2^-64.
            prop_assert!(decode(&buf).is_err());
        }

        #[test]
        fn decode_never_panics_on_mutated_envelopes(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut buf = sample();
            for (at, byte) in &edits {
                let i = at.index(buf.len());
                buf[i] = *byte;
            }
            let cut = cut.index(buf.len() + 1);
            let _ = decode(&buf[..cut]);
        }

        #[test]
        fn arbitrary_entries_round_trip(
            key in bytes(64),
            meta in arb_meta(),
            headers in proptest::collection::vec((bytes(24), bytes(48)), 0..8),
            body in bytes(512),
            flags: u8,
        ) {
            let headers: Vec<(&[u8], &[u8])> =
                headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
            let buf = encode(&key, &meta, &headers, &body, flags).unwrap();
            prop_assert_eq!(buf.len(), encoded_len(&key, &meta, &headers, &body));
            let env = decode_for(&buf, &key).unwrap();
            prop_assert_eq!(env.key, key.as_slice());
            prop_assert_eq!(&env.meta, &meta);
            prop_assert_eq!(env.headers, headers);
            prop_assert_eq!(env.body, body.as_slice());
            prop_assert_eq!(env.flags, flags);
        }
    }
}
