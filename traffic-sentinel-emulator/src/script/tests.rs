//! Tests of the script reader and of the answers to what it reads.

use std::net::IpAddr;

use time::macros::{datetime, offset};
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset};
use usage_model::Grid;

use super::lexer::string_content_len;
use super::query::{parse_ip, parse_ipv4};
use super::{MAX_TOP_N, Script, parse_script};
use crate::answer_writer::Line;
use crate::error::Error;
use crate::evaluate::{answer_script, evaluate};
use crate::flows::Flow;
use crate::history::FlowHistory;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn flow(time: OffsetDateTime, src: &str, dst: &str, sz: &str, dz: &str, bytes: u64) -> Flow {
    Flow {
        time,
        ipsource: ip(src),
        ipdestination: ip(dst),
        sourcezone: sz.into(),
        destinationzone: dz.into(),
        bytes,
    }
}

fn client_pair(side: char, tag: u32, filter: &str, interval: &str, n: u64) -> String {
    let field = if side == 's' {
        "ipsource"
    } else {
        "ipdestination"
    };
    format!(
        "q = Query.topN(\"historytrmx\", \"{field},bytes\", \"{filter}\", \"{interval}\", \"bytes\", {n});\n\
         q.run(function(row, table) {{ if (row[0]) {{ println(\"{side},{tag},\" + row[0] + \",\" + row[1]); n++; }} }});\n"
    )
}

fn client_script(pairs: &[String]) -> String {
    format!(
        "var n = 0;\nvar q;\n{}println(\"end,\" + n);\n",
        pairs.concat()
    )
}

/// CloudStack's `getScript` for the addresses, zones and local times
/// given as text (times as `yyyyMMdd HH:mm:ss` at UTC).
fn cloudstack_script(ips: &str, incl: &str, excl: &str, start: &str, end: &str) -> String {
    let ips: Vec<IpAddr> = ips.split(',').map(|ip| ip.parse().unwrap()).collect();
    let (incl, excl): (Vec<&str>, Vec<&str>) = (
        incl.split(',').filter(|z| !z.is_empty()).collect(),
        excl.split(',').filter(|z| !z.is_empty()).collect(),
    );
    let format = time::macros::format_description!("[year][month][day] [hour]:[minute]:[second]");
    let at = |t: &str| PrimitiveDateTime::parse(t, &format).unwrap().assume_utc();
    crate::cloudstack_script::cloudstack_script(
        &ips,
        &incl,
        &excl,
        at(start),
        at(end),
        UtcOffset::UTC,
    )
}

const A: &str = "203.0.113.7";
const B: &str = "2001:db8::1";
const C: &str = "198.51.100.9";
const PEER: &str = "192.0.2.1";

fn history() -> FlowHistory {
    let t = datetime!(2026-11-01 10:00 UTC);
    FlowHistory::new(
        Grid::MINUTELY,
        [
            flow(t, A, PEER, "INTERNAL", "EXTERNAL", 100),
            flow(t + Duration::minutes(5), A, PEER, "INTERNAL", "PEERING", 10),
            flow(t, A, PEER, "INTERNAL", "INTERNAL", 1),
            flow(t, PEER, A, "EXTERNAL", "INTERNAL", 40),
            flow(t, B, PEER, "INTERNAL", "EXTERNAL", 300),
            flow(t, PEER, C, "EXTERNAL", "INTERNAL", 70), // C only receives
            flow(
                datetime!(2026-11-01 11:00 UTC),
                A,
                PEER,
                "",
                "EXTERNAL",
                5000,
            ), // END bucket
        ],
    )
    .unwrap()
}

const HOUR: &str = "20261101 10:00:00, 20261101 11:00:00";

fn answer(script: &str) -> Result<String, Error> {
    answer_script(&history(), script, UtcOffset::UTC)
}

#[test]
fn client_script_rows_in_statement_order_then_end() {
    let ips = format!("{A},{B},{C}");
    let script = client_script(&[
        client_pair(
            's',
            7,
            &format!(
                "ipsource = {ips} & destinationzone = EXTERNAL,PEERING & destinationzone != INTERNAL"
            ),
            HOUR,
            3,
        ),
        client_pair(
            'r',
            7,
            &format!(
                "ipdestination = {ips} & sourcezone = EXTERNAL,PEERING & sourcezone != INTERNAL"
            ),
            HOUR,
            3,
        ),
    ]);
    assert_eq!(
        answer(&script).unwrap(),
        format!("s,7,{B},300\ns,7,{A},110\nr,7,{C},70\nr,7,{A},40\nend,4\n")
    );
}

