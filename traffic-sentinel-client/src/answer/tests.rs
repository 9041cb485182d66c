//! Tests of the answer parser.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proptest::prelude::*;
use time::macros::datetime;
use usage_model::{TimeInterval, TrafficQuery};

use super::line::{Line, MAX_CONTENT_CHARS, dotted_quad, parse_ip, parse_line};
use super::*;
use crate::{MonitorConfig, plan_requests};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A request for tag 7 over three addresses and tag 8 over one.
fn request() -> ScriptRequest {
    let config = MonitorConfig::builder("http://10.0.0.1:8080")
        .build()
        .unwrap();
    let interval = TimeInterval::new(
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 11:00 UTC),
    )
    .unwrap();
    let queries = [
        TrafficQuery {
            tag: QueryTag(7),
            interval,
            ips: vec![ip("203.0.113.7"), ip("2001:db8::1"), ip("198.51.100.1")],
        },
        TrafficQuery {
            tag: QueryTag(8),
            interval,
            ips: vec![ip("203.0.113.7")],
        },
    ];
    plan_requests(&config, &queries).unwrap().remove(0)
}

#[test]
fn parses_rows_into_counts() {
    let body =
        "s,7,203.0.113.7,1200\nr,7,203.0.113.7,300\nr,7,2001:db8::1,80\ns,8,203.0.113.7,5\nend,4\n";
    let answer = parse_answer(body, &request()).unwrap();
    assert_eq!(answer.len(), 3);
    assert_eq!(
        answer.get(QueryTag(7), ip("203.0.113.7")),
        Some(ByteCounts {
            sent: 1200,
            received: 300
        })
    );
    // Received only: present with sent = 0.
    assert_eq!(
        answer.get(QueryTag(7), ip("2001:db8::1")),
        Some(ByteCounts {
            sent: 0,
            received: 80
        })
    );
    assert_eq!(
        answer.get(QueryTag(8), ip("203.0.113.7")),
        Some(ByteCounts {
            sent: 5,
            received: 0
        })
    );
    assert_eq!(answer.get(QueryTag(7), ip("198.51.100.1")), None);
}

#[test]
fn accepts_crlf_and_a_sentinel_without_newline() {
    let request = request();
    for body in [
        "s,7,203.0.113.7,1\r\nend,1\r\n",
        "s,7,203.0.113.7,1\nend,1",
        "s,7,203.0.113.7,1\r\nend,1",
    ] {
        let answer = parse_answer(body, &request).unwrap();
        assert_eq!(
            answer.get(QueryTag(7), ip("203.0.113.7")),
            Some(ByteCounts {
                sent: 1,
                received: 0
            })
        );
    }
    assert!(parse_answer("end,0\n", &request).unwrap().is_empty());
    assert!(parse_answer("end,0", &request).unwrap().is_empty());
}

#[test]
fn rows_keep_their_line_numbers() {
    let rows =
        parse_answer_rows("r,1,::1,0\ns,4294967295,1.2.3.4,18446744073709551615\nend,2\n").unwrap();
    assert_eq!(
        rows,
        vec![
            AnswerRow {
                line: 1,
                side: Side::Received,
                tag: QueryTag(1),
                ip: ip("::1"),
                bytes: 0
            },
            AnswerRow {
                line: 2,
                side: Side::Sent,
                tag: QueryTag(u32::MAX),
                ip: ip("1.2.3.4"),
                bytes: u64::MAX
            },
        ]
    );
}

