//! Zones of addresses: a zones file of `cidr,zone` lines, looked up by
//! longest prefix.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use ipnet::IpNet;

use crate::Error;

/// A zone name: one or more of `A-Z a-z 0-9 _ . -` (DESIGN §5, the rule
/// Traffic Sentinel filters are built with).
///
/// # Example
///
/// ```
/// use sflow::ZoneName;
///
/// let zone: ZoneName = "DMZ-1".parse()?;
/// assert_eq!(zone.as_str(), "DMZ-1");
/// assert!("two words".parse::<ZoneName>().is_err());
/// # Ok::<(), sflow::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZoneName(Arc<str>);

impl ZoneName {
    /// The zone of addresses in no prefix, unless configured otherwise:
    /// `EXTERNAL` (CloudStack's `traffic.sentinel.include.zones` default).
    pub const EXTERNAL: &'static str = "EXTERNAL";

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn is_valid(name: &str) -> bool {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    }
}

impl FromStr for ZoneName {
    type Err = Error;

    /// # Errors
    ///
    /// [`Error::InvalidZoneName`] when `name` is empty or holds a character
    /// outside `[A-Za-z0-9_.-]`.
    fn from_str(name: &str) -> Result<ZoneName, Error> {
        if ZoneName::is_valid(name) {
            Ok(ZoneName(Arc::from(name)))
        } else {
            Err(Error::InvalidZoneName {
                value: name.to_owned(),
            })
        }
    }
}

impl fmt::Display for ZoneName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ZoneName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Prefixes of one address family and one length, sorted by network, with
/// the index of their zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct PrefixTable {
    length: u8,
    networks: Vec<(u128, usize)>,
}

/// Which zone each address is in: the zone of the longest prefix holding it,
/// else the default zone.
///
/// Built from a zones file ([`ZoneMap::parse`]): one `cidr,zone` per line,
/// no header, IPv4 and IPv6 prefixes (e.g. `10.1.0.0/16,DMZ`,
/// `2001:db8::/32,DMZ`), blank lines and lines starting with `#` ignored,
/// spaces around fields trimmed. A prefix must have no bits set past its
/// length and appear once.
///
/// Lookups test each prefix length present, longest first, by binary
/// search in a sorted table per length.
///
/// # Example
///
/// ```
/// use sflow::ZoneMap;
///
/// let zones = ZoneMap::parse("# guests\n10.0.0.0/8,GUEST\n10.9.0.0/16,DMZ\n")?
///     .default_zone("OUTSIDE".parse()?);
/// assert_eq!(zones.zone_of("10.9.1.2".parse()?).as_str(), "DMZ");
/// assert_eq!(zones.zone_of("10.1.1.2".parse()?).as_str(), "GUEST");
/// assert_eq!(zones.zone_of("192.0.2.1".parse()?).as_str(), "OUTSIDE");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneMap {
    zones: Vec<ZoneName>,
    default_zone: ZoneName,
    v4: Vec<PrefixTable>,
    v6: Vec<PrefixTable>,
}

impl Default for ZoneMap {
    /// No prefixes: every address is in `EXTERNAL`.
    fn default() -> ZoneMap {
        ZoneMap {
            zones: Vec::new(),
            default_zone: ZoneName(Arc::from(ZoneName::EXTERNAL)),
            v4: Vec::new(),
            v6: Vec::new(),
        }
    }
}