#[test]
fn zone_filters_include_exclude_and_omitted() {
    let run =
        |filter: &str| answer(&client_script(&[client_pair('s', 1, filter, HOUR, 5)])).unwrap();
    assert_eq!(
        run(&format!("ipsource = {A}")),
        format!("s,1,{A},111\nend,1\n")
    );
    assert_eq!(
        run(&format!("ipsource = {A} & destinationzone = EXTERNAL")),
        format!("s,1,{A},100\nend,1\n")
    );
    assert_eq!(
        run(&format!(
            "ipsource = {A} & destinationzone != EXTERNAL,PEERING"
        )),
        format!("s,1,{A},1\nend,1\n")
    );
    assert_eq!(
        run(&format!("ipsource = {A} & destinationzone = NONE")),
        "end,0\n"
    );
}

#[test]
fn n_cuts_off_and_ties_sort_by_address() {
    let t = datetime!(2026-11-01 10:00 UTC);
    let h = FlowHistory::new(
        Grid::MINUTELY,
        [
            flow(t, "10.0.0.3", PEER, "", "", 5),
            flow(t, "10.0.0.1", PEER, "", "", 5),
            flow(t, "10.0.0.2", PEER, "", "", 9),
        ],
    )
    .unwrap();
    let script = |n| {
        client_script(&[client_pair(
            's',
            0,
            "ipsource = 10.0.0.3,10.0.0.1,10.0.0.2,10.0.0.4",
            HOUR,
            n,
        )])
    };
    assert_eq!(
        answer_script(&h, &script(10), UtcOffset::UTC).unwrap(),
        "s,0,10.0.0.2,9\ns,0,10.0.0.1,5\ns,0,10.0.0.3,5\nend,3\n"
    );
    assert_eq!(
        answer_script(&h, &script(2), UtcOffset::UTC).unwrap(),
        "s,0,10.0.0.2,9\ns,0,10.0.0.1,5\nend,2\n"
    );
    assert_eq!(
        answer_script(&h, &script(0), UtcOffset::UTC).unwrap(),
        "end,0\n"
    );
}

#[test]
fn interval_is_read_in_the_server_offset() {
    // 15:30 at +05:30 is 10:00 UTC.
    let local = "20261101 15:30:00, 20261101 16:30:00";
    let script = client_script(&[client_pair('s', 3, &format!("ipsource = {A}"), local, 1)]);
    let h = history();
    assert_eq!(
        answer_script(&h, &script, offset!(+05:30)).unwrap(),
        format!("s,3,{A},111\nend,1\n")
    );
    assert_eq!(
        answer_script(&h, &script, UtcOffset::UTC).unwrap(),
        "end,0\n"
    );
    // And the END bucket (11:00 UTC = 16:30 local) is excluded while 16:31 includes it.
    let longer = "20261101 15:30:00, 20261101 16:31:00";
    let script = client_script(&[client_pair('s', 3, &format!("ipsource = {A}"), longer, 1)]);
    assert_eq!(
        answer_script(&h, &script, offset!(+05:30)).unwrap(),
        format!("s,3,{A},5111\nend,1\n")
    );
}

#[test]
fn tolerates_whitespace_between_tokens() {
    let script = format!(
        "\n  var   n=0 ;var q\n;\tq=Query . topN ( \"historytrmx\" ,\"ipsource , bytes\",\n\
         \"  ipsource=  {A} ,{B}&destinationzone=EXTERNAL , PEERING  &  destinationzone!=INTERNAL \",\
         \"20261101   10:00:00 ,20261101 11:00:00\" , \"bytes\" ,\n 007 ) ; q.run(function(row,table){{if(row[0]){{println(\"s,007,\"+row[0]+\",\"+row[1]);n++;}}}});\
         println ( \"end,\" + n ) ;\n\n"
    );
    assert_eq!(
        answer(&script).unwrap(),
        format!("s,007,{B},300\ns,007,{A},110\nend,2\n")
    );
}

#[test]
fn empty_client_script_prints_only_the_sentinel() {
    assert_eq!(answer(&client_script(&[])).unwrap(), "end,0\n");
}

