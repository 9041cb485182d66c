//! Parsing of the command line's times, durations, offsets and names.
//!
//! Each function here is a clap `value_parser`: its error message says what was
//! wrong, and clap names the flag and the value.

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};
use traffic_sentinel_emulator::{Fault, Times};

/// Parses an RFC 3339 time with any offset, e.g. `2026-11-01T10:00:00+01:00`,
/// and converts it to UTC.
///
/// # Errors
///
/// A message naming the expected form when `text` is not RFC 3339; one
/// saying to add `Z` or an offset when only the offset is missing; one
/// saying the time is out of range when it has no UTC form.
pub(crate) fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    const FORM: &str = "expected an RFC 3339 time like 2026-11-01T10:00:00Z";
    let text = text.trim();
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        let without_offset = time::PrimitiveDateTime::parse(
            text,
            time::macros::format_description!(
                version = 2,
                "[year]-[month]-[day][first [T][t][ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
            ),
        );
        if without_offset.is_ok() {
            format!("{FORM}: add Z (UTC) or an offset like +01:00 to the time")
        } else {
            FORM.to_owned()
        }
    })?;
    parsed.checked_to_offset(UtcOffset::UTC).ok_or_else(|| {
        "time is out of range: its UTC form is outside the years 0000 to 9999".to_owned()
    })
}

/// Formats a time as RFC 3339 in UTC with a `Z`, e.g. `2026-11-01T10:00:00Z`.
///
/// Times outside RFC 3339's years 0000–9999 fall back to `time`'s own display.
pub(crate) fn format_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// The units a duration may use, largest first, with their length in seconds.
const DURATION_UNITS: [(char, i64); 5] = [
    ('w', 7 * 86_400),
    ('d', 86_400),
    ('h', 3_600),
    ('m', 60),
    ('s', 1),
];

/// Parses a positive duration written as numbers with units, largest first:
/// `90s`, `30m`, `2h`, `1d`, `1w`, `1h30m`, `1d12h`.
///
/// # Errors
///
/// A message naming the problem when `text` is empty, has a number without a
/// unit or a unit without a number, uses an unknown or repeated unit or units
/// out of order, is zero, or is too large.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    const FORM: &str = "expected a duration like 90s, 30m, 2h, 1d or 1h30m";
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {FORM}"));
    }
    let mut total: i64 = 0;
    // Index into DURATION_UNITS of the next unit allowed: units go largest first.
    let mut next_unit = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("expected a number at {rest:?}; {FORM}"));
        }
        let (number, after) = rest.split_at(digits);
        let Some(unit) = after.chars().next() else {
            return Err(format!("missing unit after {number}; {FORM}"));
        };
        let Some(position) = DURATION_UNITS.iter().position(|&(u, _)| u == unit) else {
            return Err(format!(
                "unknown unit {unit:?} after {number}; expected s, m, h, d or w"
            ));
        };
        if position < next_unit {
            return Err(format!("unit {unit:?} repeated or out of order; {FORM}"));
        }
        next_unit = position + 1;
        let seconds = number
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(DURATION_UNITS[position].1))
            .and_then(|s| total.checked_add(s));
        total = match seconds {
            // Kept well inside the range of every time type it meets.
            Some(s) if s <= MAX_DURATION_SECONDS => s,
            _ => return Err(format!("duration {text:?} is too large")),
        };
        rest = &after[unit.len_utf8()..];
    }
    if total == 0 {
        return Err(format!("duration {text:?} must be positive"));
    }
    Ok(Duration::seconds(total))
}

/// Parses a settle lag: a duration as [`parse_duration`] reads it, or zero
/// (`0`, `0s`, `0m`, …).
///
/// # Errors
///
/// As [`parse_duration`], except that zero is allowed.
pub(crate) fn parse_lag(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b == b'0') {
        return Ok(Duration::ZERO);
    }
    match parse_duration(trimmed) {
        // Well formed, and zero.
        Err(message) if message.ends_with("must be positive") => Ok(Duration::ZERO),
        other => other,
    }
}

/// The largest duration accepted: about 100 years.
const MAX_DURATION_SECONDS: i64 = 100 * 366 * 86_400;

