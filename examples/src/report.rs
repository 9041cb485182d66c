//! `report` and `status`: stored usage, anomalies, adjustments and zone
//! status read from the store and rendered as an aligned table, JSON or CSV
//! (DESIGN §9).
//!
//! Rows stream from the store (aggregated in SQL) straight to standard
//! output, so memory does not grow with the number of records; a table,
//! whose columns are aligned, reads the rows twice: once for the widths and
//! the TOTAL line, once to print.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::ops::ControlFlow;

use usage_store::{ReportFilter, Store, StoreError, ZoneStatus};

use crate::error::CliError;
use crate::units::format_time;

/// What one report row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Grouping {
    /// One row per zone and account.
    Account,
    /// One row per stored record: zone, account, address and interval.
    Ip,
    /// One row per zone, account and UTC day.
    Day,
    /// One row per stored anomaly, with its window.
    Anomaly,
    /// One row per adjustment a restatement stored.
    Adjustment,
}

impl Grouping {
    fn columns(self) -> &'static [&'static str] {
        match self {
            Grouping::Account => &["zone", "account", "bytes_sent", "bytes_received"],
            Grouping::Ip => &[
                "zone",
                "account",
                "ip",
                "start",
                "end",
                "bytes_sent",
                "bytes_received",
            ],
            Grouping::Day => &["zone", "account", "day", "bytes_sent", "bytes_received"],
            Grouping::Anomaly => &[
                "zone",
                "window_start",
                "window_end",
                "kind",
                "event_id",
                "detail",
            ],
            Grouping::Adjustment => &[
                "zone",
                "account",
                "window_start",
                "window_end",
                "bytes_sent_delta",
                "bytes_received_delta",
                "restated_at",
            ],
        }
    }
}

/// How a report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people, with a TOTAL line under byte columns.
    Table,
    /// One JSON array of objects, on one line.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

/// A cell of a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    /// Text: names, addresses, times, kinds.
    Text(String),
    /// A count or byte number.
    Number(u64),
    /// A signed difference (adjustments).
    Signed(i128),
}

impl Cell {
    fn is_numeric(&self) -> bool {
        !matches!(self, Cell::Text(_))
    }

    fn value(&self) -> i128 {
        match self {
            Cell::Text(_) => 0,
            Cell::Number(n) => i128::from(*n),
            Cell::Signed(n) => *n,
        }
    }
}

/// Streams the rows of `by` under `filter` from `store` to `out` in
/// `format`.
///
/// # Errors
///
/// Store errors (a sum past 64 bits names its zone and account);
/// [`CliError::TotalOverflow`] when the table's TOTAL line would pass 64
/// bits; [`CliError::Stdout`].
pub(crate) async fn print_report(
    store: &Store,
    filter: &ReportFilter,
    by: Grouping,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let columns = by.columns();
    match format {
        Format::Table => {
            let mut widths = Widths::new(columns);
            for_each_row(store, filter, by, &mut |row| widths.add(&row)).await?;
            let mut table = Table::new(columns, widths, out);
            table.check_total()?;
            table.header()?;
            write_rows(store, filter, by, |row| table.row(row)).await?;
            table.total()
        }
        Format::Json | Format::Csv => {
            // Sums per account or day may pass 64 bits (an error naming the
            // zone and account): found before anything is written, so the
            // output is whole or absent. Other rows hold stored values.
            if matches!(by, Grouping::Account | Grouping::Day) {
                for_each_row(store, filter, by, &mut |_| ControlFlow::Continue(())).await?;
            }
            let mut writer = Stream::new(columns, format, out);
            writer.start()?;
            write_rows(store, filter, by, |row| writer.row(row)).await?;
            writer.finish()
        }
    }
}

/// Writes every row of `by` with `write`, stopping at its first error.
async fn write_rows(
    store: &Store,
    filter: &ReportFilter,
    by: Grouping,
    mut write: impl FnMut(&[Cell]) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut result = Ok(());
    for_each_row(store, filter, by, &mut |row| match write(&row) {
        Ok(()) => ControlFlow::Continue(()),
        Err(error) => {
            result = Err(error);
            ControlFlow::Break(())
        }
    })
    .await?;
    result
}

