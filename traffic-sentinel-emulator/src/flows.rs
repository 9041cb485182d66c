//! Flow records and the flows CSV format (DESIGN §9).

use std::io::{BufRead, Read as _, Write};
use std::net::IpAddr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{Error, shorten};

/// The longest line the flows reader accepts, in bytes (its line ending
/// included): far more than any flow takes (two addresses of at most 45
/// characters, an RFC 3339 time, two zone names, a count), so a file that
/// is not a flows CSV, or has no line breaks, is refused at the first long
/// line instead of being read into memory whole.
pub const MAX_FLOWS_LINE_BYTES: usize = 16 * 1024;

/// The header line of the flows CSV.
pub const FLOWS_HEADER: &str = "time,ipsource,ipdestination,sourcezone,destinationzone,bytes";

/// One observed flow: `bytes` moved from `ipsource` to `ipdestination` at `time`.
///
/// For billing, a flow counts as *sent* by `ipsource` towards `destinationzone`
/// and as *received* by `ipdestination` from `sourcezone`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// When the flow was seen; it falls into the bucket containing this instant.
    pub time: OffsetDateTime,
    /// The sending address.
    pub ipsource: IpAddr,
    /// The receiving address.
    pub ipdestination: IpAddr,
    /// The zone of the sender (may be empty).
    pub sourcezone: String,
    /// The zone of the receiver (may be empty).
    pub destinationzone: String,
    /// The number of bytes moved.
    pub bytes: u64,
}

/// Returns whether `zone` is a valid non-empty zone name: `[A-Za-z0-9_.-]+`
/// ([`usage_model::is_ts_zone_name`]).
pub fn is_valid_zone_name(zone: &str) -> bool {
    usage_model::is_ts_zone_name(zone)
}

/// Reads flows in the CSV format of DESIGN §9, line by line.
///
/// The first line must be exactly [`FLOWS_HEADER`] (surrounding whitespace
/// ignored). Each further non-blank line holds six comma-separated fields:
/// `time` (RFC 3339, any offset), `ipsource`, `ipdestination` (IPv4 or IPv6),
/// `sourcezone`, `destinationzone` (empty, or `[A-Za-z0-9_.-]+`) and `bytes`
/// (a non-negative decimal integer). Whitespace around fields is ignored.
/// Addresses are canonical: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`)
/// is read as its IPv4 address (DESIGN §4).
///
/// # Errors
///
/// On the first bad line, an error naming the line number, the field and the
/// offending value (e.g. `line 7: field "bytes": invalid byte count "-5"`);
/// nothing is returned in that case. I/O errors, bytes that are not UTF-8
/// and lines longer than [`MAX_FLOWS_LINE_BYTES`] are reported with their
/// line number too.
///
/// # Example
///
/// ```
/// let csv = "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n\
///            2026-11-01T10:00:30Z,203.0.113.7,198.51.100.1,,EXTERNAL,1500\n";
/// let flows = traffic_sentinel_emulator::read_flows(csv.as_bytes()).unwrap();
/// assert_eq!(flows[0].bytes, 1500);
/// assert_eq!(flows[0].sourcezone, "");
/// ```
pub fn read_flows<R: BufRead>(reader: R) -> Result<Vec<Flow>, Error> {
    FlowReader::new(reader).collect()
}

/// Reads flows in the CSV format of [`read_flows`] one line at a time,
/// holding only the current line: the way to feed a large file straight into
/// [`FlowHistory::new`](crate::FlowHistory::new) without a `Vec` of flows.
///
/// It yields each flow in file order; the first error (a bad header, line or
/// read) is yielded once and ends the iteration.
///
/// # Example
///
/// ```
/// use traffic_sentinel_emulator::FlowReader;
///
/// let csv = "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n\
///            2026-11-01T10:00:30Z,203.0.113.7,198.51.100.1,,EXTERNAL,1500\n\
///            2026-11-01T10:01:30Z,203.0.113.7,198.51.100.1,,EXTERNAL,-5\n";
/// let mut flows = FlowReader::new(csv.as_bytes());
/// assert_eq!(flows.next().unwrap().unwrap().bytes, 1500);
/// let error = flows.next().unwrap().unwrap_err();
/// assert!(error.to_string().starts_with("line 3: field \"bytes\""));
/// assert!(flows.next().is_none());
/// ```
#[derive(Debug)]
pub struct FlowReader<R> {
    reader: R,
    buf: Vec<u8>,
    line_no: u64,
    seen_header: bool,
    done: bool,
}

