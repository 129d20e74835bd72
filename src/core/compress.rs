//! The frame a remote backend stores around an encoded envelope: raw or zstd-compressed.
//!
//! Remote backends pay for every byte twice (network and memory) and have hard item limits
//! (Memcached 1 MB, DynamoDB 400 KB), while HTML and JSON bodies compress 4–10×. [`pack`] wraps
//! an encoded [`envelope`](super::envelope) in a two-byte frame and compresses it with zstd when
//! that is worth it; [`unpack`] undoes it under a caller-given size limit.
//!
//! # Layout
//!
//! | Offset | Size | Field   | Notes                                                          |
//! |--------|------|---------|----------------------------------------------------------------|
//! | 0      | 1    | magic   | [`FRAME_MAGIC`]                                                |
//! | 1      | 1    | codec   | [`CODEC_RAW`] or [`CODEC_ZSTD`]                                |
//! | 2      | …    | payload | raw: the envelope; zstd: exactly one standard zstd frame       |
//!
//! The zstd frame records its decompressed size (zstd's own frame header), so a reader can
//! refuse an oversized value before decoding it — but that header is only a claim. [`unpack`]
//! never allocates more than the caller's limit (plus one byte to notice an overflow), caps the
//! decoder's window at what the limit needs, and stops the moment the output passes the limit,
//! so a small hostile value cannot make it allocate or inflate without bound (a "zip bomb").
//!
//! Integrity is not the frame's job: the envelope inside carries an xxh3 checksum over every
//! byte, so the zstd content checksum is left off (4 bytes saved per entry). The envelope's own
//! reserved flags bit ("zstd body") is not used: compressing the whole envelope here also
//! shrinks large header sets, and keeps the envelope format independent of the codec.
//!
//! Nothing here panics on any input: every failure is a [`FrameError`], which the read path
//! treats as a miss.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use zstd::zstd_safe::zstd_sys::ZSTD_ErrorCode;
use zstd::zstd_safe::{self, CCtx, CParameter, DCtx, DParameter, InBuffer, OutBuffer};

/// First byte of every frame.
///
/// Like the envelope's `0x89`, it is not ASCII and, as a UTF-8 continuation byte, cannot start
/// valid UTF-8, so text or JSON another program left under the same key is never mistaken for
/// a frame. It also differs from the first byte of a bare envelope (`0x89`), a Python pickle
/// (`0x80`), a zstd frame (`0x28`), gzip (`0x1F`) and zlib (`0x78`), so an unframed value of
/// any of those kinds is reported as [`FrameError::BadMagic`] rather than misread. A future
/// frame format takes a new magic byte.
pub const FRAME_MAGIC: u8 = 0x9E;

/// Codec byte: the payload is the envelope, stored as is.
pub const CODEC_RAW: u8 = 0;

/// Codec byte: the payload is one zstd frame holding the envelope.
pub const CODEC_ZSTD: u8 = 1;

/// Magic and codec bytes.
pub const HEADER_LEN: usize = 2;

/// The compression threshold the Python layer uses by default, in bytes: below it the zstd
/// frame overhead (about a dozen bytes) and the per-call cost outweigh any saving.
pub const DEFAULT_THRESHOLD: usize = 1024;

/// zstd level: 3 is zstd's default, ~300 MB/s per core on text with ratios close to level 9.
pub const LEVEL: i32 = 3;

/// A standard zstd frame starts with these bytes (little-endian 0xFD2FB528). Anything else —
/// notably a skippable frame, or a legacy format — is refused.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// Smallest and largest decoder window (log2 bytes) [`unpack`] will accept: zstd's absolute
/// minimum, and zstd's own default maximum (128 MiB).
const WINDOW_LOG_MIN: u32 = 10;
const WINDOW_LOG_MAX: u32 = 27;

/// Output buffer growth when the frame does not declare its size.
const MIN_GROWTH: usize = 16 * 1024;