/// Every way an answer can be wrong, with the line and reason expected.
#[test]
fn malformed_answers_name_line_and_content() {
    let long = format!("s,7,{},1", "x".repeat(500));
    let cases: Vec<(String, usize, &str, &str)> = vec![
        (
            "x,7,203.0.113.7,1\nend,1\n".into(),
            1,
            "x,7,203.0.113.7,1",
            "unknown row kind \"x\"",
        ),
        (
            "S,7,203.0.113.7,1\nend,1\n".into(),
            1,
            "S,7,203.0.113.7,1",
            "unknown row kind",
        ),
        (
            "s,9,203.0.113.7,1\nend,1\n".into(),
            1,
            "s,9,203.0.113.7,1",
            "tag 9 is not a query of this request",
        ),
        (
            "s,8,2001:db8::1,1\nend,1\n".into(),
            1,
            "s,8,2001:db8::1,1",
            "ip 2001:db8::1 was not asked for under tag 8",
        ),
        (
            "s,7,203.0.113.7,1\ns,7,203.0.113.300,1\nend,2\n".into(),
            2,
            "s,7,203.0.113.300,1",
            "bad ip address \"203.0.113.300\"",
        ),
        (
            "s,7,fe80::1%eth0,1\nend,1\n".into(),
            1,
            "s,7,fe80::1%eth0,1",
            "bad ip address",
        ),
        ("s,7,,1\nend,1\n".into(), 1, "s,7,,1", "bad ip address \"\""),
        (
            "s,7,203.0.113.7,-5\nend,1\n".into(),
            1,
            "s,7,203.0.113.7,-5",
            "byte count \"-5\" is negative",
        ),
        (
            "s,7,203.0.113.7,1.5\nend,1\n".into(),
            1,
            "s,7,203.0.113.7,1.5",
            "byte count \"1.5\" is not a non-negative decimal integer",
        ),
        (
            "s,7,203.0.113.7,+5\nend,1\n".into(),
            1,
            "s,7,203.0.113.7,+5",
            "not a non-negative decimal integer",
        ),
        (
            "s,7,203.0.113.7, 5\nend,1\n".into(),
            1,
            "s,7,203.0.113.7, 5",
            "not a non-negative decimal integer",
        ),
        (
            "s,7,203.0.113.7,\nend,1\n".into(),
            1,
            "s,7,203.0.113.7,",
            "not a non-negative decimal integer",
        ),
        (
            "s,7,203.0.113.7,1e3\nend,1\n".into(),
            1,
            "s,7,203.0.113.7,1e3",
            "not a non-negative decimal integer",
        ),
        (
            "s,7,203.0.113.7,18446744073709551616\nend,1\n".into(),
            1,
            "s,7,203.0.113.7,18446744073709551616",
            "byte count \"18446744073709551616\" is too large",
        ),
        (
            "s,4294967296,203.0.113.7,1\nend,1\n".into(),
            1,
            "s,4294967296,203.0.113.7,1",
            "tag \"4294967296\" is too large",
        ),
        (
            "s,-7,203.0.113.7,1\nend,1\n".into(),
            1,
            "s,-7,203.0.113.7,1",
            "tag \"-7\" is negative",
        ),
        (
            "s,seven,203.0.113.7,1\nend,1\n".into(),
            1,
            "s,seven,203.0.113.7,1",
            "tag \"seven\" is not",
        ),
        (
            "s,7,203.0.113.7\nend,1\n".into(),
            1,
            "s,7,203.0.113.7",
            "expected 4 comma-separated fields (side,tag,ip,bytes), found 3",
        ),
        (
            "s,7,203.0.113.7,1,2\nend,1\n".into(),
            1,
            "s,7,203.0.113.7,1,2",
            "found 5",
        ),
        (
            "s,7,203.0.113.7,1\ns,7,203.0.113.7,2\nend,2\n".into(),
            2,
            "s,7,203.0.113.7,2",
            "duplicate row: s of ip 203.0.113.7 under tag 7",
        ),
        ("s,7,203.0.113.7,1\n\nend,1\n".into(), 2, "", "empty line"),
        (
            "s,7,203.0.113.7,1\nend,1\ns,7,2001:db8::1,1\n".into(),
            3,
            "s,7,2001:db8::1,1",
            "line after the sentinel on line 2",
        ),
        (
            "s,7,203.0.113.7,1\nend,1\n\n".into(),
            3,
            "",
            "line after the sentinel",
        ),
        (
            "s,7,203.0.113.7,1\nend,1\nend,1\n".into(),
            3,
            "end,1",
            "line after the sentinel",
        ),
        (
            "s,7,203.0.113.7,1\nend,2\n".into(),
            2,
            "end,2",
            "sentinel counts 2 row(s) but 1 came before it",
        ),
        (
            "end,0,1\n".into(),
            1,
            "end,0,1",
            "sentinel must be `end,COUNT`, found 3 field(s)",
        ),
        (
            "end,x\n".into(),
            1,
            "end,x",
            "sentinel count \"x\" is not a non-negative decimal integer",
        ),
        ("end\n".into(), 1, "end", "found 1 field(s)"),
        (
            "<html><body>Login</body></html>\n".into(),
            1,
            "<html><body>Login</body></html>",
            "answer is html, not txt",
        ),
        (
            "  \n<!DOCTYPE html>\n<html>".into(),
            1,
            "  ",
            "answer is html, not txt",
        ),
        (
            "hello world\nend,0\n".into(),
            1,
            "hello world",
            "unknown row kind \"hello world\"",
        ),
        (format!("{long}\nend,1\n"), 1, "*", "bad ip address"),
    ];
    let request = request();
    for (body, line, content, reason) in cases {
        match parse_answer(&body, &request) {
            Err(Error::Malformed {
                line: l,
                content: c,
                reason: r,
            }) => {
                assert_eq!(l, line, "{body:?}");
                if content != "*" {
                    assert_eq!(c, content, "{body:?}");
                }
                assert!(r.contains(reason), "{body:?}: {r}");
                let message = Error::Malformed {
                    line: l,
                    content: c,
                    reason: r,
                }
                .to_string();
                assert!(
                    message.starts_with(&format!("malformed answer at line {line}: ")),
                    "{message}"
                );
            }
            other => panic!("{body:?}: expected malformed, got {other:?}"),
        }
    }
}

