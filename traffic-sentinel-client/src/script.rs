//! The text of a script (DESIGN §5): one `topN` per side and chunk, each
//! printing its rows with a tag, then the sentinel; built only from typed
//! values (addresses, validated zone names, formatted times).

use std::fmt::Write as _;
use std::net::IpAddr;

use time::OffsetDateTime;
use usage_model::{QueryTag, ServerTimeZone, Side, TimeInterval};

use crate::MonitorConfig;

/// First lines of every script: the row counter and the query variable.
pub(crate) const SCRIPT_HEADER: &str = "var n = 0;\nvar q;\n";
/// Last line of every script: the sentinel that proves the answer is whole.
pub(crate) const SCRIPT_FOOTER: &str = "println(\"end,\" + n);";

/// Appends `value` in decimal.
pub(crate) fn push_decimal(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

/// Appends `ip` as its `Display` form.
///
/// IPv4 octet by octet through `itoa`: `Ipv4Addr`'s `Display` goes through
/// `fmt` four times per address, which was 3.5% of a 10k-address cycle
/// (BENCHMARKS §3). IPv6 by `Display`.
pub(crate) fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            let [a, b, c, d] = v4.octets();
            out.push_str(digits.format(a));
            for octet in [b, c, d] {
                out.push('.');
                out.push_str(digits.format(octet));
            }
        }
        // Writing to a String cannot fail.
        IpAddr::V6(_) => drop(write!(out, "{ip}")),
    }
}

/// Writes both sides of one chunk: `ips` is the chunk's address list as
/// the filter lists it, `n` its address count, `sides` the texts of
/// [`side_texts`] per side (as [`Side::BOTH`]).
pub(crate) fn write_chunk(script: &mut String, ips: &str, n: usize, sides: &[(String, String); 2]) {
    for (side, (middle, tail)) in Side::BOTH.into_iter().zip(sides) {
        script.push_str(side_head(side));
        script.push_str(ips);
        script.push_str(middle);
        push_decimal(script, n as u64);
        script.push_str(tail);
    }
}

/// The start of a side's `topN`, up to its address list.
pub(crate) fn side_head(side: Side) -> &'static str {
    match side {
        Side::Sent => "q = Query.topN(\"historytrmx\", \"ipsource,bytes\", \"ipsource = ",
        Side::Received => {
            "q = Query.topN(\"historytrmx\", \"ipdestination,bytes\", \"ipdestination = "
        }
    }
}

/// The texts of one side's `topN` after its address list, up to `N`, and
/// after `N`: `(zone filters, interval and ordering, the run line)`.
pub(crate) fn side_texts(
    config: &MonitorConfig,
    tag: QueryTag,
    interval_text: &str,
    side: Side,
) -> (String, String) {
    let zone_field = side.zone_field();
    let mut middle = String::new();
    for (zones, operator) in [
        (config.include_zones(), "="),
        (config.exclude_zones(), "!="),
    ] {
        if zones.is_empty() {
            continue;
        }
        // Writing to a String cannot fail.
        let _ = write!(middle, " & {zone_field} {operator} ");
        for (i, zone) in zones.iter().enumerate() {
            if i > 0 {
                middle.push(',');
            }
            middle.push_str(zone.as_str());
        }
    }
    let _ = write!(middle, "\", \"{interval_text}\", \"bytes\", ");
    let tail = format!(
        ");\nq.run(function(row, table) {{ if (row[0]) {{ println(\"{letter},{tag},\" + row[0] + \",\" + row[1]); n++; }} }});\n",
        letter = side.letter(),
    );
    (middle, tail)
}

/// `"yyyyMMdd HH:mm:ss, yyyyMMdd HH:mm:ss"` (without quotes): `interval`
/// read on the server's clock.
pub(crate) fn ts_interval(interval: TimeInterval, zone: &ServerTimeZone) -> Result<String, String> {
    Ok(format!(
        "{}, {}",
        ts_time(interval.start(), zone)?,
        ts_time(interval.end(), zone)?
    ))
}

/// `yyyyMMdd HH:mm:ss` of `instant` on the server's clock.
fn ts_time(instant: OffsetDateTime, zone: &ServerTimeZone) -> Result<String, String> {
    let local = zone
        .to_local(instant)
        .ok()
        .filter(|local| (0..=9999).contains(&local.year()))
        .ok_or_else(|| {
            format!("{instant} cannot be written as yyyyMMdd in the server's time zone {zone}")
        })?;
    Ok(format!(
        "{:04}{:02}{:02} {:02}:{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    ))
}
