//! Which way an address's bytes went, in Traffic Sentinel's field names.

/// Which way bytes moved, seen from one address: the two halves of every
/// Traffic Sentinel query (DESIGN §5).
///
/// | side | the address is TS field | the other end's zone is TS field | row letter |
/// |---|---|---|---|
/// | [`Side::Sent`] | `ipsource` | `destinationzone` | `s` |
/// | [`Side::Received`] | `ipdestination` | `sourcezone` | `r` |
///
/// The field names are those of Traffic Sentinel's `historytrmx` view, as
/// Apache CloudStack's `TrafficSentinelResource` queries it; CloudStack bills
/// sent bytes as usage type 4 and received bytes as usage type 5.
///
/// # Example
///
/// ```
/// use usage_model::Side;
///
/// assert_eq!(Side::Sent.address_field(), "ipsource");
/// assert_eq!(Side::Received.zone_field(), "sourcezone");
/// assert_eq!(Side::BOTH.map(Side::letter), ['s', 'r']);
/// assert_eq!(Side::from_letter('r'), Some(Side::Received));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum Side {
    /// Bytes with the address as source (`ipsource`), counted towards the
    /// zone of the destination (`destinationzone`).
    Sent,
    /// Bytes with the address as destination (`ipdestination`), counted from
    /// the zone of the source (`sourcezone`).
    Received,
}

impl Side {
    /// Both sides, in the order a query asks for them: sent, then received.
    pub const BOTH: [Side; 2] = [Side::Sent, Side::Received];

    /// The letter that starts this side's answer rows in the client's
    /// script: `s` or `r`.
    pub fn letter(self) -> char {
        match self {
            Side::Sent => 's',
            Side::Received => 'r',
        }
    }

    /// The side whose answer rows start with `letter` (`s` or `r`).
    pub fn from_letter(letter: char) -> Option<Side> {
        match letter {
            's' => Some(Side::Sent),
            'r' => Some(Side::Received),
            _ => None,
        }
    }

    /// The TS field holding the address: `ipsource` or `ipdestination`.
    pub fn address_field(self) -> &'static str {
        match self {
            Side::Sent => "ipsource",
            Side::Received => "ipdestination",
        }
    }

    /// The TS field holding the other end's zone: `destinationzone` or
    /// `sourcezone`.
    pub fn zone_field(self) -> &'static str {
        match self {
            Side::Sent => "destinationzone",
            Side::Received => "sourcezone",
        }
    }
}