#[test]
fn long_lines_are_cut_in_errors() {
    let body = format!("s,7,{},1\nend,1\n", "é".repeat(1000));
    match parse_answer(&body, &request()) {
        Err(Error::Malformed { content, .. }) => {
            assert_eq!(content.chars().count(), MAX_CONTENT_CHARS + 1);
            assert!(content.starts_with("s,7,éé"));
            assert!(content.ends_with('…'));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn non_utf8_content_is_shown_lossily() {
    match parse_answer(b"s,7,\xff\xfe,1\nend,1\n", &request()) {
        Err(Error::Malformed {
            line: 1,
            content,
            reason,
        }) => {
            assert_eq!(content, "s,7,\u{fffd}\u{fffd},1");
            assert!(reason.contains("bad ip address"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_sentinel_is_truncated() {
    let request = request();
    let cases = [
        ("s,7,203.0.113.7,1\nr,7,203.0.113.7,2\n", 2),
        ("s,7,203.0.113.7,1\nr,7,203.0.113.7,2", 1),
        ("s,7,203.0.113.7,1\nr,7,203.0.1", 1),
        ("s,7,203.0.113.7,1\nen", 1),
        ("s,7,203.0.113.7,1\r\n", 1),
        ("s,7,203.0", 0),
    ];
    for (body, rows_seen) in cases {
        match parse_answer(body, &request) {
            Err(Error::Truncated { rows_seen: seen }) => {
                assert_eq!(seen, rows_seen, "{body:?}")
            }
            other => panic!("{body:?}: expected truncated, got {other:?}"),
        }
    }
    assert_eq!(
        Error::Truncated { rows_seen: 2 }.to_string(),
        "answer truncated: no sentinel line after 2 row(s)"
    );
}

#[test]
fn empty_body_is_its_own_error() {
    assert!(matches!(
        parse_answer("", &request()),
        Err(Error::EmptyAnswer)
    ));
    assert!(matches!(parse_answer_rows(b""), Err(Error::EmptyAnswer)));
    // A lone newline is an empty line, not a missing answer.
    assert!(matches!(
        parse_answer("\n", &request()),
        Err(Error::Malformed { line: 1, .. })
    ));
}

#[test]
fn more_rows_than_n_cannot_pass() {
    // Tag 8 asked one address (N = 1): a second row for it is refused.
    let body = "s,8,203.0.113.7,5\ns,8,2001:db8::1,6\nend,2\n";
    assert!(matches!(
        parse_answer(body, &request()),
        Err(Error::Malformed { line: 2, .. })
    ));
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        any::<u16>().prop_map(|x| IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0xc000, x])),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_answer_rows(&body);
        let _ = parse_answer(&body, &request());
    }

    #[test]
    fn mutated_answers_never_panic(
        position in 0usize..200,
        byte in any::<u8>(),
        cut in 0usize..200,
    ) {
        let mut body = b"s,7,203.0.113.7,1200\nr,7,203.0.113.7,300\nr,7,2001:db8::1,80\ns,8,203.0.113.7,5\nend,4\n".to_vec();
        let len = body.len();
        body[position % len] = byte;
        body.truncate(len - cut % len);
        let _ = parse_answer(&body, &request());
    }

    #[test]
    fn printed_rows_parse_back(
        rows in proptest::collection::btree_map(
            (any::<bool>(), any::<u32>(), any_ip()),
            any::<u64>(),
            0..40,
        ),
        crlf in any::<bool>(),
    ) {
        let ending = if crlf { "\r\n" } else { "\n" };
        let mut body = String::new();
        for ((sent, tag, ip), bytes) in &rows {
            let letter = if *sent { 's' } else { 'r' };
            write!(body, "{letter},{tag},{ip},{bytes}{ending}").unwrap();
        }
        write!(body, "end,{}{ending}", rows.len()).unwrap();
        let parsed = parse_answer_rows(&body).unwrap();
        prop_assert_eq!(parsed.len(), rows.len());
        for (row, ((sent, tag, ip), bytes)) in parsed.iter().zip(&rows) {
            let side = if *sent { Side::Sent } else { Side::Received };
            // Addresses come back canonical: `::ffff:192.0.2.1` is `192.0.2.1`.
            prop_assert_eq!((row.side, row.tag, row.ip, row.bytes), (side, QueryTag(*tag), ip.to_canonical(), *bytes));
        }
    }
}

#[test]
fn a_second_answer_adds_to_the_first_and_names_the_line_of_an_overflow() {
    let request = request();
    let mut answer = parse_answer("s,8,203.0.113.7,5\nend,1\n", &request).unwrap();
    parse_answer_into(
        b"r,7,2001:db8::1,80\ns,8,203.0.113.7,6\nend,2\n",
        &request,
        &mut answer,
    )
    .unwrap();
    assert_eq!(
        answer.get(QueryTag(8), ip("203.0.113.7")),
        Some(ByteCounts {
            sent: 11,
            received: 0
        })
    );
    assert_eq!(answer.len(), 2);

    let mut full = TrafficAnswer::new();
    let most = ByteCounts {
        sent: u64::MAX,
        received: 0,
    };
    full.insert(QueryTag(7), ip("203.0.113.7"), most).unwrap();
    let body = b"s,7,203.0.113.7,1\nr,7,2001:db8::1,5\nr,7,203.0.113.7,2\r\nend,3\n";
    match parse_answer_into(body, &request, &mut full) {
        Err(Error::Malformed {
            line,
            content,
            reason,
        }) => {
            // The line of the pair's last row.
            assert_eq!(line, 3);
            assert_eq!(content, "r,7,203.0.113.7,2");
            assert_eq!(
                reason,
                format!("byte count overflow adding {} and 1", u64::MAX)
            );
        }
        other => panic!("{other:?}"),
    }
}

/// An address as `Display` prints it, or in one of the other forms
/// `FromStr` reads: IPv6 groups in full with leading zeros, upper case.
fn printed_ip() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|x| IpAddr::from(x).to_string()),
        any::<[u16; 8]>().prop_map(|x| IpAddr::from(x).to_string()),
        // Runs of zero groups, so `::` appears in every place.
        (any::<[u16; 8]>(), any::<u8>()).prop_map(|(x, zeros)| IpAddr::from(
            x.map(|g| if zeros & (1 << (g % 8)) != 0 { 0 } else { g })
        )
        .to_string()),
        any::<[u16; 8]>().prop_map(|x| {
            x.iter()
                .map(|g| format!("{g:04X}"))
                .collect::<Vec<_>>()
                .join(":")
        }),
        any::<[u16; 8]>().prop_map(|x| {
            x.iter()
                .map(|g| format!("{g:x}"))
                .collect::<Vec<_>>()
                .join(":")
        }),
    ]
}

/// A printed address with one character inserted, removed or replaced.
fn mutated_ip() -> impl Strategy<Value = String> {
    (
        printed_ip(),
        any::<prop::sample::Index>(),
        0u8..3,
        prop::sample::select(b"0123456789abcdefABCDEFg:.,% -+x".to_vec()),
    )
        .prop_map(|(text, at, edit, byte)| {
            let mut bytes = text.into_bytes();
            let position = at.index(bytes.len() + 1);
            match edit {
                0 => bytes.insert(position, byte),
                1 if position < bytes.len() => {
                    bytes.remove(position);
                }
                _ if position < bytes.len() => bytes[position] = byte,
                _ => bytes.push(byte),
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
}

/// Tricky line fields, well formed or not.
fn line_field(
    valid: impl Strategy<Value = String>,
    tricky: &'static [&'static str],
) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => valid,
        1 => prop::sample::select(tricky).prop_map(str::to_owned),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any line made of such fields: the parser accepts exactly the rows
    /// whose fields std reads (tag as `u32`, address as `IpAddr`, count as
    /// `u64`, each all digits), with the values std reads.
    #[test]
    fn the_line_parser_agrees_with_std(
        side in line_field("[sr]", &["S", "x", "end", "", "s ", "ss"]),
        tag in line_field(any::<u32>().prop_map(|t| t.to_string()), &["0007", "-1", "4294967296", "", "00000000000000000001", "1a", " 1"]),
        address in line_field(prop_oneof![printed_ip(), mutated_ip()], &["", "1.2.3.4 ", "01.2.3.4", "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4.5", "::1::"]),
        bytes in line_field(any::<u64>().prop_map(|b| b.to_string()), &["18446744073709551616", "-5", "+5", " 5", "", "1e3", "000000000000000000001", "99999999999999999999", "1.5"]),
        extra in prop_oneof![4 => Just(""), 1 => Just(",x"), 1 => Just(",")],
    ) {
        let line = format!("{side},{tag},{address},{bytes}{extra}");
        let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        let expected = match side.as_str() {
            "s" | "r" if extra.is_empty() && digits(&tag) && digits(&bytes) => {
                match (tag.parse::<u32>(), address.parse::<IpAddr>(), bytes.parse::<u64>()) {
                    (Ok(tag), Ok(ip), Ok(bytes)) => Some((
                        if side == "s" { Side::Sent } else { Side::Received },
                        QueryTag(tag),
                        ip.to_canonical(),
                        bytes,
                    )),
                    _ => None,
                }
            }
            _ => None,
        };
        // The line, then its address field.
        let parsed = parse_line(&line).and_then(|parsed| match parsed {
            Line::Row { side, tag, ip_text, bytes } => {
                parse_ip(ip_text).map(|ip| (side, tag, ip, bytes))
            }
            Line::Sentinel { .. } => Err("a sentinel".to_owned()),
        });
        match parsed {
            Ok(parsed) => prop_assert_eq!(Some(parsed), expected, "{:?}", line),
            Err(reason) => {
                prop_assert!(expected.is_none(), "{:?} refused: {}", line, reason);
                prop_assert!(!reason.is_empty() && !reason.contains('\n'));
            }
        }
    }
}

/// An address per family and index: `10.0.0.i` or `2001:db8::i`.
fn family_ip(v6: bool, index: u8) -> IpAddr {
    if v6 {
        IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(index)])
    } else {
        IpAddr::from([10, 0, 0, index])
    }
}

/// The addresses of a query: sorted, sorted within each family but
/// interleaved, or in any order.
fn query_ips() -> impl Strategy<Value = Vec<IpAddr>> {
    (
        proptest::collection::btree_set((any::<bool>(), any::<u8>()), 1..24),
        0u8..3,
        any::<u64>(),
    )
        .prop_map(|(keys, order, seed)| {
            let mut ips: Vec<IpAddr> = keys.iter().map(|&(v6, i)| family_ip(v6, i)).collect();
            match order {
                0 => ips.sort_unstable(),
                // `keys` is ordered by index within family already;
                // ordering by index interleaves the families.
                1 => ips.sort_by_key(|ip| match ip {
                    IpAddr::V4(v4) => v4.octets()[3],
                    IpAddr::V6(v6) => v6.octets()[15],
                }),
                _ => {
                    let mut state = seed | 1;
                    for i in (1..ips.len()).rev() {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        ips.swap(i, (state % (i as u64 + 1)) as usize);
                    }
                }
            }
            ips
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any request, any subset of rows in any order: the answer holds
    /// exactly the rows' counts, in (tag, ip) order.
    #[test]
    fn answers_hold_exactly_their_rows(
        queries in proptest::collection::btree_map(0u32..40, query_ips(), 1..6),
        picks in proptest::collection::vec((any::<bool>(), any::<bool>(), any::<u64>()), 300),
        order_seed in any::<u64>(),
        per_query in 1usize..30,
    ) {
        let interval = TimeInterval::new(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
        )
        .unwrap();
        // Queries in descending tag order: not the order of the answer.
        let queries: Vec<TrafficQuery> = queries
            .iter()
            .rev()
            .map(|(&tag, ips)| TrafficQuery { tag: QueryTag(tag), interval, ips: ips.clone() })
            .collect();
        let config = MonitorConfig::builder("http://10.0.0.1:8080")
            .max_script_bytes(usize::MAX)
            .max_ips_per_query(per_query)
            .build()
            .unwrap();
        let request = plan_requests(&config, &queries).unwrap().remove(0);
        // The tags, in order, list every pair once, in ascending (tag, ip) order.
        let mut tags = RequestTags::new(&request);
        tags.tags.sort_unstable_by_key(|tag| tag.tag);
        let mut ordered = Vec::new();
        for tag in &tags.tags {
            let mut order = Vec::new();
            push_in_address_order(&tag.ips, &mut order);
            ordered.extend(order.iter().map(|&at| (tag.tag, tag.ips[at as usize])));
        }
        prop_assert!(ordered.is_sorted_by(|a, b| a < b));
        prop_assert_eq!(ordered.len(), request.ip_count());
        let mut rows = Vec::new();
        let mut expected = BTreeMap::new();
        let pairs = queries.iter().flat_map(|q| q.ips.iter().map(move |&ip| (q.tag, ip)));
        for ((tag, ip), &(sent, received, bytes)) in pairs.zip(&picks) {
            let mut counts = ByteCounts::ZERO;
            if sent {
                rows.push(format!("s,{tag},{ip},{bytes}"));
                counts.sent = bytes;
            }
            if received {
                rows.push(format!("r,{tag},{ip},{}", bytes / 3));
                counts.received = bytes / 3;
            }
            if sent || received {
                expected.insert((tag, ip), counts);
            }
        }
        let mut state = order_seed | 1;
        for i in (1..rows.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            rows.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let body = format!("{}end,{}\n", rows.iter().map(|r| format!("{r}\n")).collect::<String>(), rows.len());
        let answer = parse_answer(&body, &request).unwrap();
        let got: Vec<_> = answer.iter().collect();
        let want: Vec<_> = expected.iter().map(|(&(tag, ip), &c)| (tag, ip, c)).collect();
        prop_assert_eq!(got, want);

        // The same rows added to an answer that holds other pairs.
        let mut added = TrafficAnswer::new();
        added.insert(QueryTag(1000), ip("192.0.2.1"), ByteCounts::ZERO).unwrap();
        parse_answer_into(body.as_bytes(), &request, &mut added).unwrap();
        prop_assert_eq!(added.len(), expected.len() + 1);
        for (&(tag, ip), &counts) in &expected {
            prop_assert_eq!(added.get(tag, ip), Some(counts));
        }
    }
}

/// Text near a dotted quad: octets of one to four digits (leading zeros
/// too), three to five of them, with now and then a stray character.
fn near_dotted_quad() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|x| std::net::Ipv4Addr::from(x).to_string()),
        proptest::collection::vec("[0-9]{1,4}", 3..=5).prop_map(|octets| octets.join(".")),
        "[0-9.]{0,17}",
        "[0-9. +x:-]{0,17}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// The dotted-quad path accepts only what `Ipv4Addr::from_str` accepts,
    /// with the same value.
    #[test]
    fn the_dotted_quad_path_agrees_with_std(text in prop_oneof![near_dotted_quad(), mutated_ip()]) {
        if let Some(quad) = dotted_quad(text.as_bytes()) {
            prop_assert_eq!(Ok(quad), text.parse::<std::net::Ipv4Addr>(), "{:?}", text);
        }
        prop_assert_eq!(
            parse_ip(&text).ok(),
            text.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()),
            "{:?}",
            text
        );
    }
}

#[test]
fn the_dotted_quad_path_takes_the_common_form_only() {
    for (text, taken) in [
        ("203.0.113.7", true),
        ("0.0.0.0", true),
        ("255.255.255.255", true),
        ("256.0.0.1", false),
        ("01.2.3.4", false),
        ("1.2.3", false),
        ("1.2.3.4.5", false),
        ("1..3.4", false),
        ("::ffff:1.2.3.4", false),
        ("1.2.3.4 ", false),
    ] {
        assert_eq!(dotted_quad(text.as_bytes()).is_some(), taken, "{text}");
    }
}
