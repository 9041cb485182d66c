//! The record file of live sFlow ingest: closed buckets appended in the
//! flows CSV format, loaded back at start (DESIGN §13).

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use time::format_description::well_known::Rfc3339;

use crate::error::Error;
use crate::flows::{FLOWS_HEADER, Flow, FlowReader};
use crate::history::FlowHistory;

/// An open record file, positioned at its end, holding the header and only
/// complete lines.
#[derive(Debug)]
pub(crate) struct FlowRecord {
    path: PathBuf,
    file: File,
}

impl FlowRecord {
    /// Opens `path` (created when missing), adds its rows to `history`, and
    /// readies it for appending: a new or empty file gets the header.
    ///
    /// Every line is written whole with its `\n`, so a last line without one
    /// was cut short by a crash while a bucket was appended; it is dropped
    /// from the file (with a warning) once the complete lines have been read
    /// as a flows CSV. Nothing is changed in a file that is not one.
    ///
    /// # Errors
    ///
    /// [`Error::RecordLine`] naming the file and the first bad line (nothing
    /// is loaded and the file is left as it is); [`Error::RecordFile`] for
    /// the I/O error that stopped opening, reading or repairing it.
    pub(crate) fn open(
        path: &Path,
        history: FlowHistory,
    ) -> Result<(FlowRecord, FlowHistory), Error> {
        let io_error = |source: io::Error| Error::RecordFile {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_error)?;
        let len = file.metadata().map_err(io_error)?.len();
        let complete = complete_length(&mut file, len).map_err(io_error)?;
        let record_error = |source: Error| Error::RecordLine {
            path: path.to_owned(),
            source: Box::new(source),
        };

        let loaded = if complete == 0 {
            // No complete line: a new file, or a header cut short.
            let mut torn = Vec::new();
            file.seek(SeekFrom::Start(0)).map_err(io_error)?;
            (&mut file)
                .take(len)
                .read_to_end(&mut torn)
                .map_err(io_error)?;
            if !FLOWS_HEADER.as_bytes().starts_with(&torn) {
                return Err(record_error(Error::FlowsHeader {
                    expected: FLOWS_HEADER,
                    found: crate::error::shorten(&String::from_utf8_lossy(&torn)),
                }));
            }
            history
        } else {
            file.seek(SeekFrom::Start(0)).map_err(io_error)?;
            let mut reader = FlowReader::new(BufReader::new((&mut file).take(complete)));
            let mut failure = None;
            let rows = std::iter::from_fn(|| match reader.next()? {
                Ok(flow) => Some(flow),
                Err(error) => {
                    failure = Some(error);
                    None
                }
            });
            let extended = history.extended(rows);
            if let Some(error) = failure {
                return Err(record_error(error));
            }
            extended.map_err(record_error)?
        };

        if complete < len {
            tracing::warn!(
                path = %path.display(),
                byte = complete,
                dropped = len - complete,
                "record file ends in an incomplete line (an append cut short); dropping it"
            );
            file.set_len(complete).map_err(io_error)?;
            file.sync_data().map_err(io_error)?;
        }
        let mut record = FlowRecord {
            path: path.to_owned(),
            file,
        };
        if complete == 0 {
            record
                .write_synced(format!("{FLOWS_HEADER}\n").as_bytes())
                .map_err(io_error)?;
        }
        Ok((record, loaded))
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `flows` as CSV lines in one write, then flushes and syncs the
    /// file's data to disk; the number of lines written.
    ///
    /// # Errors
    ///
    /// The I/O error of the write or the sync; a time that RFC 3339 cannot
    /// write (a year outside 0..=9999) as [`io::ErrorKind::InvalidData`],
    /// before anything is written.
    pub(crate) fn append(&mut self, flows: &[Flow]) -> io::Result<usize> {
        let mut text = String::with_capacity(flows.len() * 80);
        for flow in flows {
            let time = flow
                .time
                .format(&Rfc3339)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            // Writing to a String cannot fail.
            let _ = writeln!(
                text,
                "{time},{},{},{},{},{}",
                flow.ipsource,
                flow.ipdestination,
                flow.sourcezone,
                flow.destinationzone,
                flow.bytes
            );
        }
        self.write_synced(text.as_bytes())?;
        Ok(flows.len())
    }

    fn write_synced(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.flush()?;
        self.file.sync_data()
    }
}

/// The length of `file`'s complete lines: up to and including its last
/// `\n` (0 when it has none).
fn complete_length(file: &mut File, len: u64) -> io::Result<u64> {
    const CHUNK: u64 = 8192;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}
