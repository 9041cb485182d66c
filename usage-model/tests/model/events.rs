//! The events JSON Lines format (DESIGN §9): reading, writing, and what bad
//! input gets back.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::IpAddr;

use proptest::prelude::*;
use time::macros::datetime;
use time::{OffsetDateTime, UtcOffset};
use usage_model::{
    AccountId, Error, EventReader, IpEvent, IpEventKind, ZoneId, read_events, write_events,
};

const GOOD: &str = r#"{"id":17,"type":"NET.IPASSIGN","at":"2026-11-01T10:00:00Z","zone":"zone-1","account":"acct-42","ip":"203.0.113.7"}"#;

fn good_event() -> IpEvent {
    IpEvent {
        id: 17,
        at: datetime!(2026-11-01 10:00 UTC),
        zone: ZoneId::new("zone-1").unwrap(),
        account: AccountId::new("acct-42").unwrap(),
        ip: "203.0.113.7".parse().unwrap(),
        kind: IpEventKind::Assign,
    }
}

/// `GOOD` with `from` replaced by `to` (which must occur).
fn good_with(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from:?} is not in the good line");
    GOOD.replacen(from, to, 1)
}

/// Bad input and the exact message of the first error `read_events` returns.
fn bad_cases() -> Vec<(&'static str, Vec<u8>, String)> {
    let case = |name, input: String, message: &str| (name, input.into_bytes(), message.to_owned());
    vec![
        case(
            "bad type",
            good_with("NET.IPASSIGN", "NET.IPSWAP"),
            r#"line 1: field "type": unknown event type "NET.IPSWAP" (expected "NET.IPASSIGN" or "NET.IPRELEASE")"#,
        ),
        case(
            "type in lower case",
            good_with("NET.IPASSIGN", "net.ipassign"),
            r#"line 1: field "type": unknown event type "net.ipassign" (expected "NET.IPASSIGN" or "NET.IPRELEASE")"#,
        ),
        case(
            "month 13",
            good_with("2026-11-01T10:00:00Z", "2026-13-01T00:00:00Z"),
            r#"line 1: field "at": invalid RFC 3339 timestamp "2026-13-01T00:00:00Z""#,
        ),
        case(
            "at without offset",
            good_with("2026-11-01T10:00:00Z", "2026-11-01T10:00:00"),
            r#"line 1: field "at": invalid RFC 3339 timestamp "2026-11-01T10:00:00""#,
        ),
        case(
            "at with a space separator",
            good_with("2026-11-01T10:00:00Z", "2026-11-01 10:00:00Z"),
            r#"line 1: field "at": invalid RFC 3339 timestamp "2026-11-01 10:00:00Z""#,
        ),
        case(
            "at as unix seconds",
            good_with(r#""2026-11-01T10:00:00Z""#, "1793527200"),
            r#"line 1: field "at": expected a string, found the number 1793527200 at column 37"#,
        ),
        case(
            "at beyond year 9999 in utc",
            good_with("2026-11-01T10:00:00Z", "9999-12-31T23:30:00-01:00"),
            r#"line 1: field "at": timestamp "9999-12-31T23:30:00-01:00" is out of range (its UTC year must be 0000 to 9999)"#,
        ),
        case(
            "negative id",
            good_with("17", "-1"),
            r#"line 1: field "id": expected an unsigned integer, found "-1""#,
        ),
        case(
            "fractional id",
            good_with("17", "17.0"),
            r#"line 1: field "id": expected an unsigned integer, found "17.0""#,
        ),
        case(
            "id with exponent",
            good_with("17", "1e2"),
            r#"line 1: field "id": expected an unsigned integer, found "1e2""#,
        ),
        case(
            "id with leading zero",
            good_with("17", "017"),
            r#"line 1: field "id": invalid number at column 8"#,
        ),
        case(
            "id over u64",
            good_with("17", "18446744073709551616"),
            r#"line 1: field "id": "18446744073709551616" is larger than the largest id 18446744073709551615"#,
        ),
        case(
            "id as string",
            good_with("17", r#""17""#),
            r#"line 1: field "id": expected an unsigned integer, found the string "17" at column 7"#,
        ),
        case(
            "missing ip after a blank line",
            format!("{GOOD}\n\n{}\n", good_with(r#","ip":"203.0.113.7""#, "")),
            r#"line 3: field "ip": required key is missing"#,
        ),
        case(
            "missing id",
            good_with(r#""id":17,"#, ""),
            r#"line 1: field "id": required key is missing"#,
        ),
        case(
            "empty object",
            "{}".to_owned(),
            r#"line 1: field "id": required key is missing"#,
        ),
        case(
            "duplicate key",
            good_with(r#""ip":"#, r#""account":"acct-43","ip":"#),
            r#"line 1: field "account": duplicate key"#,
        ),
        case(
            "duplicate key spelt with an escape",
            good_with(r#""ip":"#, r#""\u0069p":"10.0.0.1","ip":"#),
            r#"line 1: field "ip": duplicate key"#,
        ),
        case(
            "duplicate unknown key",
            good_with(r#""id":17,"#, r#""id":17,"note":1,"note":2,"#),
            r#"line 1: duplicate key "note""#,
        ),
        case(
            "empty account",
            good_with("acct-42", ""),
            r#"line 1: field "account": invalid account "": must not be empty"#,
        ),
        case(
            "empty zone",
            good_with("zone-1", ""),
            r#"line 1: field "zone": invalid zone "": must not be empty"#,
        ),
        case(
            "control character in account",
            good_with("acct-42", r"acct\u000742"),
            r#"line 1: field "account": invalid account "acct\u{7}42": must not contain control characters"#,
        ),
        case(
            "bad ipv4",
            good_with("203.0.113.7", "203.0.113.300"),
            r#"line 1: field "ip": invalid IP address "203.0.113.300""#,
        ),
        case(
            "ipv6 with zone index",
            good_with("203.0.113.7", "fe80::1%eth0"),
            r#"line 1: field "ip": invalid IP address "fe80::1%eth0""#,
        ),
        case(
            "trailing garbage",
            format!("{GOOD}\n{GOOD} trailing\n"),
            r#"line 2: unexpected text "trailing" after the object at column 116"#,
        ),
        case(
            "two objects on one line",
            format!("{GOOD}{GOOD}"),
            r#"line 1: unexpected text "{\"id\":17,\"type\":\"NET.IPA" after the object at column 115"#,
        ),
        case(
            "missing colon",
            good_with(r#""id":"#, r#""id" "#),
            r#"line 1: expected `:` at column 7"#,
        ),
        case(
            "unterminated string",
            r#"{"id":17,"type":"NET.IPASSIGN"#.to_owned(),
            r#"line 1: field "type": EOF while parsing a string at column 29"#,
        ),
        case(
            "trailing comma",
            good_with(r#""}"#, r#"",}"#),
            r#"line 1: trailing comma at column 115"#,
        ),
        case(
            "single quotes",
            good_with(r#""zone-1""#, "'zone-1'"),
            r#"line 1: field "zone": expected value at column 67"#,
        ),
        case(
            "array line",
            format!("[{GOOD}]"),
            "line 1: expected a JSON object, found an array",
        ),
        case(
            "string line",
            r#""NET.IPASSIGN""#.to_owned(),
            "line 1: expected a JSON object, found a string",
        ),
        case(
            "number line",
            "17".to_owned(),
            "line 1: expected a JSON object, found a number",
        ),
        case(
            "not json",
            "id=17 type=NET.IPASSIGN".to_owned(),
            "line 1: expected a JSON object, found 'i' at column 1",
        ),
        case(
            "invalid escape",
            good_with("acct-42", r"acct\x42"),
            r#"line 1: field "account": invalid escape at column 92"#,
        ),
        case(
            "lone surrogate",
            good_with("acct-42", r"acct\ud83d"),
            r#"line 1: field "account": unexpected end of hex escape at column 97"#,
        ),
        case(
            "raw tab in string",
            good_with("acct-42", "acct\t42"),
            r#"line 1: field "account": control character (\u0000-\u001F) found while parsing a string at column 90"#,
        ),
        case(
            "unknown key with invalid value",
            good_with(r#""id":17,"#, r#""id":17,"note":tru,"#),
            r#"line 1: expected ident at column 20"#,
        ),
        case(
            "unknown key with an unclosed array",
            good_with(r#""id":17,"#, r#""id":17,"deep":[[[1],"#),
            r#"line 1: expected `,` or `]` at column 29"#,
        ),
        case(
            "zone as an array",
            good_with(r#""zone-1""#, r#"["zone-1"]"#),
            r#"line 1: field "zone": expected a string, found an array at column 67"#,
        ),
        case(
            "account as null",
            good_with(r#""acct-42""#, "null"),
            r#"line 1: field "account": expected a string, found null at column 86"#,
        ),
        case(
            "ip as a number",
            good_with(r#""203.0.113.7""#, "2030113"),
            r#"line 1: field "ip": expected a string, found the number 2030113 at column 101"#,
        ),
        case(
            "type as an object",
            good_with(r#""NET.IPASSIGN""#, r#"{"kind":"assign"}"#),
            r#"line 1: field "type": expected a string, found an object at column 17"#,
        ),
        case(
            "id as a boolean",
            good_with("17", "true"),
            r#"line 1: field "id": expected an unsigned integer, found true at column 7"#,
        ),
        case(
            "columns count characters, not bytes",
            r#"{"x":"ééé","id":"1"}"#.to_owned(),
            r#"line 1: field "id": expected an unsigned integer, found the string "1" at column 17"#,
        ),
        case(
            "syntax error columns count characters, not bytes",
            r#"{"x":"ééé","id":01}"#.to_owned(),
            r#"line 1: field "id": invalid number at column 18"#,
        ),
        case(
            "object not closed",
            r#"{"id":17"#.to_owned(),
            r#"line 1: EOF while parsing an object at column 8"#,
        ),
        case(
            "key that is not a string",
            r#"{id:17}"#.to_owned(),
            r#"line 1: key must be a string at column 2"#,
        ),
        case(
            "byte order mark on line 2",
            format!("{GOOD}\n\u{feff}{GOOD}\n"),
            "line 2: a byte order mark is only allowed at the start of line 1",
        ),
    ]
}

#[test]
fn bad_lines_are_reported_by_number_field_and_value() {
    let mut wrong = Vec::new();
    for (name, input, message) in bad_cases() {
        let err = match read_events(&input[..]) {
            Ok(events) => {
                wrong.push(format!("{name}: read {} events", events.len()));
                continue;
            }
            Err(err) => err,
        };
        if err.to_string() != message {
            wrong.push(format!("{name}:\n  got      {err}\n  expected {message}"));
        }
        assert!(
            matches!(err, Error::EventLine { line, .. } if message.starts_with(&format!("line {line}: "))),
            "{name}: {err:?}"
        );
        // The streaming reader reports the same first error.
        let first_error = EventReader::new(&input[..]).find_map(Result::err);
        assert_eq!(
            first_error.map(|e| e.to_string()),
            Some(err.to_string()),
            "{name}"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn field_is_set_only_when_one_field_is_at_fault() {
    let err = read_events(good_with("203.0.113.7", "nope").as_bytes()).unwrap_err();
    assert!(matches!(
        err,
        Error::EventLine { line: 1, field: Some("ip"), ref reason } if reason == r#"invalid IP address "nope""#
    ));
    let err = read_events(format!("{GOOD},").as_bytes()).unwrap_err();
    assert!(matches!(
        err,
        Error::EventLine {
            line: 1,
            field: None,
            ..
        }
    ));
}

#[test]
fn invalid_utf8_names_the_line() {
    let mut input = format!("{GOOD}\n").into_bytes();
    input.extend_from_slice(&good_with("acct-42", "acct-\u{e9}").into_bytes());
    let bad = input.len() - 20;
    input[bad] = 0xff;
    let err = read_events(&input[..]).unwrap_err();
    assert_eq!(err.to_string(), "line 2: invalid UTF-8 at byte 95");
}

#[test]
fn good_lines_with_offsets_blank_lines_and_bom() {
    let input = format!(
        "\u{feff}{}\r\n\
         \n   \t\r\n\
         {}\n\
         {}\n\
         {}\n\
         {{ \"ip\" : \"2001:DB8::7\", \"account\":\"acct-42\",\"extra\":{{\"k\":[1,2.5e-3,null,true]}},\
            \"zone\":\"zone-1\",\"at\":\"2026-11-01T10:00:00.123456789Z\",\"type\":\"NET.IPRELEASE\",\"id\":21 }}",
        good_with("2026-11-01T10:00:00Z", "2026-11-01T12:00:00+02:00"),
        good_with("2026-11-01T10:00:00Z", "2026-11-01T04:30:00-05:30").replace("17", "18"),
        good_with("2026-11-01T10:00:00Z", "2026-11-01t10:00:00z").replace("17", "19"),
        good_with("2026-11-01T10:00:00Z", "2026-11-01T10:00:00+00:00").replace("17", "20"),
    );
    let events = read_events(input.as_bytes()).unwrap();
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids, [17, 18, 19, 20, 21]);
    for event in &events[..4] {
        assert_eq!(
            event.at,
            datetime!(2026-11-01 10:00 UTC),
            "event {}",
            event.id
        );
        assert_eq!(event.at.offset(), UtcOffset::UTC, "event {}", event.id);
        assert_eq!(event.kind, IpEventKind::Assign);
    }
    let last = &events[4];
    assert_eq!(last.at, datetime!(2026-11-01 10:00:00.123456789 UTC));
    assert_eq!(last.ip, "2001:db8::7".parse::<IpAddr>().unwrap());
    assert_eq!(last.kind, IpEventKind::Release);
}

#[test]
fn keys_in_any_order_with_whitespace_and_other_keys() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let line = format!(
        " \t{{ \"ip\" : \"203.0.113.7\" , \"account\":\"acct-42\",\"extra\":[1,{{\"x\":null}}],\
         \"zone\":\"zone-1\", \"at\":\"2026-11-01T10:00:00Z\",\"type\":\"NET.IPASSIGN\",\
         \"flag\":true,\"id\":17, \"n\": -1.5e3, \"big\": 1e400, \"deep\": {deep} }}\r"
    );
    assert_eq!(read_events(line.as_bytes()).unwrap(), [good_event()]);
}

#[test]
fn escaped_keys_and_values_are_decoded() {
    let line = good_with(r#""zone":"zone-1""#, r#""\u007aone":"zone\u002d1""#)
        .replace("acct-42", r#"a\"c\\t\/é😀\ud83d\ude00"#);
    let events = read_events(line.as_bytes()).unwrap();
    assert_eq!(events[0].zone.as_str(), "zone-1");
    assert_eq!(events[0].account.as_str(), "a\"c\\t/é😀😀");
}

#[test]
fn ids_take_every_u64() {
    for id in [0, 1, 1 << 63, u64::MAX - 1, u64::MAX] {
        let line = good_with("17", &id.to_string());
        assert_eq!(read_events(line.as_bytes()).unwrap()[0].id, id, "{id}");
    }
}

#[test]
fn ipv4_mapped_addresses_are_read_as_ipv4() {
    let line = good_with("203.0.113.7", "::ffff:203.0.113.7");
    assert_eq!(read_events(line.as_bytes()).unwrap(), [good_event()]);
    let line = good_with("203.0.113.7", "::FFFF:cb00:7107");
    assert_eq!(read_events(line.as_bytes()).unwrap(), [good_event()]);
}

#[test]
fn default_line_limit_is_one_mebibyte() {
    const MIB: usize = 1 << 20;
    let padded = format!("{GOOD}{}", " ".repeat(MIB - GOOD.len()));
    assert_eq!(read_events(padded.as_bytes()).unwrap(), [good_event()]);
    let over = format!("{padded} \n{GOOD}\n");
    let mut reader = EventReader::new(over.as_bytes());
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(err.to_string(), "line 1: line is longer than 1048576 bytes");
    assert!(reader.next().is_none());
}

#[test]
fn empty_and_blank_inputs_hold_no_events() {
    for input in ["", "\n", "\n\n  \n", "\u{feff}", "\u{feff}\n", "\r\n"] {
        assert_eq!(read_events(input.as_bytes()).unwrap(), [], "{input:?}");
    }
}

#[test]
fn the_reader_goes_on_after_a_bad_line() {
    let input = format!("{GOOD}\nnot json\n\n{}\n", GOOD.replace("17", "18"));
    let mut reader = EventReader::new(input.as_bytes());
    assert_eq!(reader.next().unwrap().unwrap().id, 17);
    let err = reader.next().unwrap().unwrap_err();
    assert!(matches!(
        err,
        Error::EventLine {
            line: 2,
            field: None,
            ..
        }
    ));
    assert_eq!(reader.next().unwrap().unwrap().id, 18);
    assert_eq!(reader.line_number(), 4);
    assert!(reader.next().is_none());
    assert!(reader.next().is_none());
    // ... while `read_events` loads nothing.
    assert!(read_events(input.as_bytes()).is_err());
}

/// An endless source of one line, repeated.
struct Endless {
    line: Vec<u8>,
    pos: usize,
    served: usize,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            buf[n] = self.line[self.pos];
            self.pos = (self.pos + 1) % self.line.len();
            n += 1;
        }
        self.served += n;
        Ok(n)
    }
}

#[test]
fn the_reader_streams() {
    let source = Endless {
        line: format!("{GOOD}\n").into_bytes(),
        pos: 0,
        served: 0,
    };
    let mut reader = EventReader::new(BufReader::with_capacity(256, source));
    for _ in 0..1000 {
        assert_eq!(reader.next().unwrap().unwrap(), good_event());
    }
    assert_eq!(reader.line_number(), 1000);
    let served = reader.into_inner().into_inner().served;
    assert!(
        served < 1001 * (GOOD.len() + 1) + 256,
        "read {served} bytes"
    );
}

#[test]
fn overlong_lines_end_the_reader() {
    let input = format!("{GOOD}\n{GOOD} {}\n{GOOD}\n", " ".repeat(100));
    let mut reader = EventReader::new(input.as_bytes()).max_line_length(GOOD.len() + 50);
    assert!(reader.next().unwrap().is_ok());
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("line 2: line is longer than {} bytes", GOOD.len() + 50)
    );
    assert!(reader.next().is_none());
    // A line of exactly the limit is fine, with or without its newline.
    let exact = EventReader::new(GOOD.as_bytes()).max_line_length(GOOD.len());
    assert_eq!(
        exact.collect::<Result<Vec<_>, _>>().unwrap(),
        [good_event()]
    );
    let exact = format!("{GOOD}\n");
    let exact = EventReader::new(exact.as_bytes()).max_line_length(GOOD.len());
    assert_eq!(
        exact.collect::<Result<Vec<_>, _>>().unwrap(),
        [good_event()]
    );
}

/// Serves `data`, then fails.
struct FailingAfter {
    data: io::Cursor<Vec<u8>>,
}

impl Read for FailingAfter {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(io::Error::other("disk on fire")),
            n => Ok(n),
        }
    }
}

#[test]
fn read_errors_name_the_line() {
    let source = FailingAfter {
        data: io::Cursor::new(format!("{GOOD}\n\n{GOOD}").into_bytes()),
    };
    let mut reader = EventReader::new(BufReader::new(source));
    assert!(reader.next().unwrap().is_ok());
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(err.to_string(), "line 3: i/o error: disk on fire");
    assert!(matches!(err, Error::Io { line: 3, .. }));
    assert!(std::error::Error::source(&err).is_some());
    assert!(reader.next().is_none());
}

/// A writer that accepts `room` bytes, then fails.
struct Full {
    room: usize,
}

impl Write for Full {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.room == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no room"));
        }
        let n = buf.len().min(self.room);
        self.room -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_errors_name_the_line() {
    let events = [good_event(), good_event(), good_event()];
    let err = write_events(
        Full {
            room: GOOD.len() + 10,
        },
        &events,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Io { line: 2, .. }), "{err:?}");
    assert_eq!(err.to_string(), "line 2: i/o error: no room");
}

#[test]
fn writing_refuses_years_rfc3339_cannot_hold() {
    let mut event = good_event();
    event.at = datetime!(-0001-12-31 23:00 UTC);
    let err = write_events(Vec::new(), [&event]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 17: timestamp -0001-12-31 23:00:00.0 +00:00:00 cannot be written as RFC 3339 (year must be 0000 to 9999)"
    );
}

#[test]
fn writing_converts_to_utc_and_escapes() {
    let mut event = good_event();
    event.at = datetime!(2026-11-01 05:00:00.25 -05:00);
    event.account = AccountId::new("a \"quoted\" \\ account/é😀").unwrap();
    event.ip = "::ffff:203.0.113.7".parse().unwrap();
    event.kind = IpEventKind::Release;
    let mut out = Vec::new();
    write_events(&mut out, [&event]).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        text,
        "{\"id\":17,\"type\":\"NET.IPRELEASE\",\"at\":\"2026-11-01T10:00:00.25Z\",\"zone\":\"zone-1\",\
         \"account\":\"a \\\"quoted\\\" \\\\ account/é😀\",\"ip\":\"203.0.113.7\"}\n"
    );
    // An IPv4-mapped address is written and read back as the IPv4 address.
    event.ip = "203.0.113.7".parse().unwrap();
    assert_eq!(read_events(text.as_bytes()).unwrap(), [event]);
}

fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,12}",
        "[^\\p{Cc}]{1,16}",
        "[\"\\\\/ éü€😀a-c]{1,8}",
    ]
}

fn event_strategy() -> impl Strategy<Value = IpEvent> {
    let ip = prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
    ];
    let at = (
        -62_167_219_200_i64..=253_402_300_799,
        0u32..1_000_000_000,
        -1439i32..=1439,
    )
        .prop_map(|(secs, nanos, offset_minutes)| {
            let utc = OffsetDateTime::from_unix_timestamp(secs)
                .unwrap()
                .replace_nanosecond(nanos)
                .unwrap();
            // Any offset the instant can be shown in; the writer converts to UTC.
            let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
            utc.checked_to_offset(offset).unwrap_or(utc)
        });
    (any::<u64>(), at, id_text(), id_text(), ip, any::<bool>()).prop_map(
        |(id, at, zone, account, ip, assign)| IpEvent {
            id,
            at,
            zone: ZoneId::new(zone).unwrap(),
            account: AccountId::new(account).unwrap(),
            ip,
            kind: if assign {
                IpEventKind::Assign
            } else {
                IpEventKind::Release
            },
        },
    )
}

/// Every error from reading `input` names a line of it.
fn check_errors_name_lines(input: &[u8]) -> Result<(), TestCaseError> {
    let lines = input.split(|&b| b == b'\n').count();
    for item in EventReader::new(input) {
        match item {
            Ok(event) => {
                // Whatever was read can be written and read back.
                let mut out = Vec::new();
                write_events(&mut out, [&event]).unwrap();
                prop_assert_eq!(read_events(&out[..]).unwrap(), vec![event]);
            }
            Err(Error::EventLine {
                line, ref reason, ..
            }) => {
                prop_assert!((1..=lines).contains(&line), "line {line} of {lines}");
                prop_assert!(!reason.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error {other:?}"),
        }
    }
    match read_events(input) {
        Ok(_) => {}
        Err(err) => prop_assert!(err.to_string().starts_with("line "), "{err}"),
    }
    Ok(())
}

fn json_ish_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(
            b"{}[]\":,0123456789-+.eEtrufalsn \\u\n\r\tidypezocnNTIPASG\xc3\xa9\xff".to_vec(),
        ),
        0..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn write_then_read_gives_the_same_events(events in prop::collection::vec(event_strategy(), 0..12)) {
        let mut out = Vec::new();
        write_events(&mut out, &events).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        prop_assert_eq!(text.lines().count(), events.len());
        let compact = text.lines().all(|l| l.starts_with("{\"id\":") && l.ends_with("\"}"));
        prop_assert!(compact, "not one compact object per line: {}", text);
        let back = read_events(&out[..]).unwrap();
        prop_assert_eq!(&back, &events);
        prop_assert!(back.iter().all(|e| e.at.offset() == UtcOffset::UTC));
        // Writing again gives the same bytes.
        let mut again = Vec::new();
        write_events(&mut again, &back).unwrap();
        prop_assert_eq!(again, out);
    }

    #[test]
    fn random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300)) {
        check_errors_name_lines(&input)?;
    }

    #[test]
    fn json_like_bytes_never_panic(input in json_ish_bytes()) {
        check_errors_name_lines(&input)?;
    }

    #[test]
    fn mutated_lines_never_panic(
        event in event_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4),
    ) {
        let mut line = Vec::new();
        write_events(&mut line, [&event]).unwrap();
        for (at, op, byte) in edits {
            let i = at.index(line.len() + 1);
            match op {
                0 => line.insert(i, byte),
                1 if i < line.len() => { line.remove(i); }
                _ if i < line.len() => line[i] = byte,
                _ => line.push(byte),
            }
        }
        let input = [&line[..], b"\n", &line[..]].concat();
        check_errors_name_lines(&input)?;
    }
}

#[test]
fn bufread_is_all_it_needs() {
    fn count<R: BufRead>(r: R) -> usize {
        EventReader::new(r).filter(Result::is_ok).count()
    }
    assert_eq!(count(io::Cursor::new(format!("{GOOD}\n{GOOD}"))), 2);
    assert_eq!(count(BufReader::new(GOOD.as_bytes())), 1);
}