impl<R: BufRead> FlowReader<R> {
    /// A reader of the flows CSV held by `reader`.
    pub fn new(reader: R) -> FlowReader<R> {
        FlowReader {
            reader,
            buf: Vec::new(),
            line_no: 0,
            seen_header: false,
            done: false,
        }
    }

    /// The number of the last line read (1-based; 0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line_no
    }

    /// The next flow, `Ok(None)` at the end of the input.
    fn next_flow(&mut self) -> Result<Option<Flow>, Error> {
        loop {
            self.buf.clear();
            self.line_no += 1;
            let line_no = self.line_no;
            // At most one byte past the limit is read, whatever the input.
            let read = (&mut self.reader)
                .take(MAX_FLOWS_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| Error::ReadFlows {
                    line: line_no,
                    source,
                })?;
            if self.buf.len() > MAX_FLOWS_LINE_BYTES {
                return Err(Error::FlowsLineTooLong {
                    line: line_no,
                    limit: MAX_FLOWS_LINE_BYTES,
                });
            }
            if read == 0 {
                if !self.seen_header {
                    return Err(Error::FlowsHeader {
                        expected: FLOWS_HEADER,
                        found: String::new(),
                    });
                }
                return Ok(None);
            }
            let text = std::str::from_utf8(&self.buf).map_err(|e| Error::ReadFlows {
                line: line_no,
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            let text = if line_no == 1 {
                text.strip_prefix('\u{feff}').unwrap_or(text)
            } else {
                text
            };
            let line = text.trim();
            if !self.seen_header {
                if line != FLOWS_HEADER {
                    return Err(Error::FlowsHeader {
                        expected: FLOWS_HEADER,
                        found: shorten(line),
                    });
                }
                self.seen_header = true;
                continue;
            }
            if line.is_empty() {
                continue;
            }
            return parse_flow_line(line, line_no).map(Some);
        }
    }
}

impl<R: BufRead> Iterator for FlowReader<R> {
    type Item = Result<Flow, Error>;

    fn next(&mut self) -> Option<Result<Flow, Error>> {
        if self.done {
            return None;
        }
        match self.next_flow() {
            Ok(Some(flow)) => Some(Ok(flow)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}

fn parse_flow_line(line: &str, line_no: u64) -> Result<Flow, Error> {
    let mut fields = [""; 6];
    let mut count = 0;
    for field in line.split(',') {
        if count < fields.len() {
            fields[count] = field.trim();
        }
        count += 1;
    }
    if count != fields.len() {
        return Err(Error::FlowsFieldCount {
            line: line_no,
            count,
        });
    }
    let bad = |field: &'static str, problem: &'static str, value: &str| Error::FlowsField {
        line: line_no,
        field,
        problem,
        value: shorten(value),
    };
    let [
        time,
        ipsource,
        ipdestination,
        sourcezone,
        destinationzone,
        bytes,
    ] = fields;
    let time = OffsetDateTime::parse(time, &Rfc3339)
        .map_err(|_| bad("time", "invalid RFC 3339 time", time))?;
    let ipsource = ipsource
        .parse::<IpAddr>()
        .map_err(|_| bad("ipsource", "invalid ip address", ipsource))?
        .to_canonical();
    let ipdestination = ipdestination
        .parse::<IpAddr>()
        .map_err(|_| bad("ipdestination", "invalid ip address", ipdestination))?
        .to_canonical();
    if !sourcezone.is_empty() && !is_valid_zone_name(sourcezone) {
        return Err(bad("sourcezone", "invalid zone name", sourcezone));
    }
    if !destinationzone.is_empty() && !is_valid_zone_name(destinationzone) {
        return Err(bad("destinationzone", "invalid zone name", destinationzone));
    }
    // `u64::from_str` accepts a leading `+`; a byte count is plain digits.
    if bytes.is_empty() || !bytes.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("bytes", "invalid byte count", bytes));
    }
    let bytes: u64 = bytes
        .parse()
        .map_err(|_| bad("bytes", "invalid byte count", bytes))?;
    Ok(Flow {
        time,
        ipsource,
        ipdestination,
        sourcezone: sourcezone.to_owned(),
        destinationzone: destinationzone.to_owned(),
        bytes,
    })
}

/// Writes flows in the CSV format that [`read_flows`] reads, header first.
///
/// Times are written in RFC 3339 with their own offset.
///
/// # Errors
///
/// [`Error::WriteFlows`] when writing fails, or when a time cannot be
/// formatted as RFC 3339 (years outside 0..=9999), or a zone name is neither
/// empty nor `[A-Za-z0-9_.-]+` (it could not be read back).
pub fn write_flows<'a, W: Write>(
    mut writer: W,
    flows: impl IntoIterator<Item = &'a Flow>,
) -> Result<(), Error> {
    let invalid =
        |msg: String| Error::WriteFlows(std::io::Error::new(std::io::ErrorKind::InvalidInput, msg));
    writeln!(writer, "{FLOWS_HEADER}").map_err(Error::WriteFlows)?;
    for flow in flows {
        let time = flow
            .time
            .format(&Rfc3339)
            .map_err(|e| invalid(format!("time {}: {e}", flow.time)))?;
        for zone in [&flow.sourcezone, &flow.destinationzone] {
            if !zone.is_empty() && !is_valid_zone_name(zone) {
                return Err(invalid(format!("invalid zone name \"{}\"", shorten(zone))));
            }
        }
        writeln!(
            writer,
            "{time},{},{},{},{},{}",
            flow.ipsource, flow.ipdestination, flow.sourcezone, flow.destinationzone, flow.bytes
        )
        .map_err(Error::WriteFlows)?;
    }
    writer.flush().map_err(Error::WriteFlows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn read(s: &str) -> Result<Vec<Flow>, Error> {
        read_flows(s.as_bytes())
    }

    #[test]
    fn an_endless_line_is_refused_naming_it_without_reading_it_whole() {
        // One line of a gigabyte that is never held: the reader stops one
        // byte past the limit.
        let header = format!("{FLOWS_HEADER}\n");
        let endless = std::io::Read::chain(
            header.as_bytes(),
            std::io::Read::take(std::io::repeat(b'9'), 1 << 30),
        );
        let mut reader = FlowReader::new(std::io::BufReader::new(endless));
        match reader.next() {
            Some(Err(Error::FlowsLineTooLong { line, limit })) => {
                assert_eq!((line, limit), (2, MAX_FLOWS_LINE_BYTES));
            }
            other => panic!("expected a line too long, got {other:?}"),
        }
        assert!(reader.next().is_none());
        let err = read(&format!("{header}{}\n", "x".repeat(MAX_FLOWS_LINE_BYTES))).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("line 2: longer than {MAX_FLOWS_LINE_BYTES} bytes")
        );
        // A line of exactly the limit, its newline included, is read.
        let padded = format!(
            "2026-11-01T10:00:30Z,203.0.113.7,198.51.100.1,,EXTERNAL,{:0>width$}\n",
            1,
            width = MAX_FLOWS_LINE_BYTES - 57
        );
        assert_eq!(padded.len(), MAX_FLOWS_LINE_BYTES);
        assert_eq!(read(&format!("{header}{padded}")).unwrap()[0].bytes, 1);
    }

    #[test]
    fn ipv4_mapped_addresses_are_read_as_ipv4() {
        let flows = read(&format!(
            "{FLOWS_HEADER}\n2026-11-01T10:00:30Z,::ffff:203.0.113.7,::ffff:c633:6401,,EXTERNAL,1\n"
        ))
        .unwrap();
        assert_eq!(flows[0].ipsource, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(
            flows[0].ipdestination,
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn reads_valid_flows_with_blank_lines_offsets_and_ipv6() {
        let flows = read(
            "  time,ipsource,ipdestination,sourcezone,destinationzone,bytes  \r\n\
             \n\
             2026-11-01T10:00:30Z,203.0.113.7,198.51.100.1,INTERNAL,EXTERNAL,1500\r\n\
             \n\
             2026-11-01T15:30:00+05:30, 2001:db8::1 ,2001:db8::2,,,0\n",
        )
        .unwrap();
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[0].time, datetime!(2026-11-01 10:00:30 UTC));
        assert_eq!(flows[0].destinationzone, "EXTERNAL");
        assert_eq!(flows[1].time, datetime!(2026-11-01 10:00:00 UTC));
        assert_eq!(flows[1].ipsource, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(flows[1].sourcezone, "");
        assert_eq!(flows[1].bytes, 0);
    }

    #[test]
    fn header_must_be_exact() {
        let err = read("time,ipsource,ipdestination,sourcezone,destinationzone\n").unwrap_err();
        assert!(
            err.to_string().starts_with("line 1: expected header"),
            "{err}"
        );
        assert!(matches!(read(""), Err(Error::FlowsHeader { .. })));
    }

    #[test]
    fn errors_name_line_field_and_value() {
        let head = format!("{FLOWS_HEADER}\n");
        let ok = "2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,A,B,1\n";
        let cases = [
            (
                "2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,A,B,-5",
                "line 7: field \"bytes\": invalid byte count \"-5\"",
            ),
            (
                "2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,A,B,+5",
                "line 7: field \"bytes\": invalid byte count \"+5\"",
            ),
            (
                "2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,A,B,18446744073709551616",
                "line 7: field \"bytes\": invalid byte count \"18446744073709551616\"",
            ),
            (
                "2026-11-01 10:00:00,10.0.0.1,10.0.0.2,A,B,5",
                "line 7: field \"time\": invalid RFC 3339 time \"2026-11-01 10:00:00\"",
            ),
            (
                "2026-11-01T10:00:00Z,10.0.0.256,10.0.0.2,A,B,5",
                "line 7: field \"ipsource\": invalid ip address \"10.0.0.256\"",
            ),
            (
                "2026-11-01T10:00:00Z,10.0.0.1,host,A,B,5",
                "line 7: field \"ipdestination\": invalid ip address \"host\"",
            ),
            (
                "2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,a\"b,B,5",
                "line 7: field \"sourcezone\": invalid zone name \"a\\\"b\"",
            ),
            (
                "2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,A,x y,5",
                "line 7: field \"destinationzone\": invalid zone name \"x y\"",
            ),
            (
                "2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,A,B",
                "line 7: expected 6 fields, found 5",
            ),
            (
                "2026-11-01T10:00:00Z,10.0.0.1,10.0.0.2,A,B,5,",
                "line 7: expected 6 fields, found 7",
            ),
        ];
        for (bad, want) in cases {
            // Lines 2..=6: four valid lines and a blank one.
            let input = format!("{head}{ok}{ok}\n{ok}{ok}{bad}\n{ok}");
            let err = read(&input).unwrap_err();
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn non_utf8_is_reported_with_its_line() {
        let mut input = format!("{FLOWS_HEADER}\n").into_bytes();
        input.extend_from_slice(b"\xff\xfe\n");
        let err = read_flows(&input[..]).unwrap_err();
        assert!(matches!(err, Error::ReadFlows { line: 2, .. }), "{err}");
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let long = "x".repeat(1000);
        let input = format!("{FLOWS_HEADER}\n2026-11-01T10:00:00Z,{long},10.0.0.2,A,B,5\n");
        let msg = read(&input).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.ends_with("…\""), "{msg}");
    }

    #[test]
    fn write_then_read_round_trips() {
        let flows = vec![
            Flow {
                time: datetime!(2026-11-01 10:00:30.5 +05:30),
                ipsource: "2001:db8::1".parse().unwrap(),
                ipdestination: "203.0.113.9".parse().unwrap(),
                sourcezone: String::new(),
                destinationzone: "EXT-1.a_b".into(),
                bytes: u64::MAX,
            },
            Flow {
                time: datetime!(1969-12-31 23:59:59 UTC),
                ipsource: "10.0.0.1".parse().unwrap(),
                ipdestination: "10.0.0.2".parse().unwrap(),
                sourcezone: "A".into(),
                destinationzone: "B".into(),
                bytes: 0,
            },
        ];
        let mut out = Vec::new();
        write_flows(&mut out, &flows).unwrap();
        assert_eq!(read_flows(&out[..]).unwrap(), flows);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const VALID: &str = "time,ipsource,ipdestination,sourcezone,destinationzone,bytes\n\
            2026-11-01T10:00:30Z,203.0.113.7,198.51.100.1,INTERNAL,EXTERNAL,1500\n\
            2026-11-01T10:01:00+05:30,2001:db8::1,203.0.113.7,,PEERING,42\n";

        fn check(input: &[u8]) -> Result<(), TestCaseError> {
            match read_flows(input) {
                Ok(flows) => prop_assert!(flows.len() <= input.split(|&b| b == b'\n').count()),
                Err(e) => {
                    let msg = e.to_string();
                    prop_assert!(
                        msg.starts_with("line ") || msg.starts_with("reading flows at line "),
                        "{}",
                        msg
                    );
                    prop_assert!(!msg.contains('\n'));
                }
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            #[test]
            fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
                check(&bytes)?;
            }

            #[test]
            fn mutated_valid_csv_never_panics(
                edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..4),
            ) {
                let mut input = VALID.as_bytes().to_vec();
                for (index, byte, insert) in edits {
                    let at = index.index(input.len());
                    if insert { input.insert(at, byte) } else { input[at] = byte }
                }
                check(&input)?;
            }

            #[test]
            fn written_flows_read_back(
                rows in proptest::collection::vec((any::<u32>(), any::<[u8; 4]>(), any::<[u16; 8]>(), "[A-Za-z0-9_.-]{0,8}", any::<u64>()), 0..20),
            ) {
                let flows: Vec<Flow> = rows
                    .into_iter()
                    .map(|(secs, v4, v6, zone, bytes)| Flow {
                        time: OffsetDateTime::from_unix_timestamp(i64::from(secs)).unwrap(),
                        ipsource: IpAddr::from(v4),
                        ipdestination: IpAddr::from(v6),
                        sourcezone: zone.clone(),
                        destinationzone: zone,
                        bytes,
                    })
                    .collect();
                let mut out = Vec::new();
                write_flows(&mut out, &flows).unwrap();
                prop_assert_eq!(read_flows(&out[..]).unwrap(), flows);
            }
        }
    }

    #[test]
    fn write_refuses_a_zone_it_could_not_read_back() {
        let flow = Flow {
            time: datetime!(2026-11-01 10:00 UTC),
            ipsource: "10.0.0.1".parse().unwrap(),
            ipdestination: "10.0.0.2".parse().unwrap(),
            sourcezone: "a,b".into(),
            destinationzone: String::new(),
            bytes: 1,
        };
        assert!(matches!(
            write_flows(Vec::new(), [&flow]),
            Err(Error::WriteFlows(_))
        ));
    }
}