/// Why a stored value could not be unpacked.
///
/// The read path treats every variant as a miss; they exist so logs can tell a truncating
/// backend from a foreign writer or an oversized value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Shorter than the two header bytes.
    TooShort,
    /// The first byte is not [`FRAME_MAGIC`]: not written by this frame format.
    BadMagic,
    /// The codec byte names no codec this build knows, carried here.
    UnknownCodec(u8),
    /// The decoded value would be longer than the caller's limit, carried here: either the
    /// zstd header declares so, or decoding went past it.
    TooLarge {
        /// The limit the caller gave.
        limit: usize,
    },
    /// The zstd payload ends before its frame does.
    Truncated,
    /// Bytes follow the zstd frame.
    TrailingBytes,
    /// The zstd payload is not a valid zstd frame (zstd's error name, or ours).
    Corrupt(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => f.write_str("frame too short"),
            Self::BadMagic => f.write_str("not an oxicache frame (bad magic)"),
            Self::UnknownCodec(c) => write!(f, "unknown frame codec {c}"),
            Self::TooLarge { limit } => {
                write!(f, "frame decodes to more than the limit of {limit} bytes")
            }
            Self::Truncated => f.write_str("compressed frame truncated"),
            Self::TrailingBytes => f.write_str("bytes after the compressed frame"),
            Self::Corrupt(why) => write!(f, "compressed frame corrupt: {why}"),
        }
    }
}

impl std::error::Error for FrameError {}

thread_local! {
    // One context per thread, created on first use: a level-3 context is a few hundred KiB of
    // tables, too costly to build per entry. Workers release the GIL around large inputs, so
    // several threads may compress at once, each with its own context.
    static CCTX: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
    static DCTX: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's context of type `T` (created by `create`), or with a fresh one
/// if the thread-local is unavailable (during thread teardown) or, impossibly, already borrowed.
/// `None` only if zstd cannot allocate a context.
fn with_context<T, R>(
    key: &'static std::thread::LocalKey<RefCell<Option<T>>>,
    create: fn() -> Option<T>,
    f: impl FnOnce(&mut T) -> R,
) -> Option<R> {
    let mut f = Some(f);
    let shared = key
        .try_with(|cell| {
            let mut slot = cell.try_borrow_mut().ok()?;
            if slot.is_none() {
                *slot = create();
            }
            let ctx = slot.as_mut()?;
            f.take().map(|f| f(ctx))
        })
        .ok()
        .flatten();
    match (shared, f) {
        (Some(r), _) => Some(r),
        (None, Some(f)) => create().map(|mut ctx| f(&mut ctx)),
        (None, None) => None,
    }
}

fn new_cctx() -> Option<CCtx<'static>> {
    let mut cctx = CCtx::try_create()?;
    cctx.set_parameter(CParameter::CompressionLevel(LEVEL))
        .ok()?;
    cctx.set_parameter(CParameter::ContentSizeFlag(true)).ok()?;
    cctx.set_parameter(CParameter::ChecksumFlag(false)).ok()?;
    Some(cctx)
}

fn new_dctx() -> Option<DCtx<'static>> {
    DCtx::try_create()
}

