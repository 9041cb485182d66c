//! Zones files: longest prefix, IPv6, comments, and each error with its line.

use sflow::{Error, ZoneMap, ZoneName};

const ZONES: &str = "\
# zones of the lab
10.0.0.0/8,GUEST
10.1.0.0/16 , DMZ

10.1.2.0/24,LAB_1
10.1.2.3/32,HOST.one
   # indented comment
2001:db8::/32,V6-GUEST
2001:db8:1::/48,V6-DMZ
0.0.0.0/0,ANY4
";

#[test]
fn longest_prefix_wins() {
    let zones = ZoneMap::parse(ZONES).expect("a valid zones file");
    assert_eq!(zones.len(), 7);
    let cases = [
        ("10.200.0.1", "GUEST"),
        ("10.1.9.9", "DMZ"),
        ("10.1.2.4", "LAB_1"),
        ("10.1.2.3", "HOST.one"),
        ("11.0.0.1", "ANY4"),
        ("2001:db8:2::1", "V6-GUEST"),
        ("2001:db8:1:ffff::1", "V6-DMZ"),
        ("2001:db9::1", "EXTERNAL"),
        // IPv4-mapped IPv6 is looked up as IPv4.
        ("::ffff:10.1.2.3", "HOST.one"),
    ];
    for (address, zone) in cases {
        let address = address.parse().expect("an address");
        assert_eq!(zones.zone_of(address).as_str(), zone, "{address}");
    }
}

/// A prefix written as IPv4-mapped IPv6 is the IPv4 prefix (addresses are
/// canonical, DESIGN §4); one shorter than /96 would reach past IPv4 and is
/// refused (its `ffff` bits lie past the prefix).
#[test]
fn ipv4_mapped_prefixes_are_ipv4_prefixes() {
    let zones = ZoneMap::parse("::ffff:192.0.2.0/120,MAPPED\n").expect("valid");
    for address in ["192.0.2.27", "::ffff:192.0.2.27"] {
        let address = address.parse().expect("an address");
        assert_eq!(zones.zone_of(address).as_str(), "MAPPED", "{address}");
    }
    assert_eq!(
        zones.zone_of("192.0.3.1".parse().expect("ip")).as_str(),
        "EXTERNAL"
    );
    let error = ZoneMap::parse("::ffff:0.0.0.0/95,WIDE\n").expect_err("too wide");
    assert!(error.to_string().contains("line 1"), "{error}");
}

#[test]
fn default_zone_is_configurable() {
    let zones = ZoneMap::parse("10.0.0.0/8,GUEST").expect("valid");
    assert_eq!(
        zones.zone_of("192.0.2.1".parse().expect("ip")).as_str(),
        "EXTERNAL"
    );
    let zones = zones.default_zone("OUTSIDE".parse().expect("a zone name"));
    assert_eq!(
        zones.zone_of("192.0.2.1".parse().expect("ip")).as_str(),
        "OUTSIDE"
    );
    assert_eq!(
        zones.zone_of("10.0.0.1".parse().expect("ip")).as_str(),
        "GUEST"
    );
    let empty = ZoneMap::default();
    assert!(empty.is_empty());
    assert_eq!(
        empty.zone_of("::1".parse().expect("ip")).as_str(),
        ZoneName::EXTERNAL
    );
}

#[test]
fn bad_lines_name_their_line_and_field() {
    let cases: &[(&str, usize, &str)] = &[
        ("10.0.0.0/8", 1, "expected `cidr,zone`"),
        ("# c\n10.0.0.0/8,A,B", 2, "expected `cidr,zone`"),
        (
            "10.0.0.0/8,A\n\n10.0.0.0/33,B",
            3,
            "bad cidr \"10.0.0.0/33\"",
        ),
        (
            "10.0.0.1,A",
            1,
            "bad cidr \"10.0.0.1\": expected address/length",
        ),
        ("10.0.0.1/8,A", 1, "bits set past the prefix length"),
        ("2001:db8::/129,A", 1, "bad cidr"),
        ("bogus/8,A", 1, "bad cidr \"bogus/8\""),
        ("10.0.0.0/8,", 1, "bad zone \"\""),
        ("10.0.0.0/8,two words", 1, "bad zone \"two words\""),
        ("10.0.0.0/8,ZONE;DROP", 1, "bad zone \"ZONE;DROP\""),
        (
            "10.0.0.0/8,A\n10.0.0.0/8,B",
            2,
            "prefix 10.0.0.0/8 already given on line 1",
        ),
    ];
    for &(text, line, message) in cases {
        let error = ZoneMap::parse(text).expect_err(text);
        let error_line = match &error {
            Error::ZoneLineShape { line, .. }
            | Error::BadPrefix { line, .. }
            | Error::BadZone { line, .. }
            | Error::DuplicatePrefix { line, .. } => *line,
            other => panic!("{text:?}: unexpected error {other}"),
        };
        assert_eq!(error_line, line, "{text:?}");
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("zones line {line}: ")),
            "{shown}"
        );
        assert!(shown.contains(message), "{text:?}: {shown}");
    }
}

#[test]
fn zone_names_follow_the_rule() {
    for good in ["EXTERNAL", "a", "Zone_1.b-c", "0"] {
        assert_eq!(good.parse::<ZoneName>().expect(good).as_str(), good);
    }
    for bad in ["", "a b", "é", "a,b", "a'b", "a\"b", "a/b"] {
        assert!(
            matches!(bad.parse::<ZoneName>(), Err(Error::InvalidZoneName { .. })),
            "{bad:?}"
        );
    }
}