/// Calls `each` with the cells of every row of `by`.
async fn for_each_row(
    store: &Store,
    filter: &ReportFilter,
    by: Grouping,
    each: &mut dyn FnMut(Vec<Cell>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let text = |s: &str| Cell::Text(s.to_owned());
    match by {
        Grouping::Account => {
            store
                .report_by_account(filter, |r| {
                    each(vec![
                        text(r.zone.as_str()),
                        text(r.account.as_str()),
                        Cell::Number(r.bytes_sent),
                        Cell::Number(r.bytes_received),
                    ])
                })
                .await
        }
        Grouping::Ip => {
            store
                .report_by_ip(filter, |r| {
                    each(vec![
                        text(r.zone.as_str()),
                        text(r.account.as_str()),
                        Cell::Text(r.ip.to_string()),
                        Cell::Text(format_time(r.start)),
                        Cell::Text(format_time(r.end)),
                        Cell::Number(r.bytes_sent),
                        Cell::Number(r.bytes_received),
                    ])
                })
                .await
        }
        Grouping::Day => {
            store
                .report_by_day(filter, |r| {
                    each(vec![
                        text(r.zone.as_str()),
                        text(r.account.as_str()),
                        Cell::Text(format_day(r.day)),
                        Cell::Number(r.bytes_sent),
                        Cell::Number(r.bytes_received),
                    ])
                })
                .await
        }
        Grouping::Anomaly => {
            store
                .report_anomalies(filter, |r| {
                    each(vec![
                        text(r.zone.as_str()),
                        Cell::Text(format_time(r.window.start())),
                        Cell::Text(format_time(r.window.end())),
                        Cell::Text(r.kind),
                        Cell::Number(r.event_id),
                        Cell::Text(r.detail),
                    ])
                })
                .await
        }
        Grouping::Adjustment => {
            store
                .report_adjustments(filter, |r| {
                    each(vec![
                        text(r.zone.as_str()),
                        text(r.account.as_str()),
                        Cell::Text(format_time(r.window.start())),
                        Cell::Text(format_time(r.window.end())),
                        Cell::Signed(r.bytes_sent_delta),
                        Cell::Signed(r.bytes_received_delta),
                        Cell::Text(format_time(r.restated_at)),
                    ])
                })
                .await
        }
    }
}

/// Prints one row per zone of the store's status.
///
/// # Errors
///
/// [`CliError::Stdout`].
pub(crate) fn print_status(
    zones: &[ZoneStatus],
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    const COLUMNS: &[&str] = &[
        "zone",
        "checkpoint",
        "windows",
        "records",
        "anomalies",
        "last_collected_at",
    ];
    let rows: Vec<Vec<Cell>> = zones
        .iter()
        .map(|z| {
            vec![
                Cell::Text(z.zone.to_string()),
                Cell::Text(format_time(z.checkpoint)),
                Cell::Number(z.windows),
                Cell::Number(z.records),
                Cell::Number(z.anomalies),
                Cell::Text(z.last_collected_at.map(format_time).unwrap_or_default()),
            ]
        })
        .collect();
    match format {
        Format::Table => {
            let mut widths = Widths::new(COLUMNS);
            for row in &rows {
                let _ = widths.add(row);
            }
            let mut table = Table::new(COLUMNS, widths, out);
            table.totals = None;
            table.header()?;
            for row in &rows {
                table.row(row)?;
            }
            Ok(())
        }
        Format::Json | Format::Csv => {
            let mut writer = Stream::new(COLUMNS, format, out);
            writer.start()?;
            for row in &rows {
                writer.row(row)?;
            }
            writer.finish()
        }
    }
}

/// Column widths of a table, and its byte sums for the TOTAL line.
struct Widths {
    widths: Vec<usize>,
    sums: Vec<i128>,
    numeric: Vec<bool>,
}

impl Widths {
    fn new(columns: &[&str]) -> Widths {
        Widths {
            widths: columns.iter().map(|c| c.chars().count()).collect(),
            sums: vec![0; columns.len()],
            numeric: vec![false; columns.len()],
        }
    }

    fn add(&mut self, row: &[Cell]) -> ControlFlow<()> {
        for (index, cell) in row.iter().enumerate() {
            if let Some(width) = self.widths.get_mut(index) {
                *width = (*width).max(table_text(cell).chars().count());
            }
            if cell.is_numeric() {
                self.numeric[index] = true;
                self.sums[index] = self.sums[index].saturating_add(cell.value());
            }
        }
        ControlFlow::Continue(())
    }
}

/// An aligned table written row by row.
struct Table<'w> {
    columns: &'static [&'static str],
    widths: Vec<usize>,
    numeric: Vec<bool>,
    /// The TOTAL line's sums, or `None` for a table without one.
    totals: Option<Vec<i128>>,
    out: BufWriter<&'w mut dyn Write>,
}