/// Wraps an encoded envelope in a frame, zstd-compressed when `envelope` is longer than
/// `threshold` bytes and compression makes the frame strictly smaller; raw otherwise.
///
/// Never fails: if zstd cannot compress (it cannot allocate, or the result would not be
/// smaller), the frame is raw. The result is at most `envelope.len() + 2` bytes.
pub fn pack(envelope: &[u8], threshold: usize) -> Vec<u8> {
    if envelope.len() > threshold {
        if let Some(frame) = compressed(envelope) {
            return frame;
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN + envelope.len());
    out.push(FRAME_MAGIC);
    out.push(CODEC_RAW);
    out.extend_from_slice(envelope);
    out
}

/// The zstd frame of `data`, only if its payload is strictly shorter than `data`.
fn compressed(data: &[u8]) -> Option<Vec<u8>> {
    // The destination holds at most `data.len() - 1` payload bytes: zstd stops with
    // "destination too small" as soon as compressing would not save space, so an
    // incompressible body costs one pass and no oversized buffer.
    let room = data.len().checked_sub(1)?;
    let mut out = vec![0u8; HEADER_LEN + room];
    let written = with_context(&CCTX, new_cctx, |cctx| {
        cctx.compress2(out.get_mut(HEADER_LEN..)?, data).ok()
    })
    .flatten()?;
    out.truncate(HEADER_LEN.checked_add(written)?);
    *out.get_mut(0)? = FRAME_MAGIC;
    *out.get_mut(1)? = CODEC_ZSTD;
    Some(out)
}

/// The envelope inside `frame`, refusing anything that would decode to more than
/// `max_decoded_len` bytes.
///
/// A raw frame is returned borrowed; a zstd frame is decoded into a buffer that never grows
/// past `max_decoded_len + 1` bytes, whatever the frame claims.
///
/// # Errors
///
/// [`FrameError::TooShort`], [`BadMagic`](FrameError::BadMagic) and
/// [`UnknownCodec`](FrameError::UnknownCodec) for values that are not frames;
/// [`TooLarge`](FrameError::TooLarge) when the declared or actual decoded size exceeds
/// `max_decoded_len`; [`Truncated`](FrameError::Truncated),
/// [`TrailingBytes`](FrameError::TrailingBytes) and [`Corrupt`](FrameError::Corrupt) for zstd
/// payloads that are cut short, followed by bytes, or invalid.
pub fn unpack(frame: &[u8], max_decoded_len: usize) -> Result<Cow<'_, [u8]>, FrameError> {
    let (&magic, rest) = frame.split_first().ok_or(FrameError::TooShort)?;
    if magic != FRAME_MAGIC {
        return Err(FrameError::BadMagic);
    }
    let (&codec, payload) = rest.split_first().ok_or(FrameError::TooShort)?;
    match codec {
        CODEC_RAW if payload.len() > max_decoded_len => Err(FrameError::TooLarge {
            limit: max_decoded_len,
        }),
        CODEC_RAW => Ok(Cow::Borrowed(payload)),
        CODEC_ZSTD => decompress(payload, max_decoded_len).map(Cow::Owned),
        other => Err(FrameError::UnknownCodec(other)),
    }
}

/// Whether a zstd result code is this error (zstd returns errors as `-code` in a `size_t`).
fn is_error(code: usize, error: ZSTD_ErrorCode) -> bool {
    code == (error as usize).wrapping_neg()
}

/// `ceil(log2(n))`, 0 for `n <= 1`.
fn ceil_log2(n: usize) -> u32 {
    match n.checked_sub(1) {
        None | Some(0) => 0,
        Some(m) => usize::BITS - m.leading_zeros(),
    }
}

