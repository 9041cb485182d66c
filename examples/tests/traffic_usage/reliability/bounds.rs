//! Bounds: input of any length streams in bounded memory.

use std::io::{self, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use usage_model::{EventReader, IpEventKind};

/// Two million event lines, made one at a time as they are read.
struct GeneratedLog {
    lines: u64,
    produced: u64,
    pending: Vec<u8>,
    offset: usize,
    bytes_served: Arc<AtomicU64>,
}

impl Read for GeneratedLog {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.offset == self.pending.len() {
            if self.produced == self.lines {
                return Ok(0);
            }
            let n = self.produced;
            let kind = if n.is_multiple_of(2) {
                "NET.IPASSIGN"
            } else {
                "NET.IPRELEASE"
            };
            self.pending = format!(
                "{{\"id\":{},\"type\":\"{kind}\",\"at\":\"2026-11-01T{:02}:{:02}:00Z\",\"zone\":\"zone-1\",\"account\":\"acct-{}\",\"ip\":\"10.{}.{}.{}\"}}\n",
                n + 1,
                (n / 60) % 24,
                n % 60,
                n % 97,
                (n >> 16) & 0xff,
                (n >> 8) & 0xff,
                n & 0xff
            )
            .into_bytes();
            self.offset = 0;
            self.produced += 1;
        }
        let count = buf.len().min(self.pending.len() - self.offset);
        buf[..count].copy_from_slice(&self.pending[self.offset..self.offset + count]);
        self.offset += count;
        self.bytes_served.fetch_add(count as u64, Ordering::Relaxed);
        Ok(count)
    }
}

#[test]
fn millions_of_event_lines_stream_in_bounded_memory() {
    const LINES: u64 = 2_000_000;
    const BUFFER: usize = 8 * 1024;
    let served = Arc::new(AtomicU64::new(0));
    let log = GeneratedLog {
        lines: LINES,
        produced: 0,
        pending: Vec::new(),
        offset: 0,
        bytes_served: Arc::clone(&served),
    };
    let mut assigns = 0u64;
    let mut count = 0u64;
    let mut longest_line = 0u64;
    let mut previous_served = 0;
    for event in EventReader::new(BufReader::with_capacity(BUFFER, log)) {
        let event = event.unwrap();
        count += 1;
        assigns += u64::from(event.kind == IpEventKind::Assign);
        // The reader is never more than one buffer ahead of the events it
        // handed out: nothing is accumulated.
        let now = served.load(Ordering::Relaxed);
        longest_line = longest_line.max(now - previous_served);
        previous_served = now;
        if count.is_multiple_of(100_000) {
            assert_eq!(event.id, count);
        }
    }
    assert_eq!(count, LINES);
    assert_eq!(assigns, LINES / 2);
    assert!(
        longest_line <= BUFFER as u64,
        "read {longest_line} bytes for one event"
    );
}