#[test]
fn cloudstack_script_prints_sent_addresses_only() {
    let script = cloudstack_script(
        &format!("{A},{B},{C}"),
        "EXTERNAL,PEERING",
        "",
        "20261101 10:00:00",
        "20261101 11:00:00",
    );
    // A sent 110 and received 40; B sent 300 and received nothing (TR stays 0);
    // C only received, so the loop over totalsSent never prints it.
    assert_eq!(answer(&script).unwrap(), format!("{B},300,0\n{A},110,40\n"));
    let with_excl = cloudstack_script(
        A,
        "EXTERNAL,PEERING",
        "PEERING",
        "20261101 10:00:00",
        "20261101 11:00:00",
    );
    assert_eq!(answer(&with_excl).unwrap(), format!("{A},100,40\n"));
    let no_zones = cloudstack_script(A, "", "", "20261101 10:00:00", "20261101 11:00:00");
    assert_eq!(answer(&no_zones).unwrap(), format!("{A},111,40\n"));
    let nothing = cloudstack_script(C, "EXTERNAL", "", "20261101 10:00:00", "20261101 11:00:00");
    assert_eq!(answer(&nothing).unwrap(), "");
}

#[test]
fn cloudstack_script_with_newlines_is_accepted() {
    let script = cloudstack_script(A, "EXTERNAL", "", "20261101 10:00:00", "20261101 11:00:00")
        .replace(';', ";\n");
    assert_eq!(answer(&script).unwrap(), format!("{A},100,40\n"));
}

fn error_of(script: &str) -> (usize, usize, String) {
    match answer(script).unwrap_err() {
        Error::Script {
            line,
            column,
            message,
        } => (line, column, message),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn unknown_scripts_are_refused_with_position() {
    let (line, column, message) = error_of("println('hello');");
    assert_eq!((line, column), (1, 1));
    assert!(message.contains("expected `var`"), "{message}");

    let (_, _, message) = error_of("var x = 1;");
    assert!(message.contains("client script"), "{message}");

    let (line, _, message) = error_of("var n = 0;\nvar q;\nq = Query.topM(\"historytrmx\"");
    assert_eq!(line, 3);
    assert!(
        message.contains("expected `topN`, found \"topM"),
        "{message}"
    );

    let (_, _, message) = error_of("");
    assert!(message.contains("end of script"), "{message}");

    let good = client_script(&[client_pair('s', 1, &format!("ipsource = {A}"), HOUR, 1)]);
    let (_, _, message) = error_of(&format!("{good}println(1);"));
    assert!(
        message.contains("expected the end of the script"),
        "{message}"
    );
}

#[test]
fn bad_values_are_refused() {
    let cases: Vec<(String, &str)> = vec![
        (
            client_pair('s', 1, "ipsource = 10.0.0.300", HOUR, 1),
            "invalid ip address \"10.0.0.300\"",
        ),
        (
            client_pair('s', 1, "ipsource = ", HOUR, 1),
            "expected an ip address",
        ),
        (
            client_pair('s', 1, "ipdestination = 10.0.0.1", HOUR, 1),
            "expected `ipsource`",
        ),
        (
            client_pair('s', 1, "ipsource = 10.0.0.1 & sourcezone = A", HOUR, 1),
            "expected `destinationzone`",
        ),
        (
            client_pair(
                's',
                1,
                "ipsource = 10.0.0.1 & destinationzone = A\\\"",
                HOUR,
                1,
            ),
            "closing",
        ),
        (
            client_pair(
                's',
                1,
                "ipsource = 10.0.0.1 & destinationzone = 'x'",
                HOUR,
                1,
            ),
            "expected a zone name",
        ),
        (
            client_pair(
                's',
                1,
                "ipsource = 10.0.0.1 & destinationzone != A & destinationzone = B",
                HOUR,
                1,
            ),
            "at most once",
        ),
        (
            client_pair(
                's',
                1,
                "ipsource = 10.0.0.1 & destinationzone != A & destinationzone != B",
                HOUR,
                1,
            ),
            "given twice",
        ),
        (
            client_pair('s', 1, "ipsource = 10.0.0.1; drop", HOUR, 1),
            "expected `,`, `&` or the end of the filter",
        ),
        (
            client_pair(
                's',
                1,
                "ipsource = 10.0.0.1",
                "20261301 10:00:00, 20261101 11:00:00",
                1,
            ),
            "invalid date or time \"20261301 10:00:00\"",
        ),
        (
            client_pair(
                's',
                1,
                "ipsource = 10.0.0.1",
                "20261101 24:00:00, 20261101 11:00:00",
                1,
            ),
            "invalid date or time",
        ),
        (
            client_pair('s', 1, "ipsource = 10.0.0.1", "end - 5 minutes, end", 1),
            "expected a time",
        ),
        (
            client_pair(
                's',
                1,
                "ipsource = 10.0.0.1",
                "20261101 12:00:00, 20261101 11:00:00",
                1,
            ),
            "starts after it ends",
        ),
        (
            client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, MAX_TOP_N + 1),
            "above the limit",
        ),
        (
            client_pair('r', 1, "ipsource = 10.0.0.1", HOUR, 1)
                .replace("ipdestination,", "ipsource,"),
            "does not match the ipsource query",
        ),
        (
            client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, 1).replace("s,1,", "s,4294967296,"),
            "decimal u32 TAG",
        ),
        (
            client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, 1).replace("s,1,", "s,-1,"),
            "decimal u32 TAG",
        ),
        (
            client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, 1).replace("historytrmx", "history"),
            "expected the string \"historytrmx\"",
        ),
    ];
    for (pair, want) in cases {
        let script = client_script(&[pair]);
        let (line, _, message) = error_of(&script);
        assert!(message.contains(want), "want {want:?} in {message:?}");
        assert!(line >= 3, "{message}");
    }
    // N larger than u64.
    let pair = client_pair('s', 1, "ipsource = 10.0.0.1", HOUR, 1)
        .replace(", 1);", ", 99999999999999999999999);");
    assert!(
        error_of(&client_script(&[pair]))
            .2
            .contains("above the limit")
    );
}