fn decompress(payload: &[u8], limit: usize) -> Result<Vec<u8>, FrameError> {
    let too_large = FrameError::TooLarge { limit };
    if payload.len() < ZSTD_MAGIC.len() {
        return Err(FrameError::Truncated);
    }
    if !payload.starts_with(&ZSTD_MAGIC) {
        return Err(FrameError::Corrupt("not a standard zstd frame"));
    }
    // The declared size, when present, refuses a bomb before any work; it is still only a
    // claim, checked against the actual output below.
    let declared = match zstd_safe::get_frame_content_size(payload) {
        Ok(declared) => declared,
        Err(_) => return Err(FrameError::Truncated),
    };
    let declared = match declared {
        Some(n) => Some(usize::try_from(n).map_err(|_| too_large.clone())?),
        None => None,
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large);
    }
    // Walks the block headers (no decoding): finds a cut-short payload and trailing bytes.
    match zstd_safe::find_frame_compressed_size(payload) {
        Ok(n) if n == payload.len() => {}
        Ok(n) if n < payload.len() => return Err(FrameError::TrailingBytes),
        Ok(_) => return Err(FrameError::Truncated),
        Err(code) if is_error(code, ZSTD_ErrorCode::ZSTD_error_srcSize_wrong) => {
            return Err(FrameError::Truncated)
        }
        Err(code) => return Err(FrameError::Corrupt(zstd_safe::get_error_name(code))),
    }
    if let Some(n) = declared {
        // The size is declared and within the limit: one call decodes straight into a buffer
        // of exactly that size, which zstd cannot write past (a lying frame is an error, not
        // an overflow), several times faster than streaming for the small entries of a hit.
        let mut out = Vec::new();
        out.try_reserve_exact(n).map_err(|_| too_large.clone())?;
        let done = with_context(&DCTX, new_dctx, |dctx| {
            dctx.reset(zstd_safe::ResetDirective::SessionOnly).ok()?;
            dctx.decompress(&mut out, payload).ok()
        })
        .flatten();
        return match done {
            Some(written) if written == n && out.len() == n => Ok(out),
            Some(_) => Err(FrameError::Corrupt(
                "decoded size differs from the declared size",
            )),
            None => Err(FrameError::Corrupt("zstd could not decode the frame")),
        };
    }
    // One more byte than allowed is how an overflow is noticed.
    let cap = limit.saturating_add(1);
    let first = declared.map_or_else(
        || payload.len().saturating_mul(4).max(MIN_GROWTH),
        |n| n.saturating_add(1),
    );
    let mut out = Vec::new();
    out.try_reserve_exact(first.min(cap))
        .map_err(|_| too_large.clone())?;
    // No window larger than the limit needs: a frame of at most `limit` bytes written with a
    // known size never has one (zstd shrinks the window to the content).
    let window_log = ceil_log2(limit).clamp(WINDOW_LOG_MIN, WINDOW_LOG_MAX);

    let result = with_context(&DCTX, new_dctx, |dctx| -> Result<(), FrameError> {
        // A previous call may have stopped mid-frame; parameters are set afresh each time.
        dctx.reset(zstd_safe::ResetDirective::SessionOnly)
            .map_err(|c| FrameError::Corrupt(zstd_safe::get_error_name(c)))?;
        dctx.set_parameter(DParameter::WindowLogMax(window_log))
            .map_err(|c| FrameError::Corrupt(zstd_safe::get_error_name(c)))?;
        let mut input = InBuffer::around(payload);
        loop {
            if out.len() == out.capacity() {
                if out.len() >= cap {
                    return Err(too_large.clone());
                }
                let grow = out.len().max(MIN_GROWTH).min(cap - out.len());
                out.try_reserve_exact(grow).map_err(|_| too_large.clone())?;
            }
            let (in_before, out_before) = (input.pos(), out.len());
            let hint = {
                let at = out.len();
                let mut output = OutBuffer::around_pos(&mut out, at);
                dctx.decompress_stream(&mut output, &mut input)
            };
            let hint = hint.map_err(|c| {
                if is_error(c, ZSTD_ErrorCode::ZSTD_error_frameParameter_windowTooLarge) {
                    // The window the frame asks for is over what the limit allows.
                    too_large.clone()
                } else {
                    FrameError::Corrupt(zstd_safe::get_error_name(c))
                }
            })?;
            if out.len() > limit {
                return Err(too_large.clone());
            }
            if hint == 0 {
                return Ok(());
            }
            let stalled = input.pos() == in_before && out.len() == out_before;
            if input.pos() == payload.len() && out.len() < out.capacity() {
                // zstd wants more input, and there is none.
                return Err(FrameError::Truncated);
            }
            if stalled {
                return Err(FrameError::Corrupt("decoder made no progress"));
            }
        }
    });
    match result {
        None => return Err(FrameError::Corrupt("cannot allocate a zstd context")),
        Some(r) => r?,
    }
    if declared.is_some_and(|n| n != out.len()) {
        return Err(FrameError::Corrupt(
            "decoded size differs from the declared size",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::core::entry::EntryMeta;
    use crate::core::envelope;

    /// Compressible, envelope-like input of `n` bytes.
    fn text(n: usize) -> Vec<u8> {
        b"<li class=\"item\">oxicache caches responses</li>\n"
            .iter()
            .copied()
            .cycle()
            .take(n)
            .collect()
    }

    /// Incompressible bytes (xorshift).
    fn noise(n: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect()
    }

    /// A zstd frame of `data` as another writer might produce it.
    fn zstd_frame(data: &[u8]) -> Vec<u8> {
        let mut out = vec![FRAME_MAGIC, CODEC_ZSTD];
        out.extend_from_slice(&zstd::bulk::compress(data, LEVEL).unwrap());
        out
    }

    #[test]
    fn small_values_stay_raw() {
        let data = text(DEFAULT_THRESHOLD);
        let frame = pack(&data, DEFAULT_THRESHOLD);
        assert_eq!(&frame[..2], &[FRAME_MAGIC, CODEC_RAW]);
        assert_eq!(&frame[2..], data.as_slice());
        let out = unpack(&frame, data.len()).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(out.as_ref(), data.as_slice());
    }

    #[test]
    fn values_over_the_threshold_are_compressed() {
        let data = text(DEFAULT_THRESHOLD + 1);
        let frame = pack(&data, DEFAULT_THRESHOLD);
        assert_eq!(&frame[..2], &[FRAME_MAGIC, CODEC_ZSTD]);
        assert!(frame.len() < data.len() / 4, "{} bytes", frame.len());
        assert_eq!(
            unpack(&frame, data.len()).unwrap().as_ref(),
            data.as_slice()
        );
        // Threshold 0: anything compressible is compressed.
        let frame = pack(&text(200), 0);
        assert_eq!(frame[1], CODEC_ZSTD);
        // The empty value cannot shrink.
        assert_eq!(pack(b"", 0), vec![FRAME_MAGIC, CODEC_RAW]);
    }

    #[test]
    fn incompressible_values_stay_raw() {
        let data = noise(64 * 1024);
        let frame = pack(&data, 0);
        assert_eq!(frame[1], CODEC_RAW);
        assert_eq!(frame.len(), data.len() + HEADER_LEN);
        assert_eq!(
            unpack(&frame, data.len()).unwrap().as_ref(),
            data.as_slice()
        );
    }

    #[test]
    fn a_real_envelope_round_trips() {
        let meta = EntryMeta {
            status: 200,
            stored_at: 1_700_000_000.5,
            ttl: 60.0,
            stale_while_revalidate: 0.0,
            stale_if_error: 0.0,
            etag: "W/\"abc\"".to_owned(),
        };
        let body = text(50_000);
        let headers: Vec<(&[u8], &[u8])> = vec![(b"content-type", b"text/html")];
        let env = envelope::encode(b"GET /", &meta, &headers, &body, 0).unwrap();
        let frame = pack(&env, DEFAULT_THRESHOLD);
        assert_eq!(frame[1], CODEC_ZSTD);
        let back = unpack(&frame, 1 << 20).unwrap();
        let decoded = envelope::decode_for(&back, b"GET /").unwrap();
        assert_eq!(decoded.body, body.as_slice());
        assert_eq!(decoded.meta, meta);
    }

    #[test]
    fn large_values_round_trip_across_buffer_growth() {
        // Over the 2 MiB level-3 window, and a frame without a declared size (streaming
        // writer), which makes the decoder grow its buffer from a guess.
        let data = text(5 << 20);
        let frame = pack(&data, DEFAULT_THRESHOLD);
        assert_eq!(
            unpack(&frame, data.len()).unwrap().as_ref(),
            data.as_slice()
        );
        let mut streamed = vec![FRAME_MAGIC, CODEC_ZSTD];
        let mut enc = zstd::stream::write::Encoder::new(&mut streamed, LEVEL).unwrap();
        std::io::Write::write_all(&mut enc, &data).unwrap();
        enc.finish().unwrap();
        assert_eq!(
            zstd_safe::get_frame_content_size(&streamed[2..]).ok(),
            Some(None),
            "the streamed frame must not declare its size"
        );
        assert_eq!(
            unpack(&streamed, data.len()).unwrap().as_ref(),
            data.as_slice()
        );
        assert_eq!(
            unpack(&streamed, data.len() - 1),
            Err(FrameError::TooLarge {
                limit: data.len() - 1
            })
        );
    }

    #[test]
    fn the_limit_is_inclusive() {
        for data in [text(4096), noise(100)] {
            let frame = pack(&data, 0);
            assert!(unpack(&frame, data.len()).is_ok());
            assert_eq!(
                unpack(&frame, data.len() - 1),
                Err(FrameError::TooLarge {
                    limit: data.len() - 1
                })
            );
        }
    }

    #[test]
    fn a_bomb_is_refused_by_its_declared_size() {
        // 64 MiB of zeros compress to a few KiB.
        let bomb = zstd_frame(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 8 * 1024, "{} bytes", bomb.len());
        assert_eq!(
            unpack(&bomb, 1 << 20),
            Err(FrameError::TooLarge { limit: 1 << 20 })
        );
    }

    #[test]
    fn a_bomb_that_hides_its_size_is_stopped_at_the_limit() {
        // A streamed frame declares no size: the decoder itself must stop at the limit. The
        // window is set small so the limit, not the window check, is what refuses it.
        let mut bomb = vec![FRAME_MAGIC, CODEC_ZSTD];
        let mut enc = zstd::stream::write::Encoder::new(&mut bomb, LEVEL).unwrap();
        enc.set_parameter(CParameter::WindowLog(17)).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            std::io::Write::write_all(&mut enc, &zeros).unwrap();
        }
        enc.finish().unwrap();
        assert_eq!(
            zstd_safe::get_frame_content_size(&bomb[2..]).ok(),
            Some(None)
        );
        let limit = 1 << 20;
        assert_eq!(unpack(&bomb, limit), Err(FrameError::TooLarge { limit }));
        // And the same frame decodes when the caller allows its size.
        assert_eq!(unpack(&bomb, 64 << 20).unwrap().len(), 64 << 20);
    }

    #[test]
    fn a_window_over_the_limit_is_refused() {
        // 300 KiB declared in a frame with an 8 MiB window and no size, under a 256 KiB
        // limit: zstd refuses the window before allocating it.
        let mut frame = vec![FRAME_MAGIC, CODEC_ZSTD];
        let mut enc = zstd::stream::write::Encoder::new(&mut frame, LEVEL).unwrap();
        enc.set_parameter(CParameter::WindowLog(23)).unwrap();
        std::io::Write::write_all(&mut enc, &noise(300 * 1024)).unwrap();
        enc.finish().unwrap();
        let limit = 256 * 1024;
        assert_eq!(unpack(&frame, limit), Err(FrameError::TooLarge { limit }));
    }

    #[test]
    fn foreign_and_malformed_frames_are_refused() {
        assert_eq!(unpack(b"", 10), Err(FrameError::TooShort));
        assert_eq!(unpack(&[FRAME_MAGIC], 10), Err(FrameError::TooShort));
        assert_eq!(unpack(b"{\"a\": 1}", 10), Err(FrameError::BadMagic));
        // A bare envelope, a bare zstd frame, a pickle.
        assert_eq!(unpack(&envelope::MAGIC, 10), Err(FrameError::BadMagic));
        assert_eq!(unpack(&ZSTD_MAGIC, 10), Err(FrameError::BadMagic));
        assert_eq!(unpack(b"\x80\x04", 10), Err(FrameError::BadMagic));
        assert_eq!(
            unpack(&[FRAME_MAGIC, 7, 1, 2], 10),
            Err(FrameError::UnknownCodec(7))
        );
        assert_eq!(
            unpack(&[FRAME_MAGIC, CODEC_ZSTD, 0x28], 10),
            Err(FrameError::Truncated)
        );
        // A skippable frame is a valid zstd frame but carries no content: refused.
        let skippable = [FRAME_MAGIC, CODEC_ZSTD, 0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0];
        assert!(matches!(
            unpack(&skippable, 10),
            Err(FrameError::Corrupt(_))
        ));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut frame = pack(&text(4096), 0);
        frame.push(0);
        assert_eq!(unpack(&frame, 1 << 20), Err(FrameError::TrailingBytes));
        // Two frames back to back.
        let mut twice = pack(&text(4096), 0);
        twice.extend_from_slice(&pack(&text(4096), 0)[2..]);
        assert_eq!(unpack(&twice, 1 << 20), Err(FrameError::TrailingBytes));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for data in [text(3000), text(300_000)] {
            let frame = pack(&data, 0);
            assert_eq!(frame[1], CODEC_ZSTD);
            for cut in 0..frame.len() {
                let expected = if cut < HEADER_LEN {
                    FrameError::TooShort
                } else {
                    FrameError::Truncated
                };
                assert_eq!(
                    unpack(&frame[..cut], 1 << 20),
                    Err(expected),
                    "cut at {cut}"
                );
            }
            assert!(unpack(&frame, 1 << 20).is_ok());
        }
    }

    #[test]
    fn a_context_left_mid_frame_is_reset() {
        // A truncated frame leaves the thread's decoder mid-frame; the next call must not
        // continue from it.
        let frame = pack(&text(100_000), 0);
        assert!(unpack(&frame[..frame.len() / 2], 1 << 20).is_err());
        assert_eq!(unpack(&frame, 1 << 20).unwrap().len(), 100_000);
    }

    #[test]
    fn contexts_work_from_several_threads() {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let data = text(10_000 + i);
                    for _ in 0..20 {
                        let frame = pack(&data, 0);
                        assert_eq!(unpack(&frame, data.len()).unwrap().as_ref(), &data[..]);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn ceil_log2_values() {
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 1024, 1025].map(ceil_log2),
            [0, 0, 1, 2, 2, 3, 10, 11]
        );
        assert_eq!(ceil_log2(usize::MAX), usize::BITS);
    }

    #[test]
    fn errors_display() {
        assert_eq!(
            FrameError::TooLarge { limit: 5 }.to_string(),
            "frame decodes to more than the limit of 5 bytes"
        );
        let e: Box<dyn std::error::Error> = Box::new(FrameError::UnknownCodec(9));
        assert_eq!(e.to_string(), "unknown frame codec 9");
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    /// Compressible bytes: runs of a few symbols.
    fn compressible(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec((0u8..4, 1usize..64), 0..max / 16).prop_map(|runs| {
            runs.into_iter()
                .flat_map(|(b, n)| std::iter::repeat_n(b, n))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn round_trip(data in prop_oneof![bytes(4096), compressible(16384)], threshold in 0usize..2048) {
            let frame = pack(&data, threshold);
            prop_assert!(frame.len() <= data.len() + HEADER_LEN);
            if frame[1] == CODEC_ZSTD {
                prop_assert!(data.len() > threshold);
                prop_assert!(frame.len() < data.len() + HEADER_LEN);
            }
            let out = unpack(&frame, data.len()).unwrap();
            prop_assert_eq!(out.as_ref(), data.as_slice());
        }

        #[test]
        fn random_bytes_never_panic(buf in bytes(512), limit in 0usize..100_000) {
            let _ = unpack(&buf, limit);
        }

        /// Random bytes behind a zstd frame header reach the decoder itself.
        #[test]
        fn random_zstd_payloads_never_panic(tail in bytes(512), limit in 0usize..100_000) {
            let mut buf = vec![FRAME_MAGIC, CODEC_ZSTD];
            buf.extend_from_slice(&ZSTD_MAGIC);
            buf.extend_from_slice(&tail);
            if let Ok(out) = unpack(&buf, limit) {
                prop_assert!(out.len() <= limit);
            }
        }

        #[test]
        fn mutated_and_cut_frames_never_panic(
            data in compressible(8192),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            limit in 0usize..20_000,
        ) {
            let mut frame = pack(&data, 0);
            for (at, byte) in &edits {
                let i = at.index(frame.len());
                frame[i] = *byte;
            }
            let cut = cut.index(frame.len() + 1);
            if let Ok(out) = unpack(&frame[..cut], limit) {
                prop_assert!(out.len() <= limit);
            }
            // A strict prefix of a compressed frame is never accepted.
            if edits.is_empty() && frame[1] == CODEC_ZSTD && cut < frame.len() {
                prop_assert!(unpack(&frame[..cut], usize::MAX).is_err());
            }
        }
    }
}