/// Like [`parse_duration`], as a [`std::time::Duration`] (for timeouts).
///
/// # Errors
///
/// As [`parse_duration`].
pub(crate) fn parse_std_duration(text: &str) -> Result<std::time::Duration, String> {
    let duration = parse_duration(text)?;
    Ok(duration.unsigned_abs())
}

/// Parses a Traffic Sentinel bucket size: whole seconds (`60`, `3600`) or a
/// duration as [`parse_duration`] reads it (`1m`, `1h`). It must divide a day.
///
/// # Errors
///
/// A message naming the expected form, or why the size is refused.
pub(crate) fn parse_grid(text: &str) -> Result<usage_model::Grid, String> {
    let trimmed = text.trim();
    let seconds = if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        trimmed
            .parse::<u64>()
            .map_err(|_| format!("granularity {trimmed:?} is too large"))?
    } else {
        let duration = parse_duration(trimmed)?;
        u64::try_from(duration.whole_seconds()).map_err(|_| "negative".to_owned())?
    };
    usage_model::Grid::from_seconds(seconds).map_err(|e| e.to_string())
}

/// Parses a server time zone: an IANA name (`Europe/Berlin`) or a fixed
/// offset (`+05:30`).
///
/// # Errors
///
/// A message naming the expected forms.
pub(crate) fn parse_server_time_zone(text: &str) -> Result<usage_model::ServerTimeZone, String> {
    let text = text.trim();
    if let Ok(offset) = parse_utc_offset(text) {
        return Ok(usage_model::ServerTimeZone::from(offset));
    }
    usage_model::ServerTimeZone::named(text).map_err(|e| {
        format!("expected an IANA time zone like Europe/Berlin or an offset like +05:30 ({e})")
    })
}

/// Parses a UTC offset: `Z`, `+00:00`, `+05:30`, `-08:00`.
///
/// # Errors
///
/// A message naming the expected form, or the hours or minutes out of range.
pub(crate) fn parse_utc_offset(text: &str) -> Result<UtcOffset, String> {
    const FORM: &str = "expected a UTC offset like +05:30, -08:00 or Z";
    let text = text.trim();
    if text == "Z" || text == "z" {
        return Ok(UtcOffset::UTC);
    }
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 6
        && matches!(bytes[0], b'+' | b'-')
        && bytes[1].is_ascii_digit()
        && bytes[2].is_ascii_digit()
        && bytes[3] == b':'
        && bytes[4].is_ascii_digit()
        && bytes[5].is_ascii_digit();
    if !shape_ok {
        return Err(FORM.to_owned());
    }
    let hours =
        i8::try_from((bytes[1] - b'0') * 10 + (bytes[2] - b'0')).map_err(|_| FORM.to_owned())?;
    let minutes =
        i8::try_from((bytes[4] - b'0') * 10 + (bytes[5] - b'0')).map_err(|_| FORM.to_owned())?;
    if hours > 23 {
        return Err(format!("offset hours {hours} out of range 0..=23"));
    }
    if minutes > 59 {
        return Err(format!("offset minutes {minutes} out of range 0..=59"));
    }
    let sign = if bytes[0] == b'-' { -1 } else { 1 };
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|e| format!("{FORM} ({e})"))
}

/// Parses a Traffic Sentinel zone name: one or more of `A-Z a-z 0-9 _ . -`.
///
/// # Errors
///
/// A message naming the first character not allowed, or the empty name.
pub(crate) fn parse_ts_zone(text: &str) -> Result<String, String> {
    traffic_sentinel_client::TsZone::new(text)
        .map(|zone| zone.as_str().to_owned())
        .map_err(|error| error.to_string())
}

/// Checks a Traffic Sentinel monitor URL: `http://` or `https://`, then a
/// host. It is checked after the command line is parsed, never by clap, so
/// that no error echoes a password the URL may carry.
///
/// The full check (port, no query or fragment) happens when the monitor
/// configuration is built.
///
/// # Errors
///
/// A message naming the expected form and the URL without its password.
pub(crate) fn check_monitor_url(text: &str) -> Result<(), String> {
    let scheme_end = text.find("://").map_or(0, |end| end + 3);
    let scheme = text[..scheme_end].to_ascii_lowercase();
    let rest = &text[scheme_end..];
    if matches!(scheme.as_str(), "http://" | "https://")
        && !rest.is_empty()
        && !rest.starts_with('/')
    {
        return Ok(());
    }
    Err(format!(
        "invalid --monitor {:?}: expected an http:// or https:// URL with a host, like http://10.147.28.100:8080",
        redact_credentials(text)
    ))
}

