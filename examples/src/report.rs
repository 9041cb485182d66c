//! Stored usage summed per account, per record or per day, rendered as an
//! aligned table, JSON or CSV.
//!
//! The JSON and CSV forms are for scripts: JSON is one array of objects whose
//! keys come in the order of the CSV header's columns; byte counts are plain
//! integers in every format.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use time::Date;
use usage_model::UsageRecord;

use crate::error::CliError;
use crate::units::format_time;

/// What one report row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Grouping {
    /// One row per zone and account.
    Account,
    /// One row per stored record: zone, account, address and interval.
    Ip,
    /// One row per zone, account and UTC day of the record's start.
    Day,
}

/// How a report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people, with a TOTAL line.
    Table,
    /// One JSON array of objects, on one line.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

/// A cell of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cell {
    Text(String),
    Bytes(u64),
}

/// Rows with named columns, ready to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Report {
    columns: &'static [&'static str],
    rows: Vec<Vec<Cell>>,
}

impl Report {
    /// Sums `records` into rows of `grouping`, sorted by their text columns
    /// (addresses and times by value).
    ///
    /// With [`Grouping::Day`] a record counts on the UTC day of its start.
    ///
    /// # Errors
    ///
    /// [`CliError::TotalOverflow`] when a sum does not fit in `u64`.
    pub(crate) fn build(records: &[UsageRecord], grouping: Grouping) -> Result<Report, CliError> {
        match grouping {
            Grouping::Account => {
                let mut sums = BTreeMap::new();
                for r in records {
                    add(&mut sums, (r.zone.as_str(), r.account.as_str()), r)?;
                }
                let rows = sums
                    .into_iter()
                    .map(|((zone, account), (sent, received))| {
                        vec![
                            text(zone),
                            text(account),
                            Cell::Bytes(sent),
                            Cell::Bytes(received),
                        ]
                    })
                    .collect();
                Ok(Report {
                    columns: &["zone", "account", "bytes_sent", "bytes_received"],
                    rows,
                })
            }
            Grouping::Ip => {
                let mut sorted: Vec<&UsageRecord> = records.iter().collect();
                sorted.sort_by(|a, b| {
                    (&a.zone, &a.account, a.ip, a.start, a.end)
                        .cmp(&(&b.zone, &b.account, b.ip, b.start, b.end))
                });
                let rows = sorted
                    .into_iter()
                    .map(|r| {
                        vec![
                            text(r.zone.as_str()),
                            text(r.account.as_str()),
                            Cell::Text(r.ip.to_string()),
                            Cell::Text(format_time(r.start)),
                            Cell::Text(format_time(r.end)),
                            Cell::Bytes(r.bytes_sent),
                            Cell::Bytes(r.bytes_received),
                        ]
                    })
                    .collect();
                Ok(Report {
                    columns: &[
                        "zone",
                        "account",
                        "ip",
                        "start",
                        "end",
                        "bytes_sent",
                        "bytes_received",
                    ],
                    rows,
                })
            }
            Grouping::Day => {
                let mut sums: BTreeMap<(&str, &str, Date), (u64, u64)> = BTreeMap::new();
                for r in records {
                    let day = r.start.to_offset(time::UtcOffset::UTC).date();
                    add(&mut sums, (r.zone.as_str(), r.account.as_str(), day), r)?;
                }
                let rows = sums
                    .into_iter()
                    .map(|((zone, account, day), (sent, received))| {
                        vec![
                            text(zone),
                            text(account),
                            Cell::Text(format_day(day)),
                            Cell::Bytes(sent),
                            Cell::Bytes(received),
                        ]
                    })
                    .collect();
                Ok(Report {
                    columns: &["zone", "account", "day", "bytes_sent", "bytes_received"],
                    rows,
                })
            }
        }
    }

    /// The report in `format`, newline-terminated.
    ///
    /// # Errors
    ///
    /// [`CliError::TotalOverflow`] when the table's TOTAL does not fit in `u64`.
    pub(crate) fn render(&self, format: Format) -> Result<String, CliError> {
        match format {
            Format::Table => self.table(),
            Format::Json => Ok(self.json()),
            Format::Csv => Ok(self.csv()),
        }
    }

