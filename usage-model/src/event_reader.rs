//! Reading the events file: JSON Lines, one [`IpEvent`] per line (DESIGN §9).
//!
//! ```text
//! {"id":17,"type":"NET.IPASSIGN","at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
//! ```
//!
//! This file splits the input into lines (bounded in length, with the byte
//! order mark, blank lines and UTF-8 handled here); each line is read as an
//! event by [`event_line`](crate::event_line).

use std::io::{BufRead, Read as _};
use std::iter::FusedIterator;

use crate::event_line::parse_event;
use crate::{Error, IpEvent};

/// The UTF-8 byte order mark, accepted at the start of line 1 only.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Streams [`IpEvent`]s from the JSON Lines events format, one line at a time.
///
/// # Format
///
/// Each line holds one JSON object (RFC 8259), for example
///
/// ```text
/// {"id":17,"type":"NET.IPASSIGN","at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
/// ```
///
/// - `id`: an unsigned integer up to `u64::MAX`, written as a plain JSON
///   integer (no sign, fraction, exponent or leading zero);
/// - `type`: `"NET.IPASSIGN"` or `"NET.IPRELEASE"`;
/// - `at`: an RFC 3339 timestamp (`T` between date and time) with `Z` or any
///   `±HH:MM` offset, converted to UTC; its UTC year must lie in 0000–9999;
/// - `zone`, `account`: non-empty strings without control characters
///   ([`ZoneId`](crate::ZoneId), [`AccountId`](crate::AccountId));
/// - `ip`: an IPv4 or IPv6 address; an IPv4-mapped IPv6 address
///   (`::ffff:192.0.2.1`) is read as the IPv4 address.
///
/// Keys may come in any order, with JSON whitespace around every token; each
/// key may appear once. Strings take every JSON escape, including `\uXXXX`
/// surrogate pairs. Other keys are allowed and ignored, provided their values
/// are valid JSON. Lines that are empty or hold only whitespace are skipped;
/// lines may end in `\n` or `\r\n`. A UTF-8 byte order mark is accepted at
/// the start of line 1 only.
///
/// # Errors
///
/// Each item is an event or an error naming the 1-based line number:
/// [`Error::EventLine`] for a line that is not a valid event (with the field
/// when one field is at fault, and the offending value quoted) — reading then
/// goes on with the next line; [`Error::Io`] when reading fails, or
/// [`Error::EventLine`] for a line longer than
/// [`max_line_length`](EventReader::max_line_length) — after which the
/// iterator ends.
///
/// # Example
///
/// ```
/// use usage_model::{EventReader, IpEventKind};
///
/// let input = br#"{"id":1,"type":"NET.IPASSIGN","at":"2026-11-01T12:00:00+02:00","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
///
/// {"id":2,"type":"NET.IPSWAP","at":"2026-11-01T11:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}
/// "#;
/// let mut events = EventReader::new(&input[..]);
/// let first = events.next().unwrap()?;
/// assert_eq!(first.kind, IpEventKind::Assign);
/// assert_eq!(first.at, time::macros::datetime!(2026-11-01 10:00 UTC));
///
/// let err = events.next().unwrap().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"line 3: field "type": unknown event type "NET.IPSWAP" (expected "NET.IPASSIGN" or "NET.IPRELEASE")"#
/// );
/// assert!(events.next().is_none());
/// # Ok::<(), usage_model::Error>(())
/// ```
#[derive(Debug)]
pub struct EventReader<R> {
    reader: R,
    buf: Vec<u8>,
    line: usize,
    max_line_length: usize,
    finished: bool,
}

/// The longest line an [`EventReader`] accepts by default: 1 MiB.
const DEFAULT_MAX_LINE_LENGTH: usize = 1 << 20;

impl<R: BufRead> EventReader<R> {
    /// Reads events from `reader`, line by line, reusing one line buffer.
    pub fn new(reader: R) -> EventReader<R> {
        EventReader {
            reader,
            buf: Vec::new(),
            line: 0,
            max_line_length: DEFAULT_MAX_LINE_LENGTH,
            finished: false,
        }
    }

    /// Refuses lines longer than `bytes` (not counting the final `\n`), so
    /// that one endless line cannot exhaust memory.
    ///
    /// By default, 1 MiB (1,048,576 bytes).
    pub fn max_line_length(mut self, bytes: usize) -> EventReader<R> {
        self.max_line_length = bytes;
        self
    }

    /// How many lines have been read so far (blank lines included).
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// The underlying reader, positioned after the last line read.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Reads the next line into `self.buf`, without its `\n`.
    /// `Ok(false)` at the end of the input.
    fn read_line(&mut self) -> Result<bool, Error> {
        self.buf.clear();
        let number = self.line + 1;
        let limit = u64::try_from(self.max_line_length)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let read = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| Error::Io {
                line: number,
                source,
            })?;
        if read == 0 {
            return Ok(false);
        }
        self.line = number;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() > self.max_line_length {
            return Err(Error::EventLine {
                line: number,
                field: None,
                reason: format!("line is longer than {} bytes", self.max_line_length),
            });
        }
        Ok(true)
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<IpEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            match self.read_line() {
                Ok(true) => {}
                Ok(false) => {
                    self.finished = true;
                    break;
                }
                Err(err) => {
                    self.finished = true;
                    return Some(Err(err));
                }
            }
            let line = self.line;
            let mut bytes = &self.buf[..];
            if line == 1 {
                bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
            }
            let text = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(err) => {
                    return Some(Err(Error::EventLine {
                        line,
                        field: None,
                        reason: format!("invalid UTF-8 at byte {}", err.valid_up_to() + 1),
                    }));
                }
            };
            if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
                continue;
            }
            return Some(parse_event(text).map_err(|err| Error::EventLine {
                line,
                field: err.field,
                reason: err.reason,
            }));
        }
        None
    }
}

impl<R: BufRead> FusedIterator for EventReader<R> {}

/// Reads every event of an events file, in file order.
///
/// The format is described on [`EventReader`]. Nothing partial is returned:
/// either every line is a valid event (or blank), or the result is the first
/// error.
///
/// # Errors
///
/// Returns the first [`Error::EventLine`] (a line that is not a valid event,
/// naming its number, the field and the offending value) or [`Error::Io`]
/// (reading failed).
///
/// # Example
///
/// ```
/// use usage_model::{read_events, IpEventKind};
///
/// let input = "\
/// {\"id\":1,\"type\":\"NET.IPASSIGN\",\"at\":\"2026-11-01T10:00:00Z\",\"zone\":\"zone-1\",\"account\":\"acct-42\",\"ip\":\"2001:db8::7\"}
/// {\"id\":2,\"type\":\"NET.IPRELEASE\",\"at\":\"2026-11-01T12:30:00+01:00\",\"zone\":\"zone-1\",\"account\":\"acct-42\",\"ip\":\"2001:db8::7\"}
/// ";
/// let events = read_events(input.as_bytes())?;
/// assert_eq!(events.len(), 2);
/// assert_eq!(events[1].kind, IpEventKind::Release);
/// assert_eq!(events[1].at, time::macros::datetime!(2026-11-01 11:30 UTC));
///
/// let bad = input.replace("2026-11-01T10:00:00Z", "2026-13-01T00:00:00Z");
/// let err = read_events(bad.as_bytes()).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"line 1: field "at": invalid RFC 3339 timestamp "2026-13-01T00:00:00Z""#
/// );
/// # Ok::<(), usage_model::Error>(())
/// ```
pub fn read_events<R: BufRead>(reader: R) -> Result<Vec<IpEvent>, Error> {
    EventReader::new(reader).collect()
}
