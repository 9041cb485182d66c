//! Progress of a catch-up run on standard error: a one-line bar on a terminal
//! when more than one window is due, one summary line per window otherwise.

use std::io::{self, IsTerminal, Write};

use crate::store::WindowSummary;
use crate::units::format_time;

/// Width of the bar between its brackets.
const BAR_WIDTH: usize = 30;

/// Shows how far collection has come. Display failures are ignored: they never
/// fail a collection.
#[derive(Debug)]
pub(crate) struct Progress<W: Write = io::Stderr> {
    out: W,
    total: usize,
    done: usize,
    bar: bool,
}

impl Progress {
    /// Progress over `total` windows on standard error, drawn as a bar when
    /// standard error is a terminal and more than one window is due.
    pub(crate) fn new(total: usize) -> Progress {
        let stderr = io::stderr();
        let terminal = stderr.is_terminal();
        Progress::with_writer(stderr, total, terminal)
    }
}

impl<W: Write> Progress<W> {
    /// Progress over `total` windows written to `out`, as a bar when
    /// `terminal` and more than one window is due.
    pub(crate) fn with_writer(out: W, total: usize, terminal: bool) -> Progress<W> {
        Progress {
            out,
            total,
            done: 0,
            bar: terminal && total > 1,
        }
    }

    /// Records one committed window: redraws the bar, or prints its summary line.
    pub(crate) fn window_done(&mut self, summary: &WindowSummary) {
        self.done += 1;
        let _ = if self.bar {
            write!(self.out, "\r{}", self.bar_line(summary))
        } else {
            writeln!(self.out, "{}", summary_line(summary))
        };
        let _ = self.out.flush();
    }

    /// Ends the display: moves past the bar, if one was drawn.
    pub(crate) fn finish(mut self) {
        if self.bar && self.done > 0 {
            let _ = writeln!(self.out);
            let _ = self.out.flush();
        }
    }

    /// `[=====>    ] 3/10 windows  2026-11-02T00:00:00Z`: the time is how far
    /// collection has come.
    fn bar_line(&self, summary: &WindowSummary) -> String {
        let total = self.total.max(self.done);
        let filled = (self.done * BAR_WIDTH)
            .checked_div(total)
            .unwrap_or(BAR_WIDTH);
        let mut bar = String::with_capacity(BAR_WIDTH);
        if filled >= BAR_WIDTH {
            bar.extend(std::iter::repeat_n('=', BAR_WIDTH));
        } else if filled > 0 {
            bar.extend(std::iter::repeat_n('=', filled - 1));
            bar.push('>');
        }
        bar.extend(std::iter::repeat_n(' ', BAR_WIDTH - bar.len()));
        format!(
            "[{bar}] {}/{total} windows  {}",
            self.done,
            format_time(summary.window.end())
        )
    }
}

/// `window START..END: ips N, requests N, bytes sent N received N, records N, anomalies N`.
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
    fn summary_lines_when_not_a_terminal() {
        let mut out = Vec::new();
        let mut progress = Progress::with_writer(&mut out, 2, false);
        progress.window_done(&summary(0));
        progress.window_done(&summary(1));
        progress.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
window 2026-11-01T00:00:00Z..2026-11-02T00:00:00Z: ips 120, requests 1, bytes sent 123 received 456, records 98, anomalies 2
window 2026-11-02T00:00:00Z..2026-11-03T00:00:00Z: ips 120, requests 1, bytes sent 123 received 456, records 98, anomalies 2
"
        );
    }

    #[test]
    fn one_window_on_a_terminal_is_a_summary_line() {
        let mut out = Vec::new();
        let mut progress = Progress::with_writer(&mut out, 1, true);
        progress.window_done(&summary(0));
        progress.finish();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("window 2026-11-01T00:00:00Z..") && text.ends_with('\n'),
            "{text:?}"
        );
    }

    #[test]
    fn bar_on_a_terminal() {
        let mut out = Vec::new();
        let mut progress = Progress::with_writer(&mut out, 10, true);
        for day in 0..3 {
            progress.window_done(&summary(day));
        }
        let bar_at_three = progress.bar_line(&summary(2));
        for day in 3..10 {
            progress.window_done(&summary(day));
        }
        progress.finish();
        assert_eq!(
            bar_at_three,
            "[========>                     ] 3/10 windows  2026-11-04T00:00:00Z"
        );
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "\r[==>                           ] 1/10 windows  2026-11-02T00:00:00Z\r"
            ),
            "{text:?}"
        );
        assert!(
            text.ends_with(
                "\r[==============================] 10/10 windows  2026-11-11T00:00:00Z\n"
            ),
            "{text:?}"
        );
        assert_eq!(text.matches('\r').count(), 10);
    }

    #[test]
    fn finish_without_windows_prints_nothing() {
        let mut out = Vec::new();
        Progress::with_writer(&mut out, 5, true).finish();
        assert!(out.is_empty());
        // On standard error too: nothing to show, nothing shown.
        let progress = Progress::new(0);
        assert!(!progress.bar && progress.done == 0);
        progress.finish();
    }
}