impl<'w> Table<'w> {
    fn new(columns: &'static [&'static str], widths: Widths, out: &'w mut dyn Write) -> Table<'w> {
        let totals = columns
            .iter()
            .any(|c| c.starts_with("bytes_"))
            .then_some(widths.sums);
        let mut table = Table {
            columns,
            numeric: columns
                .iter()
                .zip(&widths.numeric)
                .map(|(c, &n)| {
                    n || c.starts_with("bytes_")
                        || matches!(*c, "windows" | "records" | "anomalies" | "event_id")
                })
                .collect(),
            widths: widths.widths,
            totals,
            out: BufWriter::new(out),
        };
        if let Some(totals) = &table.totals {
            for (index, total) in totals.iter().enumerate() {
                if table.numeric[index] && table.columns[index].starts_with("bytes_") {
                    table.widths[index] = table.widths[index].max(total.to_string().len());
                }
            }
            table.widths[0] = table.widths[0].max("TOTAL".len());
        }
        table
    }

    fn line(&mut self, cells: &[String]) -> Result<(), CliError> {
        let mut line = String::new();
        for (index, value) in cells.iter().enumerate() {
            if index > 0 {
                line.push_str("  ");
            }
            let pad = self.widths[index].saturating_sub(value.chars().count());
            if self.numeric[index] {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(value);
            } else {
                line.push_str(value);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(self.out, "{}", line.trim_end()).map_err(stdout_error)
    }

    fn header(&mut self) -> Result<(), CliError> {
        let header: Vec<String> = self.columns.iter().map(|c| (*c).to_owned()).collect();
        self.line(&header)
    }

    fn row(&mut self, row: &[Cell]) -> Result<(), CliError> {
        let cells: Vec<String> = row.iter().map(table_text).collect();
        self.line(&cells)
    }

    /// Refuses a TOTAL line past 64 bits, before anything is written.
    fn check_total(&self) -> Result<(), CliError> {
        let Some(totals) = &self.totals else {
            return Ok(());
        };
        for (column, total) in self.columns.iter().zip(totals) {
            if column.starts_with("bytes_")
                && !column.ends_with("_delta")
                && u64::try_from(*total).is_err()
            {
                return Err(CliError::TotalOverflow {
                    what: column,
                    key: "TOTAL".to_owned(),
                });
            }
        }
        Ok(())
    }

    fn total(mut self) -> Result<(), CliError> {
        if let Some(totals) = self.totals.clone() {
            let mut cells = Vec::with_capacity(self.columns.len());
            for (index, column) in self.columns.iter().enumerate() {
                cells.push(if index == 0 {
                    "TOTAL".to_owned()
                } else if column.starts_with("bytes_") {
                    totals[index].to_string()
                } else {
                    String::new()
                });
            }
            self.line(&cells)?;
        }
        self.out.flush().map_err(stdout_error)
    }
}

/// JSON or CSV written row by row.
struct Stream<'w> {
    columns: &'static [&'static str],
    format: Format,
    rows: u64,
    out: BufWriter<&'w mut dyn Write>,
}

impl<'w> Stream<'w> {
    fn new(columns: &'static [&'static str], format: Format, out: &'w mut dyn Write) -> Stream<'w> {
        Stream {
            columns,
            format,
            rows: 0,
            out: BufWriter::new(out),
        }
    }