#[test]
fn cloudstack_shape_variations_are_refused() {
    let good = cloudstack_script(A, "EXTERNAL", "", "20261101 10:00:00", "20261101 11:00:00");
    assert!(answer(&good).is_ok());
    let swapped = good.replacen(
        "for (var addr in totalsSent)",
        "for (var addr in totalsRcvd)",
        1,
    );
    assert!(error_of(&swapped).2.contains("expected `totalsSent`"));
    let received_first = good.replacen("\"ipsource,bytes\"", "\"ipdestination,bytes\"", 1);
    assert!(
        error_of(&received_first)
            .2
            .contains("expected \"ipsource,bytes\" in this query")
    );
}

#[test]
fn position_counts_lines_and_characters() {
    let script = "var n = 0;\nvar q;\n  é";
    let err = parse_script(script).unwrap_err();
    match err {
        Error::Script {
            line,
            column,
            message,
        } => {
            assert_eq!((line, column), (3, 3));
            assert!(message.contains("\"é\""), "{message}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn the_ipv4_fast_path_refuses_what_std_refuses() {
    for text in [
        "",
        "1",
        "1.2.3",
        "1.2.3.4.",
        ".1.2.3.4",
        "1..2.3",
        "00.0.0.0",
        "1.2.3.04",
        "1.2.3.00",
        "256.0.0.1",
        "1.2.3.1000",
        "1.2.3.4a",
        "0x1.2.3.4",
        "1.2.3.-4",
        "::1",
        "1.2.3.4:80",
    ] {
        assert_eq!(
            parse_ipv4(text.as_bytes()),
            text.parse::<std::net::Ipv4Addr>().ok(),
            "{text:?}"
        );
        assert_eq!(parse_ip(text), text.parse::<IpAddr>().ok(), "{text:?}");
    }
    assert_eq!(
        parse_ipv4(b"0.10.255.199"),
        Some(std::net::Ipv4Addr::new(0, 10, 255, 199))
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn valid_script() -> String {
        client_script(&[
            client_pair(
                's',
                7,
                &format!(
                    "ipsource = {A},{B} & destinationzone = EXTERNAL,PEERING & destinationzone != INTERNAL"
                ),
                HOUR,
                2,
            ),
            client_pair(
                'r',
                8,
                &format!("ipdestination = {A},{B} & sourcezone = EXTERNAL"),
                HOUR,
                2,
            ),
        ])
    }

    fn check(history: &FlowHistory, script: &str) -> Result<(), TestCaseError> {
        match answer_script(history, script, offset!(-03:00)) {
            Ok(answer) => prop_assert!(answer.ends_with('\n') || answer.is_empty()),
            Err(Error::Script {
                line,
                column,
                message,
            }) => {
                prop_assert!(line >= 1 && line <= script.matches('\n').count() + 1);
                prop_assert!(column >= 1);
                prop_assert!(!message.is_empty() && !message.contains('\n'));
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn random_text_never_panics(script in "\\PC{0,300}") {
            check(&history(), &script)?;
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let script = String::from_utf8_lossy(&bytes);
            check(&history(), &script)?;
        }

        #[test]
        fn mutated_valid_scripts_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..4),
            cloudstack in any::<bool>(),
        ) {
            let mut script: Vec<char> = if cloudstack {
                cloudstack_script(&format!("{A},{B}"), "EXTERNAL", "INTERNAL", "20261101 10:00:00", "20261101 11:00:00")
            } else {
                valid_script()
            }
            .chars()
            .collect();
            for (index, op, c) in edits {
                let at = index.index(script.len() + 1);
                match op {
                    0 => script.insert(at, c),
                    1 if at < script.len() => { script.remove(at); }
                    _ if at < script.len() => script[at] = c,
                    _ => script.push(c),
                }
            }
            let script: String = script.into_iter().collect();
            check(&history(), &script)?;
        }

        #[test]
        fn truncated_valid_scripts_are_refused(cut in 0usize..1000) {
            let script = valid_script();
            let cut = cut % script.len();
            // Cutting inside the final statement always leaves it incomplete.
            prop_assume!(cut < script.trim_end().len() - 1);
            let truncated = &script[..cut];
            prop_assert!(parse_script(truncated).is_err());
        }
    }

    /// Text made of the bytes an address may be written with, often
    /// shaped like a dotted quad.
    fn address_like() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9.]{0,20}",
            "[0-9a-fA-F:.]{0,45}",
            (
                proptest::collection::vec((0u32..1000, 0usize..3), 1..6),
                any::<bool>()
            )
                .prop_map(|(parts, trailing_dot)| {
                    let mut text = parts
                        .iter()
                        .map(|&(n, zeros)| format!("{}{n}", "0".repeat(zeros)))
                        .collect::<Vec<_>>()
                        .join(".");
                    if trailing_dot {
                        text.push('.');
                    }
                    text
                }),
            any::<std::net::Ipv4Addr>().prop_map(|ip| ip.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|ip| ip.to_string()),
        ]
    }

    /// The rows `evaluate` must print for a client script, by `format!`.
    fn formatted_client_answer(history: &FlowHistory, script: &Script) -> String {
        let Script::Client(queries) = script else {
            panic!("a client script")
        };
        let mut out = String::new();
        let mut count = 0;
        for (q, prefix) in queries {
            let rows = history.top_n(
                &q.ips,
                q.side,
                &q.zones,
                q.start.assume_utc(),
                q.end.assume_utc(),
                q.n,
            );
            for (ip, bytes) in rows {
                out += &format!("{prefix}{ip},{bytes}\n");
                count += 1;
            }
        }
        out + &format!("end,{count}\n")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn the_ipv4_fast_path_agrees_with_std(text in address_like()) {
            let fast = parse_ipv4(text.as_bytes());
            prop_assert_eq!(fast, text.parse::<std::net::Ipv4Addr>().ok(), "{:?}", text);
            prop_assert_eq!(parse_ip(&text), text.parse::<IpAddr>().ok(), "{:?}", text);
        }

        #[test]
        fn lines_print_as_display(n in any::<u64>(), small in 0u64..1000, ip in any::<IpAddr>()) {
            let mut line = Line::new();
            line.ip(ip);
            line.byte(b',');
            line.number(n);
            line.byte(b',');
            line.number(small);
            prop_assert_eq!(
                std::str::from_utf8(line.as_bytes()).unwrap(),
                format!("{ip},{n},{small}")
            );
        }

        #[test]
        fn string_content_ends_at_the_first_stop_byte(
            text in "[a-z\"\\\\\r\né, ]{0,40}",
            pad in 0usize..17,
        ) {
            let text = format!("{}{text}", "x".repeat(pad));
            let naive = text
                .find(['"', '\\', '\n', '\r'])
                .unwrap_or(text.len());
            prop_assert_eq!(string_content_len(text.as_bytes()), naive);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn answers_print_rows_as_display(
            queries in proptest::collection::vec(
                (
                    any::<bool>(),
                    0u32..40,
                    0usize..30,
                    proptest::collection::vec(prop_oneof![
                        Just(A), Just(B), Just(C), Just(PEER), Just("10.0.0.1"), Just("::ffff:1.2.3.4")
                    ], 1..6),
                    0u64..6,
                ),
                0..5,
            ),
        ) {
            let h = history();
            let pairs: Vec<String> = queries
                .iter()
                .map(|(sent, tag, zeros, ips, n)| {
                    let side = if *sent { 's' } else { 'r' };
                    let field = if *sent { "ipsource" } else { "ipdestination" };
                    client_pair(side, 0, &format!("{field} = {}", ips.join(",")), HOUR, *n)
                        .replace(&format!("{side},0,"), &format!("{side},{}{tag},", "0".repeat(*zeros)))
                })
                .collect();
            let script = client_script(&pairs);
            let parsed = parse_script(&script).unwrap();
            prop_assert_eq!(
                evaluate(&h, &parsed, &usage_model::ServerTimeZone::UTC).unwrap(),
                formatted_client_answer(&h, &parsed)
            );
        }
    }
}