/// `text` with the password of every `user:password@host` in it, with or
/// without a scheme before it, replaced by `***`, so that no error or log
/// line shows a password.
///
/// Each word (split at white space and quotes) holding an `@` is read as a
/// URL: the user part starts after `://`, or else after the last `/`, and
/// runs to the last `@`; from its first `:` on it is hidden.
pub(crate) fn redact_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(&redact_word(word));
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, '"' | '\'' | '`') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// One word of [`redact_credentials`].
fn redact_word(word: &str) -> String {
    let Some(at) = word.rfind('@') else {
        return word.to_owned();
    };
    let user_start = match word[..at].find("://") {
        Some(scheme) => scheme + 3,
        None => word[..at].rfind('/').map_or(0, |slash| slash + 1),
    };
    match word[user_start..at].find(':') {
        Some(colon) => {
            let colon = user_start + colon;
            format!("{}:***{}", &word[..colon], &word[at..])
        }
        None => word.to_owned(),
    }
}

/// Parses an emulator fault: `5xx` (status 503), `status=CODE` (400–599),
/// `drop`, `truncate`, `garbage`, `html`, `empty` or `delay=DUR` (a duration
/// as [`parse_duration`] reads it).
///
/// # Errors
///
/// A message listing the faults understood, or naming the bad status or delay.
pub(crate) fn parse_fault(text: &str) -> Result<Fault, String> {
    const FORM: &str =
        "expected 5xx, status=CODE, drop, truncate, garbage, html, empty or delay=DUR";
    let text = text.trim();
    if let Some(code) = text.strip_prefix("status=") {
        return match code.parse::<u16>() {
            Ok(code) if (400..=599).contains(&code) => Ok(Fault::HttpStatus(code)),
            _ => Err(format!(
                "status {code:?} is not an HTTP status in 400..=599"
            )),
        };
    }
    if let Some(delay) = text.strip_prefix("delay=") {
        return parse_std_duration(delay).map(Fault::Delay);
    }
    match text {
        "5xx" => Ok(Fault::SERVICE_UNAVAILABLE),
        "drop" => Ok(Fault::DropMidBody),
        "truncate" => Ok(Fault::TruncateBeforeSentinel),
        "garbage" => Ok(Fault::GarbageLine),
        "html" => Ok(Fault::HtmlErrorPage),
        "empty" => Ok(Fault::EmptyBody),
        _ => Err(FORM.to_owned()),
    }
}

