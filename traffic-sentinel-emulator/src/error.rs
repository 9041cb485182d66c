use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the flows CSV failed (I/O error or bytes that are not UTF-8).
    #[error("reading flows at line {line}: {source}")]
    ReadFlows {
        /// The 1-based line being read.
        line: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A line of the flows CSV is longer than
    /// [`MAX_FLOWS_LINE_BYTES`](crate::MAX_FLOWS_LINE_BYTES); reading stopped there.
    #[error("line {line}: longer than {limit} bytes")]
    FlowsLineTooLong {
        /// The 1-based line number.
        line: u64,
        /// The longest line accepted, in bytes.
        limit: usize,
    },

    /// Writing the flows CSV failed.
    #[error("writing flows: {0}")]
    WriteFlows(#[source] io::Error),

    /// The first line of the flows CSV is not the expected header.
    #[error("line 1: expected header \"{expected}\", found \"{found}\"")]
    FlowsHeader {
        /// The header the reader requires.
        expected: &'static str,
        /// The (shortened) first line.
        found: String,
    },

    /// A flows line has the wrong number of comma-separated fields.
    #[error("line {line}: expected 6 fields, found {count}")]
    FlowsFieldCount {
        /// The 1-based line number.
        line: u64,
        /// How many fields the line has.
        count: usize,
    },

    /// A field of a flows line is not valid.
    #[error("line {line}: field \"{field}\": {problem} \"{value}\"")]
    FlowsField {
        /// The 1-based line number.
        line: u64,
        /// The header name of the field.
        field: &'static str,
        /// What is wrong, e.g. `invalid byte count`.
        problem: &'static str,
        /// The (shortened) offending value.
        value: String,
    },

    /// A value of the shared vocabulary was refused (e.g. a grid of 0 seconds).
    #[error(transparent)]
    Model(#[from] usage_model::Error),

    /// The bytes of the flow history do not fit in a `u64`.
    #[error("byte total overflows u64 at flow {index} ({bytes} bytes)")]
    ByteOverflow {
        /// The 0-based position of the flow whose bytes overflowed the total.
        index: usize,
        /// The byte count of that flow.
        bytes: u64,
    },

    /// A script is not one of the two understood shapes, or its values are bad.
    #[error("script not understood at line {line}, column {column}: {message}")]
    Script {
        /// The 1-based line of the script where the problem is.
        line: usize,
        /// The 1-based column (in characters) where the problem is.
        column: usize,
        /// What was expected and what was found.
        message: String,
    },

    /// A fault was given an HTTP status outside `400..=599`.
    #[error("fault status must be in 400..=599, got {0}")]
    FaultStatus(u16),

    /// A fault was given while another of its slot is in force; faults of
    /// one slot do not combine (see [`FaultControl`](crate::FaultControl)).
    #[error(
        "fault {refused:?} refused: fault {active:?} is in force; replace it or clear it first"
    )]
    FaultConflict {
        /// The fault in force.
        active: crate::Fault,
        /// The fault refused.
        refused: crate::Fault,
    },

    /// The listening socket could not be set up.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The record file of sFlow ingest holds a bad line (or a bad header);
    /// nothing of it was loaded and it was left as it is.
    #[error("record file {path}: {source}")]
    RecordLine {
        /// The record file.
        path: PathBuf,
        /// The first bad line, by number and field.
        #[source]
        source: Box<Error>,
    },

    /// The record file of sFlow ingest could not be opened, read or repaired.
    #[error("record file {path}: {source}")]
    RecordFile {
        /// The record file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The UDP socket for sFlow datagrams could not be set up.
    #[error("cannot receive sflow on udp {addr}: {source}")]
    SflowListen {
        /// The address asked for.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The background runtime or its thread, or a thread of sFlow ingest,
    /// could not be started.
    #[error("cannot start the emulator runtime: {0}")]
    Runtime(#[source] io::Error),
}

/// Shortens a user-supplied value for an error message that quotes it:
/// at most 80 characters, then `…`; control characters, `"` and `\` are
/// escaped as Rust writes them (`\n`, `\"`), so the message stays one line
/// whatever the value holds.
pub(crate) fn shorten(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut chars = value.chars();
    let mut out = String::with_capacity(value.len().min(4 * MAX_CHARS));
    for c in chars.by_ref().take(MAX_CHARS) {
        if c.is_control() || c == '"' || c == '\\' {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::shorten;

    #[test]
    fn a_shortened_value_is_one_line_and_at_most_80_characters() {
        assert_eq!(shorten("\nxt"), "\\nxt");
        assert_eq!(shorten("a\"b\\c\td\r"), "a\\\"b\\\\c\\td\\r");
        assert_eq!(shorten("zone é"), "zone é");
        let long = "x".repeat(81);
        assert_eq!(shorten(&long), format!("{}…", "x".repeat(80)));
        assert_eq!(shorten(&"x".repeat(80)), "x".repeat(80));
    }
}