    /// Aligned columns separated by two spaces, numbers right-aligned, then a
    /// TOTAL line summing every byte column.
    fn table(&self) -> Result<String, CliError> {
        let mut total = Vec::with_capacity(self.columns.len());
        for (index, column) in self.columns.iter().enumerate() {
            let numeric = self.is_numeric(index);
            total.push(if index == 0 {
                text("TOTAL")
            } else if numeric {
                let mut sum: u64 = 0;
                for row in &self.rows {
                    if let Cell::Bytes(n) = row[index] {
                        sum = sum.checked_add(n).ok_or_else(|| CliError::TotalOverflow {
                            what: column,
                            key: "TOTAL".to_owned(),
                        })?;
                    }
                }
                Cell::Bytes(sum)
            } else {
                text("")
            });
        }
        let header: Vec<Cell> = self.columns.iter().map(|c| text(c)).collect();
        let lines: Vec<&Vec<Cell>> = std::iter::once(&header)
            .chain(&self.rows)
            .chain(std::iter::once(&total))
            .collect();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|index| {
                lines
                    .iter()
                    .map(|line| table_text(&line[index]).chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in lines {
            let mut text_line = String::new();
            for (index, cell) in line.iter().enumerate() {
                if index > 0 {
                    text_line.push_str("  ");
                }
                let value = table_text(cell);
                let pad = widths[index] - value.chars().count();
                if self.is_numeric(index) {
                    text_line.extend(std::iter::repeat_n(' ', pad));
                    text_line.push_str(&value);
                } else {
                    text_line.push_str(&value);
                    text_line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text_line.trim_end());
            out.push('\n');
        }
        Ok(out)
    }

    /// `[{"zone":…,"account":…,…},…]` on one line, keys in column order.
    fn json(&self) -> String {
        let mut out = String::from("[");
        for (n, row) in self.rows.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push('{');
            for (index, (column, cell)) in self.columns.iter().zip(row).enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(*column).to_string());
                out.push(':');
                match cell {
                    Cell::Text(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
                    Cell::Bytes(n) => {
                        let _ = write!(out, "{n}");
                    }
                }
            }
            out.push('}');
        }
        out.push_str("]\n");
        out
    }

    /// A header line, then one line per row; RFC 4180 quoting where needed.
    fn csv(&self) -> String {
        let mut out = String::new();
        let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
        out.push_str(&header.join(","));
        out.push('\n');
        for row in &self.rows {
            let fields: Vec<String> = row.iter().map(csv_cell).collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }

    fn is_numeric(&self, index: usize) -> bool {
        self.columns[index].starts_with("bytes_")
    }
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

/// A cell as the table shows it: text with its control, invisible and
/// non-ASCII space characters (and backslashes) escaped as `\u{…}` (`\\`),
/// so that two names that differ only by such characters never look alike.
fn table_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => escape_invisible(s),
        Cell::Bytes(n) => n.to_string(),
    }
}

/// `text` with every character that does not show, or shows as a plain
/// space, escaped; see [`table_text`].
pub(crate) fn escape_invisible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || is_invisible(c) || (c.is_whitespace() && c != ' ') {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// Unicode's default-ignorable code points: format characters (zero-width
/// spaces and joiners, direction marks and overrides, the byte order mark),
/// variation selectors, fillers and tags, which render as nothing.
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x034F
            | 0x061C
            | 0x115F..=0x1160
            | 0x17B4..=0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFA0
            | 0xFFF0..=0xFFF8
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF
    )
}