/// Parses how many requests a fault applies to: a positive number or `always`.
///
/// # Errors
///
/// A message naming the expected form.
pub(crate) fn parse_fault_times(text: &str) -> Result<Times, String> {
    match text.trim() {
        "always" => Ok(Times::Always),
        number => match number.parse::<u32>() {
            Ok(n) if n > 0 => Ok(Times::Next(n)),
            _ => Err("expected a positive number of requests or \"always\"".to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn times_are_rfc3339_converted_to_utc() {
        assert_eq!(
            parse_time("2026-11-01T10:00:00Z").unwrap(),
            datetime!(2026-11-01 10:00 UTC)
        );
        let t = parse_time("2026-11-01T10:00:00+05:30").unwrap();
        assert_eq!(t, datetime!(2026-11-01 04:30 UTC));
        assert_eq!(t.offset(), UtcOffset::UTC);
        assert_eq!(format_time(t), "2026-11-01T04:30:00Z");
    }

    #[test]
    fn bad_times_are_refused() {
        for bad in [
            "2026-13-01",
            "2026-13-01T00:00:00Z",
            "",
            "yesterday",
            "2026-11-01 10:00",
        ] {
            let err = parse_time(bad).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::seconds(90));
        assert_eq!(parse_duration("30m").unwrap(), Duration::minutes(30));
        assert_eq!(parse_duration("2h").unwrap(), Duration::hours(2));
        assert_eq!(parse_duration("1d").unwrap(), Duration::days(1));
        assert_eq!(parse_duration("1w").unwrap(), Duration::days(7));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(
            parse_duration("1d12h5m3s").unwrap(),
            Duration::seconds(129_903)
        );
        assert_eq!(
            parse_std_duration("45s").unwrap(),
            std::time::Duration::from_secs(45)
        );
    }

    #[test]
    fn bad_durations_say_why() {
        let cases = [
            ("", "empty"),
            ("5", "missing unit after 5"),
            ("5x", "unknown unit 'x'"),
            ("h", "expected a number"),
            ("0s", "must be positive"),
            ("0h0m", "must be positive"),
            ("30m1h", "out of order"),
            ("1h1h", "repeated"),
            ("-5m", "expected a number"),
            ("99999999999999999999s", "too large"),
            ("200000w", "too large"),
            ("1h 30m", "expected a number"),
        ];
        for (text, want) in cases {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_utc_offset("Z").unwrap(), UtcOffset::UTC);
        assert_eq!(parse_utc_offset("+00:00").unwrap(), UtcOffset::UTC);
        assert_eq!(parse_utc_offset("-00:00").unwrap(), UtcOffset::UTC);
        assert_eq!(parse_utc_offset("+05:30").unwrap(), offset!(+05:30));
        assert_eq!(parse_utc_offset("-08:00").unwrap(), offset!(-08:00));
        assert_eq!(parse_utc_offset("-03:30").unwrap(), offset!(-03:30));
        for bad in [
            "",
            "5",
            "+5:00",
            "+05",
            "0530",
            "+05:3",
            "+24:00",
            "+05:60",
            "UTC",
            "+٠٥:٣٠",
        ] {
            assert!(parse_utc_offset(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ts_zone_names() {
        assert_eq!(parse_ts_zone("EXTERNAL").unwrap(), "EXTERNAL");
        assert_eq!(parse_ts_zone("dmz-1.a_b").unwrap(), "dmz-1.a_b");
        assert!(parse_ts_zone("").is_err());
        let err = parse_ts_zone("EXTERNAL\" | true").unwrap_err();
        assert!(err.contains("'\"'"), "{err}");
        assert!(parse_ts_zone("a b").is_err());
    }

    #[test]
    fn monitor_urls() {
        assert!(check_monitor_url("http://10.147.28.100:8080").is_ok());
        assert!(check_monitor_url("https://ts.example").is_ok());
        assert!(check_monitor_url("HTTP://ts.example").is_ok());
        for bad in [
            "",
            "10.0.0.1:8080",
            "ftp://x",
            "http://",
            "http:///x",
            "http:/x",
        ] {
            assert!(check_monitor_url(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// No password reaches an error, whatever shape the URL has.
    #[test]
    fn passwords_are_redacted() {
        for (text, shown) in [
            ("ftp://guest:s3cret@ts:8080/x", "ftp://guest:***@ts:8080/x"),
            ("http:/guest:s3cret@ts", "http:/guest:***@ts"),
            ("HTTP//guest:s3cret@ts:8080", "HTTP//guest:***@ts:8080"),
            ("guest:s3cret@ts", "guest:***@ts"),
            ("x \"http://u:p@ss@h\" y", "x \"http://u:***@h\" y"),
            ("http://u:p/ss@h", "http://u:***@h"),
            (
                "see mysql://root:s3cret@db:3306/cloud and postgres://u:p%40ss@h/db",
                "see mysql://root:***@db:3306/cloud and postgres://u:***@h/db",
            ),
            ("http://guest@ts", "http://guest@ts"),
            ("http://a:b:c@ts?x=@y", "http://a:***@y"),
        ] {
            assert_eq!(redact_credentials(text), shown, "{text}");
        }
        let err = check_monitor_url("ftp://guest:s3cret@ts").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn lags_may_be_zero() {
        for zero in ["0", "0s", "0m", "0h0m", "00"] {
            assert_eq!(parse_lag(zero), Ok(Duration::ZERO), "{zero}");
        }
        assert_eq!(parse_lag("2h"), Ok(Duration::hours(2)));
        assert!(parse_lag("-1h").is_err());
        assert!(parse_lag("").is_err());
    }

    #[test]
    fn granularities_are_seconds_or_durations() {
        for (text, seconds) in [
            ("60", 60),
            ("3600", 3600),
            ("1m", 60),
            ("1h", 3600),
            ("15m", 900),
        ] {
            assert_eq!(parse_grid(text).map(|g| g.seconds()), Ok(seconds), "{text}");
        }
        for bad in ["0", "7", "2d", "1x", "", "99999999999999999999999"] {
            assert!(parse_grid(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_time_without_offset_says_to_add_one() {
        let err = parse_time("2026-11-01T10:00:00").unwrap_err();
        assert!(err.contains("add Z"), "{err}");
        let err = parse_time("9999-12-31T23:59:59-23:59").unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }

    #[test]
    fn faults_and_times() {
        assert_eq!(parse_fault("5xx").unwrap(), Fault::HttpStatus(503));
        assert_eq!(parse_fault("status=500").unwrap(), Fault::HttpStatus(500));
        assert_eq!(parse_fault("drop").unwrap(), Fault::DropMidBody);
        assert_eq!(
            parse_fault("truncate").unwrap(),
            Fault::TruncateBeforeSentinel
        );
        assert_eq!(parse_fault("garbage").unwrap(), Fault::GarbageLine);
        assert_eq!(parse_fault("html").unwrap(), Fault::HtmlErrorPage);
        assert_eq!(parse_fault("empty").unwrap(), Fault::EmptyBody);
        assert_eq!(
            parse_fault("delay=2s").unwrap(),
            Fault::Delay(std::time::Duration::from_secs(2))
        );
        for (bad, want) in [
            ("4xx", "expected 5xx"),
            ("status=200", "400..=599"),
            ("status=abc", "400..=599"),
            ("delay=soon", "expected a number"),
            ("", "expected 5xx"),
        ] {
            let err = parse_fault(bad).unwrap_err();
            assert!(err.contains(want), "{bad:?}: {err}");
        }
        assert_eq!(parse_fault_times("always").unwrap(), Times::Always);
        assert_eq!(parse_fault_times("3").unwrap(), Times::Next(3));
        for bad in ["0", "-1", "never", ""] {
            assert!(parse_fault_times(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// Every parser either accepts a value or refuses it with a message;
    /// none panics, whatever the text.
    fn check_all_parsers(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        use proptest::prop_assert;
        if let Ok(d) = parse_duration(text) {
            prop_assert!(d.is_positive(), "{text:?}");
        }
        if let Ok(offset) = parse_utc_offset(text) {
            prop_assert!(offset.whole_hours().abs() <= 23, "{text:?}");
        }
        let errors = [
            parse_duration(text).err(),
            parse_std_duration(text).err(),
            parse_time(text).err(),
            parse_utc_offset(text).err(),
            parse_ts_zone(text).err(),
            check_monitor_url(text).err(),
            parse_lag(text).err(),
            parse_grid(text).err(),
            parse_server_time_zone(text).err(),
            parse_fault(text).err(),
            parse_fault_times(text).err(),
        ];
        for message in errors.into_iter().flatten() {
            prop_assert!(!message.trim().is_empty(), "empty message for {text:?}");
        }
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,24}") {
            check_all_parsers(&text)?;
        }

        #[test]
        fn unit_like_text_never_panics(text in "[0-9smhdwxZz+:T. ,\"é٣\u{0}-]{0,24}") {
            check_all_parsers(&text)?;
        }

        #[test]
        fn mutated_valid_values_never_panic(
            base in proptest::sample::select(vec![
                "2026-11-01T10:00:00Z", "2026-11-01T10:00:00+05:30", "1h30m", "2h", "1d",
                "+05:30", "-08:00", "EXTERNAL", "http://127.0.0.1:8080", "delay=2s", "always",
            ]),
            at in 0usize..32,
            byte in proptest::prelude::any::<u8>(),
            delete in proptest::prelude::any::<bool>(),
        ) {
            let mut bytes = base.as_bytes().to_vec();
            let at = at % (bytes.len() + 1);
            if delete && at < bytes.len() {
                bytes.remove(at);
            } else {
                bytes.insert(at, byte);
            }
            check_all_parsers(&String::from_utf8_lossy(&bytes))?;
        }
    }
}
