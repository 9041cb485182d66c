//! Progress of a run on standard error: one summary line per window, as
//! each commits (windows are produced lazily, so a run of any length shows
//! its progress as it goes).

use std::io::{self, Write};

use usage_store::WindowReport;

use crate::units::format_time;

/// Writes one line per committed window.
#[derive(Debug)]
pub(crate) struct Progress<W: Write = io::Stderr> {
    out: W,
}

impl Progress {
    /// Progress on standard error.
    pub(crate) fn new() -> Progress {
        Progress::with_writer(io::stderr())
    }
}

/// What a progress line says of one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WindowSummary {
    pub(crate) window: usage_model::CollectionWindow,
    pub(crate) ips: u64,
    pub(crate) requests: u64,
    pub(crate) bytes_sent: u128,
    pub(crate) bytes_received: u128,
    pub(crate) records: u64,
    pub(crate) anomalies: u64,
}

impl From<&WindowReport> for WindowSummary {
    fn from(report: &WindowReport) -> WindowSummary {
        WindowSummary {
            window: report.window,
            ips: report.ips,
            requests: report.requests,
            bytes_sent: report.bytes_sent,
            bytes_received: report.bytes_received,
            records: report.records,
            anomalies: report.anomaly_count(),
        }
    }
}

impl<W: Write> Progress<W> {
    /// Progress written to `out`.
    pub(crate) fn with_writer(out: W) -> Progress<W> {
        Progress { out }
    }

    /// Prints the line of one committed window.
    pub(crate) fn window_done(&mut self, report: &WindowReport) {
        self.summary_done(&WindowSummary::from(report));
    }

    fn summary_done(&mut self, summary: &WindowSummary) {
        let _ = writeln!(self.out, "{}", summary_line(summary));
        let _ = self.out.flush();
    }

    /// Ends the progress output.
    pub(crate) fn finish(mut self) {
        let _ = self.out.flush();
    }
}

/// Warns of each anomaly a committed window stored, the ledger's and the
/// skipped rows of the events source: `anomaly in window START..END: …`.
pub(crate) fn log_anomalies(report: &WindowReport) {
    let (start, end) = (
        format_time(report.window.start()),
        format_time(report.window.end()),
    );
    for anomaly in &report.anomalies {
        tracing::warn!("anomaly in window {start}..{end}: {anomaly}");
    }
    for skipped in &report.skipped_events {
        tracing::warn!("anomaly in window {start}..{end}: {}", skipped.detail);
    }
}

/// `window START..END: ips N, requests N, bytes sent N received N, records
/// N, anomalies N`.
pub(crate) fn summary_line(s: &WindowSummary) -> String {
    format!(
        "window {}..{}: ips {}, requests {}, bytes sent {} received {}, records {}, anomalies {}",
        format_time(s.window.start()),
        format_time(s.window.end()),
        s.ips,
        s.requests,
        s.bytes_sent,
        s.bytes_received,
        s.records,
        s.anomalies
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use usage_model::CollectionWindow;

    fn summary(day: u8) -> WindowSummary {
        let start = datetime!(2026-11-01 00:00 UTC) + time::Duration::days(i64::from(day));
        WindowSummary {
            window: CollectionWindow::new(start, start + time::Duration::days(1)).unwrap(),
            ips: 120,
            requests: 1,
            bytes_sent: 123,
            bytes_received: 456,
            records: 98,
            anomalies: 2,
        }
    }

    #[test]
    fn one_summary_line_per_window() {
        let mut out = Vec::new();
        let mut progress = Progress::with_writer(&mut out);
        progress.summary_done(&summary(0));
        progress.summary_done(&summary(1));
        progress.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
window 2026-11-01T00:00:00Z..2026-11-02T00:00:00Z: ips 120, requests 1, bytes sent 123 received 456, records 98, anomalies 2
window 2026-11-02T00:00:00Z..2026-11-03T00:00:00Z: ips 120, requests 1, bytes sent 123 received 456, records 98, anomalies 2
"
        );
    }
}
