//! Hostile input at the emulator's entry points: zone names that try to
//! change a script, zone names in the flows file, and random or mutated
//! request bodies over HTTP. Each is refused with a clear message; nothing
//! panics and the server keeps serving.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration as StdDuration;

use proptest::prelude::*;
use time::UtcOffset;
use time::macros::datetime;
use traffic_sentinel_emulator::{
    Emulator, EmulatorOptions, Error, FLOWS_HEADER, Flow, FlowHistory, answer_script, read_flows,
};

const GUEST: &str = "203.0.113.7";

/// Strings that would change a script's meaning if spliced into it unchecked.
const INJECTIONS: [&str; 9] = [
    "EXTERNAL\"); println(\"x",
    "EXTERNAL\"",
    "EXTERNAL & ipsource = 1.2.3.4",
    "EXTERNAL\nprintln(\"x\");",
    "EXTERNAL'",
    "EXTERNAL\\",
    "EXTÉRNAL",
    "EXTERNAL; n = 1000",
    "EXTERNAL)",
];

fn history() -> FlowHistory {
    let flow = Flow {
        time: datetime!(2026-11-01 10:15 UTC),
        ipsource: GUEST.parse().unwrap(),
        ipdestination: "198.51.100.1".parse().unwrap(),
        sourcezone: "INTERNAL".into(),
        destinationzone: "EXTERNAL".into(),
        bytes: 1_500,
    };
    FlowHistory::new(usage_model::Grid::MINUTELY, [flow]).unwrap()
}

/// The client's script with `zones` spliced in as the include list.
fn script_with_zones(zones: &str) -> String {
    format!(
        "var n = 0;\nvar q;\n\
         q = Query.topN(\"historytrmx\", \"ipsource,bytes\", \"ipsource = {GUEST} & destinationzone = {zones}\", \"20261101 10:00:00, 20261101 11:00:00\", \"bytes\", 1);\n\
         q.run(function(row, table) {{ if (row[0]) {{ println(\"s,7,\" + row[0] + \",\" + row[1]); n++; }} }});\n\
         println(\"end,\" + n);\n"
    )
}

#[test]
fn the_script_with_a_plain_zone_is_answered() {
    let answer = answer_script(&history(), &script_with_zones("EXTERNAL"), UtcOffset::UTC).unwrap();
    assert_eq!(answer, format!("s,7,{GUEST},1500\nend,1\n"));
    // A list of zones is a list, not one zone named `a,b`.
    let answer =
        answer_script(&history(), &script_with_zones("a,EXTERNAL"), UtcOffset::UTC).unwrap();
    assert_eq!(answer, format!("s,7,{GUEST},1500\nend,1\n"));
}

#[test]
fn zone_names_that_try_to_change_the_script_are_refused() {
    for zone in INJECTIONS {
        let script = script_with_zones(zone);
        match answer_script(&history(), &script, UtcOffset::UTC) {
            Err(Error::Script {
                line,
                column,
                message,
            }) => {
                assert!(line >= 1 && column >= 1, "{zone:?}");
                assert!(
                    !message.is_empty() && !message.contains('\n'),
                    "{zone:?}: {message:?}"
                );
            }
            other => panic!("{zone:?} was not refused: {other:?}"),
        }
    }
}

#[test]
fn zone_names_in_the_flows_file_are_validated() {
    for zone in INJECTIONS {
        if zone.contains('\n') {
            continue; // A newline ends the CSV line; covered by the field count.
        }
        // A comma would split the field; quote it the CSV way to try anyway.
        let csv = format!(
            "{FLOWS_HEADER}\n2026-11-01T10:00:00Z,{GUEST},198.51.100.1,INTERNAL,{zone},10\n"
        );
        let err = read_flows(csv.as_bytes()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("line 2"), "{zone:?}: {message}");
        assert!(
            message.contains("destinationzone") || message.contains("fields"),
            "{zone:?}: {message}"
        );
    }
}

/// One emulator for the whole file, on its own runtime.
fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        Emulator::start_in_background(
            "127.0.0.1:0".parse().unwrap(),
            history(),
            EmulatorOptions::new().max_body_bytes(64 * 1024),
        )
        .unwrap()
    })
}

/// Posts `body` raw and returns the status code and the response body.
fn post_raw(addr: SocketAddr, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /inmsf/Query HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
        }
    }
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status code");
    (status, response[end + 4..].to_vec())
}

fn form(script: &str) -> Vec<u8> {
    let mut body = b"script=".to_vec();
    body.extend(url::form_urlencoded::byte_serialize(script.as_bytes()).flat_map(str::bytes));
    body.extend_from_slice(b"&authenticate=basic&resultFormat=txt");
    body
}

/// A refusal is a 4xx with a text message; an answer is a 200.
fn check_response(status: u16, body: &[u8]) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(body);
    if status == 200 {
        prop_assert!(text.is_empty() || text.ends_with('\n'));
    } else {
        prop_assert!((400..500).contains(&status), "status {status}: {text}");
        prop_assert!(!text.trim().is_empty() && text.ends_with('\n'), "{text:?}");
        prop_assert_eq!(text.lines().count(), 1, "a refusal is one line: {:?}", text);
    }
    Ok(())
}

#[test]
fn injected_zones_over_http_are_a_400_naming_the_problem() {
    let addr = emulator().local_addr();
    for zone in INJECTIONS {
        let (status, body) = post_raw(addr, &form(&script_with_zones(zone)));
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{zone:?}: {text}");
        assert!(text.contains("line"), "{zone:?}: {text}");
    }
    let (status, body) = post_raw(addr, &form(&script_with_zones("EXTERNAL")));
    assert_eq!(
        (status, body),
        (200, format!("s,7,{GUEST},1500\nend,1\n").into_bytes())
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_request_bodies_are_refused_cleanly(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (status, answer) = post_raw(emulator().local_addr(), &body);
        check_response(status, &answer)?;
    }

    #[test]
    fn mutated_forms_are_answered_or_refused_cleanly(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let mut body = form(&script_with_zones("EXTERNAL"));
        for (index, byte, op) in edits {
            let at = index.index(body.len() + 1);
            match op {
                0 => body.insert(at, byte),
                1 if at < body.len() => { body.remove(at); }
                _ if at < body.len() => body[at] = byte,
                _ => body.push(byte),
            }
        }
        let (status, answer) = post_raw(emulator().local_addr(), &body);
        check_response(status, &answer)?;
    }
}

#[test]
fn the_server_still_answers_after_hostile_requests() {
    let addr = emulator().local_addr();
    for body in [
        &b"\xff\xfe\x00"[..],
        b"script=%ZZ",
        b"script=&&&==",
        b"resultFormat=txt",
    ] {
        let (status, _) = post_raw(addr, body);
        assert_eq!(status, 400);
    }
    let guest: IpAddr = GUEST.parse().unwrap();
    let (status, body) = post_raw(addr, &form(&script_with_zones("EXTERNAL")));
    assert_eq!(status, 200);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .starts_with(&format!("s,7,{guest},"))
    );
}