    fn start(&mut self) -> Result<(), CliError> {
        let text = match self.format {
            Format::Json => "[".to_owned(),
            _ => format!("{}\n", self.columns.join(",")),
        };
        self.out.write_all(text.as_bytes()).map_err(stdout_error)
    }

    fn row(&mut self, row: &[Cell]) -> Result<(), CliError> {
        let mut line = String::new();
        match self.format {
            Format::Json => {
                if self.rows > 0 {
                    line.push(',');
                }
                line.push('{');
                for (index, (column, cell)) in self.columns.iter().zip(row).enumerate() {
                    if index > 0 {
                        line.push(',');
                    }
                    line.push_str(&serde_json::Value::from(*column).to_string());
                    line.push(':');
                    match cell {
                        Cell::Text(s) => {
                            line.push_str(&serde_json::Value::from(s.as_str()).to_string())
                        }
                        Cell::Number(n) => {
                            let _ = write!(line, "{n}");
                        }
                        Cell::Signed(n) => {
                            let _ = write!(line, "{n}");
                        }
                    }
                }
                line.push('}');
            }
            _ => {
                let fields: Vec<String> = row.iter().map(csv_cell).collect();
                line.push_str(&fields.join(","));
                line.push('\n');
            }
        }
        self.rows += 1;
        self.out.write_all(line.as_bytes()).map_err(stdout_error)
    }

    fn finish(mut self) -> Result<(), CliError> {
        if self.format == Format::Json {
            self.out.write_all(b"]\n").map_err(stdout_error)?;
        }
        self.out.flush().map_err(stdout_error)
    }
}

/// A write error of standard output; a reader that went away (`| head`)
/// is not one.
fn stdout_error(error: io::Error) -> CliError {
    CliError::Stdout(error)
}

/// A cell as the table shows it: text with its control, invisible and
/// non-ASCII space characters (and backslashes) escaped as `\u{…}` (`\\`),
/// so that two names that differ only by such characters never look alike.
fn table_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(s) => escape_invisible(s),
        Cell::Number(n) => n.to_string(),
        Cell::Signed(n) => n.to_string(),
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
        Cell::Number(n) => n.to_string(),
        Cell::Signed(n) => n.to_string(),
    }
}

fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn format_day(day: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_text_cells_never_start_a_formula() {
        let text = |s: &str| Cell::Text(s.to_owned());
        for (cell, written) in [
            (text("=1+1"), "'=1+1"),
            (text("+49"), "'+49"),
            (text("-acct"), "'-acct"),
            (text("@SUM(A1)"), "'@SUM(A1)"),
            (text("=a,b"), "\"'=a,b\""),
            (text("a \"b\""), "\"a \"\"b\"\"\""),
            (text("plain"), "plain"),
            (Cell::Number(7), "7"),
            (Cell::Signed(-7), "-7"),
        ] {
            assert_eq!(csv_cell(&cell), written, "{cell:?}");
        }
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

    fn status(zone: &str, windows: u64) -> ZoneStatus {
        ZoneStatus {
            zone: usage_model::ZoneId::new(zone).unwrap(),
            checkpoint: time::macros::datetime!(2026-11-02 00:00 UTC),
            windows,
            records: 10 * windows,
            anomalies: 1,
            last_collected_at: None,
        }
    }

    #[test]
    fn status_as_table_and_json() {
        let zones = [status("zone-1", 3), status("z2", 12)];
        let mut out = Vec::new();
        print_status(&zones, Format::Table, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "zone    checkpoint            windows  records  anomalies  last_collected_at\n\
             zone-1  2026-11-02T00:00:00Z        3       30          1\n\
             z2      2026-11-02T00:00:00Z       12      120          1\n"
        );
        let mut out = Vec::new();
        print_status(&zones[..1], Format::Json, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[{\"zone\":\"zone-1\",\"checkpoint\":\"2026-11-02T00:00:00Z\",\"windows\":3,\"records\":30,\"anomalies\":1,\"last_collected_at\":\"\"}]\n"
        );
    }
}
