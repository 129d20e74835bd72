//! Replies of memcached's text protocol, as the Memcached backend's pipelined reads receive
//! them: retrieval replies (`VALUE <key> <flags> <bytes> [<cas unique>]` blocks ended by `END`),
//! storage replies (`STORED`, `EXISTS`, `NOT_FOUND`, `NOT_STORED`) and the error lines
//! (`ERROR`, `CLIENT_ERROR <message>`, `SERVER_ERROR <message>`), which answer the one command
//! they follow. Anything else is not memcached speaking, and the connection must be closed.
//!
//! Pure functions on bytes: the pipelined connection hands over what arrived, and gets back the
//! complete replies and how many bytes they took; the rest waits for more data.

/// One item of a retrieval reply, borrowed from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Item<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// The CAS unique (`gets`), None for `get`.
    pub cas: Option<u64>,
}

/// One complete reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `get`/`gets`: the items found, in the order sent.
    Items(Vec<Item<'a>>),
    /// A storage command's outcome (`STORED`, `EXISTS`, `NOT_FOUND`, `NOT_STORED`).
    Stored(&'a [u8]),
    /// The command was refused: the whole line (`SERVER_ERROR out of memory ...`).
    Refused(&'a [u8]),
}

/// Why a stream cannot be read as memcached replies.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum ProtocolError {
    MalformedValueLine,
    MissingTerminator,
    UnexpectedLine,
}

impl ProtocolError {
    pub fn message(self) -> &'static str {
        match self {
            ProtocolError::MalformedValueLine => "malformed VALUE line",
            ProtocolError::MissingTerminator => "data block without its terminator",
            ProtocolError::UnexpectedLine => "unexpected line",
        }
    }
}

const STORAGE_REPLIES: [&[u8]; 4] = [b"STORED", b"EXISTS", b"NOT_FOUND", b"NOT_STORED"];
const ERROR_PREFIXES: [&[u8]; 3] = [b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR"];

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?
        .windows(2)
        .position(|w| w == b"\r\n")
        .map(|i| from + i)
}

fn decimal(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in field {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// The complete replies at the start of `buf`, and how many bytes they took (a reply still
/// arriving is left for the next call, whole). An error means the stream is not memcached's.
pub fn parse(buf: &[u8]) -> Result<(Vec<Reply<'_>>, usize), ProtocolError> {
    let mut replies = Vec::new();
    let mut done = 0; // bytes taken by complete replies
    let mut pos = 0;
    let mut items: Vec<Item<'_>> = Vec::new();
    while let Some(eol) = line_end(buf, pos) {
        let line = &buf[pos..eol];
        if let Some(rest) = line.strip_prefix(b"VALUE ") {
            let fields: Vec<&[u8]> = rest.split(|&b| b == b' ').collect();
            if fields.len() != 3 && fields.len() != 4 {
                return Err(ProtocolError::MalformedValueLine);
            }
            let len = decimal(fields[2]).ok_or(ProtocolError::MalformedValueLine)?;
            let cas = match fields.get(3) {
                Some(field) => Some(decimal(field).ok_or(ProtocolError::MalformedValueLine)?),
                None => None,
            };
            let start = eol + 2;
            let end = usize::try_from(len)
                .ok()
                .and_then(|n| start.checked_add(n))
                .ok_or(ProtocolError::MalformedValueLine)?;
            if buf.len() < end.saturating_add(2) {
                break; // the data block is still coming
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(ProtocolError::MissingTerminator);
            }
            items.push(Item {
                key: fields[0],
                value: &buf[start..end],
                cas,
            });
            pos = end + 2;
            continue;
        }
        pos = eol + 2;
        if line == b"END" {
            replies.push(Reply::Items(std::mem::take(&mut items)));
        } else if STORAGE_REPLIES.contains(&line) {
            replies.push(Reply::Stored(line));
        } else if ERROR_PREFIXES.iter().any(|p| line.starts_with(p)) {
            items.clear();
            replies.push(Reply::Refused(line));
        } else {
            return Err(ProtocolError::UnexpectedLine);
        }
        done = pos;
    }
    Ok((replies, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"VALUE e:a 0 3 17\r\nabc\r\nVALUE x:p 0 2 9\r\n42\r\nEND\r\n\
        END\r\n\
        VALUE e:b 0 8 5\r\nEND\r\nEND\r\nEND\r\n\
        EXISTS\r\n\
        SERVER_ERROR out of memory storing object\r\n\
        VALUE e:c 0 0\r\n\r\nEND\r\n";

    fn expected() -> Vec<Reply<'static>> {
        vec![
            Reply::Items(vec![
                Item {
                    key: b"e:a",
                    value: b"abc",
                    cas: Some(17),
                },
                Item {
                    key: b"x:p",
                    value: b"42",
                    cas: Some(9),
                },
            ]),
            Reply::Items(vec![]),
            Reply::Items(vec![Item {
                key: b"e:b",
                value: b"END\r\nEND",
                cas: Some(5),
            }]),
            Reply::Stored(b"EXISTS"),
            Reply::Refused(b"SERVER_ERROR out of memory storing object"),
            Reply::Items(vec![Item {
                key: b"e:c",
                value: b"",
                cas: None,
            }]),
        ]
    }

    #[test]
    fn a_whole_stream_parses_in_order() {
        let (replies, used) = parse(STREAM).unwrap();
        assert_eq!(replies, expected());
        assert_eq!(used, STREAM.len());
    }

    #[test]
    fn a_stream_cut_anywhere_gives_the_same_replies() {
        // Fed as TCP may deliver it: whatever is complete is returned, the rest kept whole.
        for cut in 0..=STREAM.len() {
            let (first, used) = parse(&STREAM[..cut]).unwrap();
            let mut all: Vec<Reply<'_>> = first;
            let (second, used2) = parse(&STREAM[used..]).unwrap();
            assert_eq!(used + used2, STREAM.len(), "cut at {cut}");
            all.extend(second);
            assert_eq!(all, expected(), "cut at {cut}");
        }
    }

    #[test]
    fn what_is_not_memcached_is_an_error() {
        for (stream, err) in [
            (&b"+OK\r\n"[..], ProtocolError::UnexpectedLine),
            (b"VALUE e:a 0 zz 1\r\n", ProtocolError::MalformedValueLine),
            (
                b"VALUE e:a 0 3 1\r\nabcXY",
                ProtocolError::MissingTerminator,
            ),
            (b"VALUE e:a\r\n", ProtocolError::MalformedValueLine),
            (b"VALUE e:a 0 -1 1\r\n", ProtocolError::MalformedValueLine),
            (
                b"VALUE e:a 0 99999999999999999999999 1\r\n",
                ProtocolError::MalformedValueLine,
            ),
            (b"VALUE e:a 0 1 x\r\n", ProtocolError::MalformedValueLine),
        ] {
            assert_eq!(
                parse(stream),
                Err(err),
                "{:?}",
                String::from_utf8_lossy(stream)
            );
        }
    }

    #[test]
    fn an_incomplete_reply_takes_nothing() {
        assert_eq!(parse(b"VALUE e:a 0 3 1\r\nab").unwrap().1, 0);
        assert_eq!(parse(b"VALUE e:a 0 3 1\r\nabc\r\n").unwrap().1, 0); // no END yet
        assert_eq!(parse(b"STORED\r\nVALUE").unwrap().1, 8);
    }
}