/// A CSV field: RFC 4180 quoting where needed; a text cell that begins
/// with `=`, `+`, `-` or `@` (which a spreadsheet would run as a formula)
/// is prefixed with `'`.
fn csv_cell(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) if s.starts_with(['=', '+', '-', '@']) => csv_field(&format!("'{s}")),
        Cell::Text(s) => csv_field(s),
        Cell::Bytes(n) => n.to_string(),
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn format_day(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// Adds a record's bytes to the sums of `key`.
fn add<K: Ord + std::fmt::Debug>(
    sums: &mut BTreeMap<K, (u64, u64)>,
    key: K,
    record: &UsageRecord,
) -> Result<(), CliError> {
    let overflow = |what, key: &K| CliError::TotalOverflow {
        what,
        key: format!("{key:?}"),
    };
    let (sent, received) = sums.get(&key).copied().unwrap_or((0, 0));
    let sent = sent
        .checked_add(record.bytes_sent)
        .ok_or_else(|| overflow("bytes_sent", &key))?;
    let received = received
        .checked_add(record.bytes_received)
        .ok_or_else(|| overflow("bytes_received", &key))?;
    sums.insert(key, (sent, received));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;
    use time::macros::datetime;
    use usage_model::{AccountId, ByteCounts, ZoneId};

    fn record(
        zone: &str,
        account: &str,
        ip: &str,
        start: OffsetDateTime,
        end: OffsetDateTime,
        sent: u64,
        received: u64,
    ) -> UsageRecord {
        UsageRecord::new(
            ZoneId::new(zone).unwrap(),
            AccountId::new(account).unwrap(),
            ip.parse().unwrap(),
            start,
            end,
            ByteCounts { sent, received },
        )
    }

    /// Out of order on purpose; addresses sort by value (10 after 9).
    fn records() -> Vec<UsageRecord> {
        vec![
            record(
                "zone-1",
                "acct-7",
                "2001:db8::7",
                datetime!(2026-11-02 00:00 UTC),
                datetime!(2026-11-02 06:00 UTC),
                300,
                0,
            ),
            record(
                "zone-1",
                "acct-42",
                "203.0.113.10",
                datetime!(2026-11-01 22:00 UTC),
                datetime!(2026-11-02 02:00 UTC),
                5,
                6,
            ),
            record(
                "zone-1",
                "acct-42",
                "203.0.113.9",
                datetime!(2026-11-01 10:00 UTC),
                datetime!(2026-11-01 11:00 UTC),
                1_000,
                250,
            ),
            record(
                "zone-1",
                "acct-7",
                "203.0.113.9",
                datetime!(2026-11-01 11:00 UTC),
                datetime!(2026-11-01 12:00 UTC),
                0,
                40,
            ),
            record(
                "zone-1",
                "acct-42",
                "203.0.113.9",
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-01 10:00 UTC),
                2_000_000,
                7,
            ),
            record(
                "edge, \"west\"",
                "acct-42",
                "198.51.100.1",
                datetime!(2026-11-01 00:00 UTC),
                datetime!(2026-11-01 01:00 UTC),
                1,
                2,
            ),
        ]
    }

    fn render(grouping: Grouping, format: Format) -> String {
        Report::build(&records(), grouping)
            .unwrap()
            .render(format)
            .unwrap()
    }

    #[test]
    fn by_account_table() {
        assert_eq!(
            render(Grouping::Account, Format::Table),
            "\
zone          account  bytes_sent  bytes_received
edge, \"west\"  acct-42           1               2
zone-1        acct-42     2001005             263
zone-1        acct-7          300              40
TOTAL                     2001306             305
"
        );
    }

    #[test]
    fn by_account_json_and_csv() {
        assert_eq!(
            render(Grouping::Account, Format::Json),
            concat!(
                r#"[{"zone":"edge, \"west\"","account":"acct-42","bytes_sent":1,"bytes_received":2},"#,
                r#"{"zone":"zone-1","account":"acct-42","bytes_sent":2001005,"bytes_received":263},"#,
                r#"{"zone":"zone-1","account":"acct-7","bytes_sent":300,"bytes_received":40}]"#,
                "\n"
            )
        );
        assert_eq!(
            render(Grouping::Account, Format::Csv),
            "\
zone,account,bytes_sent,bytes_received
\"edge, \"\"west\"\"\",acct-42,1,2
zone-1,acct-42,2001005,263
zone-1,acct-7,300,40
"
        );
    }

    #[test]
    fn by_ip_one_row_per_record() {
        assert_eq!(
            render(Grouping::Ip, Format::Csv),
            "\
zone,account,ip,start,end,bytes_sent,bytes_received
\"edge, \"\"west\"\"\",acct-42,198.51.100.1,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z,1,2
zone-1,acct-42,203.0.113.9,2026-11-01T00:00:00Z,2026-11-01T10:00:00Z,2000000,7
zone-1,acct-42,203.0.113.9,2026-11-01T10:00:00Z,2026-11-01T11:00:00Z,1000,250
zone-1,acct-42,203.0.113.10,2026-11-01T22:00:00Z,2026-11-02T02:00:00Z,5,6
zone-1,acct-7,203.0.113.9,2026-11-01T11:00:00Z,2026-11-01T12:00:00Z,0,40
zone-1,acct-7,2001:db8::7,2026-11-02T00:00:00Z,2026-11-02T06:00:00Z,300,0
"
        );
        let json = render(Grouping::Ip, Format::Json);
        assert!(json.starts_with(
            r#"[{"zone":"edge, \"west\"","account":"acct-42","ip":"198.51.100.1","start":"2026-11-01T00:00:00Z","end":"2026-11-01T01:00:00Z","bytes_sent":1,"bytes_received":2},"#
        ), "{json}");
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed.as_array().unwrap().len(), 6);
        assert_eq!(parsed[5]["ip"], "2001:db8::7");
        assert_eq!(parsed[1]["bytes_sent"], 2_000_000);
    }

    #[test]
    fn by_ip_table() {
        assert_eq!(
            render(Grouping::Ip, Format::Table),
            "\
zone          account  ip            start                 end                   bytes_sent  bytes_received
edge, \"west\"  acct-42  198.51.100.1  2026-11-01T00:00:00Z  2026-11-01T01:00:00Z           1               2
zone-1        acct-42  203.0.113.9   2026-11-01T00:00:00Z  2026-11-01T10:00:00Z     2000000               7
zone-1        acct-42  203.0.113.9   2026-11-01T10:00:00Z  2026-11-01T11:00:00Z        1000             250
zone-1        acct-42  203.0.113.10  2026-11-01T22:00:00Z  2026-11-02T02:00:00Z           5               6
zone-1        acct-7   203.0.113.9   2026-11-01T11:00:00Z  2026-11-01T12:00:00Z           0              40
zone-1        acct-7   2001:db8::7   2026-11-02T00:00:00Z  2026-11-02T06:00:00Z         300               0
TOTAL                                                                               2001306             305
"
        );
    }

    #[test]
    fn by_day_counts_a_record_on_the_day_it_starts() {
        assert_eq!(
            render(Grouping::Day, Format::Csv),
            "\
zone,account,day,bytes_sent,bytes_received
\"edge, \"\"west\"\"\",acct-42,2026-11-01,1,2
zone-1,acct-42,2026-11-01,2001005,263
zone-1,acct-7,2026-11-01,0,40
zone-1,acct-7,2026-11-02,300,0
"
        );
        assert_eq!(
            render(Grouping::Day, Format::Json),
            concat!(
                r#"[{"zone":"edge, \"west\"","account":"acct-42","day":"2026-11-01","bytes_sent":1,"bytes_received":2},"#,
                r#"{"zone":"zone-1","account":"acct-42","day":"2026-11-01","bytes_sent":2001005,"bytes_received":263},"#,
                r#"{"zone":"zone-1","account":"acct-7","day":"2026-11-01","bytes_sent":0,"bytes_received":40},"#,
                r#"{"zone":"zone-1","account":"acct-7","day":"2026-11-02","bytes_sent":300,"bytes_received":0}]"#,
                "\n"
            )
        );
        assert_eq!(
            render(Grouping::Day, Format::Table),
            "\
zone          account  day         bytes_sent  bytes_received
edge, \"west\"  acct-42  2026-11-01           1               2
zone-1        acct-42  2026-11-01     2001005             263
zone-1        acct-7   2026-11-01           0              40
zone-1        acct-7   2026-11-02         300               0
TOTAL                                 2001306             305
"
        );
    }

    #[test]
    fn empty_reports() {
        let empty = |grouping, format| {
            Report::build(&[], grouping)
                .unwrap()
                .render(format)
                .unwrap()
        };
        assert_eq!(
            empty(Grouping::Account, Format::Table),
            "zone   account  bytes_sent  bytes_received\nTOTAL                    0               0\n"
        );
        assert_eq!(empty(Grouping::Account, Format::Json), "[]\n");
        assert_eq!(empty(Grouping::Ip, Format::Json), "[]\n");
        assert_eq!(
            empty(Grouping::Account, Format::Csv),
            "zone,account,bytes_sent,bytes_received\n"
        );
        assert_eq!(
            empty(Grouping::Day, Format::Csv),
            "zone,account,day,bytes_sent,bytes_received\n"
        );
    }

    #[test]
    fn sums_that_overflow_are_errors() {
        let at = datetime!(2026-11-01 00:00 UTC);
        let big = [
            record(
                "z",
                "a",
                "192.0.2.1",
                at,
                datetime!(2026-11-01 01:00 UTC),
                u64::MAX,
                0,
            ),
            record(
                "z",
                "a",
                "192.0.2.2",
                at,
                datetime!(2026-11-01 01:00 UTC),
                1,
                0,
            ),
        ];
        let err = Report::build(&big, Grouping::Account)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bytes_sent") && err.contains("\"a\""), "{err}");
        // One row each, but the TOTAL line overflows.
        let report = Report::build(&big, Grouping::Ip).unwrap();
        assert!(report.render(Format::Csv).is_ok());
        let err = report.render(Format::Table).unwrap_err().to_string();
        assert!(err.contains("TOTAL"), "{err}");
        // JSON carries the full u64.
        assert!(
            report
                .render(Format::Json)
                .unwrap()
                .contains("18446744073709551615")
        );
    }

    #[test]
    fn csv_text_cells_never_start_a_formula() {
        for (text, written) in [
            ("=1+1", "'=1+1"),
            ("+49", "'+49"),
            ("-acct", "'-acct"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("=a,b", "\"'=a,b\""),
            ("plain", "plain"),
        ] {
            assert_eq!(csv_cell(&text_cell(text)), written, "{text}");
        }
        assert_eq!(csv_cell(&Cell::Bytes(7)), "7");
    }

    #[test]
    fn table_cells_show_invisible_characters() {
        for (text, shown) in [
            ("acct\u{200b}1", "acct\\u{200b}1"),
            ("acct\u{202e}1", "acct\\u{202e}1"),
            ("a\tb", "a\\u{0009}b"),
            ("a\u{a0}b", "a\\u{00a0}b"),
            ("a\\u{200b}", "a\\\\u{200b}"),
            ("é😀 ok", "é😀 ok"),
        ] {
            assert_eq!(escape_invisible(text), shown, "{text:?}");
        }
    }

    fn text_cell(s: &str) -> Cell {
        text(s)
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