impl ZoneMap {
    /// Parses a zones file's text.
    ///
    /// # Errors
    ///
    /// Naming the 1-based line number: [`Error::ZoneLineShape`] for a line
    /// that is not two comma-separated fields, [`Error::BadPrefix`] for a
    /// `cidr` that is not an IPv4/IPv6 prefix or has host bits set,
    /// [`Error::BadZone`] for a zone name outside `[A-Za-z0-9_.-]+`,
    /// [`Error::DuplicatePrefix`] for a prefix already given.
    pub fn parse(text: &str) -> Result<ZoneMap, Error> {
        let mut zones: Vec<ZoneName> = Vec::new();
        let mut zone_index: HashMap<&str, usize> = HashMap::new();
        let mut seen: HashMap<IpNet, usize> = HashMap::new();
        let mut v4: HashMap<u8, Vec<(u128, usize)>> = HashMap::new();
        let mut v6: HashMap<u8, Vec<(u128, usize)>> = HashMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut fields = trimmed.split(',');
            let (Some(cidr), Some(zone), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(Error::ZoneLineShape {
                    line,
                    text: raw.to_owned(),
                });
            };
            let (cidr, zone) = (cidr.trim(), zone.trim());
            let prefix = parse_prefix(cidr).map_err(|reason| Error::BadPrefix {
                line,
                value: cidr.to_owned(),
                reason,
            })?;
            if !ZoneName::is_valid(zone) {
                return Err(Error::BadZone {
                    line,
                    value: zone.to_owned(),
                });
            }
            if let Some(&first_line) = seen.get(&prefix) {
                return Err(Error::DuplicatePrefix {
                    line,
                    prefix: prefix.to_string(),
                    first_line,
                });
            }
            seen.insert(prefix, line);
            let zone = *zone_index.entry(zone).or_insert_with(|| {
                zones.push(ZoneName(Arc::from(zone)));
                zones.len() - 1
            });
            let (table, network) = match prefix {
                IpNet::V4(net) => (&mut v4, u128::from(u32::from(net.network()))),
                IpNet::V6(net) => (&mut v6, u128::from(net.network())),
            };
            table
                .entry(prefix.prefix_len())
                .or_default()
                .push((network, zone));
        }
        Ok(ZoneMap {
            zones,
            v4: into_tables(v4),
            v6: into_tables(v6),
            ..ZoneMap::default()
        })
    }

    /// The zone of addresses in no prefix. By default, `EXTERNAL`.
    pub fn default_zone(self, zone: ZoneName) -> ZoneMap {
        ZoneMap {
            default_zone: zone,
            ..self
        }
    }

    /// The zone of `address`: that of the longest prefix holding it, else the
    /// default zone. An IPv4-mapped IPv6 address is looked up as IPv4.
    pub fn zone_of(&self, address: IpAddr) -> &ZoneName {
        let (tables, value, bits) = match address.to_canonical() {
            IpAddr::V4(v4) => (&self.v4, u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => (&self.v6, u128::from(v6), 128),
        };
        for table in tables {
            let network = mask(value, table.length, bits);
            if let Ok(at) = table
                .networks
                .binary_search_by_key(&network, |&(net, _)| net)
                && let Some(zone) = self.zones.get(table.networks[at].1)
            {
                return zone;
            }
        }
        &self.default_zone
    }

    /// The number of prefixes.
    pub fn len(&self) -> usize {
        self.v4
            .iter()
            .chain(&self.v6)
            .map(|t| t.networks.len())
            .sum()
    }

    /// Whether there are no prefixes (every address is in the default zone).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `value` (an address of `bits` bits in the low bits of a `u128`) with all
/// but its first `length` bits cleared.
fn mask(value: u128, length: u8, bits: u32) -> u128 {
    let host_bits = bits - u32::from(length).min(bits);
    if host_bits >= 128 {
        0
    } else {
        value >> host_bits << host_bits
    }
}

fn parse_prefix(cidr: &str) -> Result<IpNet, &'static str> {
    if !cidr.contains('/') {
        return Err("expected address/length");
    }
    let prefix: IpNet = cidr
        .parse()
        .map_err(|_| "not an ipv4 or ipv6 prefix (address/length)")?;
    if prefix.trunc() != prefix {
        return Err("bits set past the prefix length");
    }
    // An IPv4-mapped IPv6 prefix (`::ffff:192.0.2.0/120`) is the IPv4
    // prefix, as mapped addresses are the IPv4 address (DESIGN §4). Its
    // `ffff` bits are in the prefix (the check above), so it is /96 or
    // longer.
    if let IpNet::V6(net) = prefix
        && let Some(v4) = net.network().to_ipv4_mapped()
    {
        return ipnet::Ipv4Net::new(v4, net.prefix_len().saturating_sub(96))
            .map(IpNet::V4)
            .map_err(|_| "not an ipv4 or ipv6 prefix (address/length)");
    }
    Ok(prefix)
}

/// Per-length tables, longest prefix first, each sorted by network.
fn into_tables(by_length: HashMap<u8, Vec<(u128, usize)>>) -> Vec<PrefixTable> {
    let mut tables: Vec<PrefixTable> = by_length
        .into_iter()
        .map(|(length, mut networks)| {
            networks.sort_unstable();
            PrefixTable { length, networks }
        })
        .collect();
    tables.sort_unstable_by_key(|table| std::cmp::Reverse(table.length));
    tables
}
