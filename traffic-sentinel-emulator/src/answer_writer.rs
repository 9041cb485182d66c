//! Writing answer lines as `Display` would, without `fmt`.

use std::io::Write as _;
use std::net::IpAddr;

/// One answer line, `[PREFIX]IP,COUNT[,COUNT]\n`, built on the stack and
/// appended to the answer at once.
pub(crate) struct Line {
    buf: [u8; Line::CAPACITY],
    pub(crate) len: usize,
}

impl Line {
    /// The longest prefix kept in the line; longer ones are written apart.
    pub(crate) const PREFIX_ROOM: usize = 24;

    /// Room for a prefix, an address of at most 45 characters
    /// (`INET6_ADDRSTRLEN`), two counts of at most 20 digits, their commas
    /// and the newline.
    pub(crate) const CAPACITY: usize = Line::PREFIX_ROOM + 45 + 2 * 21 + 1;

    /// The longest `IPv4,COUNT\n`.
    pub(crate) const IPV4_ROW: usize = 15 + 21 + 1;

    pub(crate) fn new() -> Line {
        Line {
            buf: [0; Line::CAPACITY],
            len: 0,
        }
    }

    /// Starts the line with `prefix` when it fits; says whether it did.
    pub(crate) fn prefix(&mut self, prefix: &[u8]) -> bool {
        let fits = self.len == 0 && prefix.len() <= Line::PREFIX_ROOM;
        if fits {
            self.buf[..prefix.len()].copy_from_slice(prefix);
            self.len = prefix.len();
        }
        fits
    }

    pub(crate) fn byte(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `n` in decimal, as its `Display` form writes it.
    pub(crate) fn number(&mut self, mut n: u64) {
        let digits = n.checked_ilog10().map_or(1, |log| log as usize + 1);
        let end = self.len + digits;
        for slot in self.buf[self.len..end].iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len = end;
    }

    /// `ip` as its `Display` form writes it.
    pub(crate) fn ip(&mut self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, d] = v4.octets();
                self.number(u64::from(a));
                for octet in [b, c, d] {
                    self.byte(b'.');
                    self.number(u64::from(octet));
                }
            }
            IpAddr::V6(_) => {
                let mut rest = &mut self.buf[self.len..];
                let room = rest.len();
                // At most 45 characters always fit.
                drop(write!(rest, "{ip}"));
                self.len += room - rest.len();
            }
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
