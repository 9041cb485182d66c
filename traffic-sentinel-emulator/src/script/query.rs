//! One `Query.topN(...)` call and the values inside it: the field list, the
//! filter (addresses and zones), the interval in TS's local time text and
//! the row count `N`.

use std::net::IpAddr;

use nom::Parser;
use nom::bytes::complete::{tag, take_while_m_n, take_while1};
use nom::character::complete::multispace1;
use time::{Date, Month, PrimitiveDateTime, Time};
use usage_model::{Side, is_ts_zone_char};

use super::lexer::{
    Expected, P, PResult, SyntaxError, W, describe_found, end_of_content, error, is_ident_char,
    peek, string_exact, string_with, token, tokens, ws,
};
use super::parsed::{MAX_TOP_N, TopN};
use crate::error::shorten;
use crate::zone_filter::ZoneFilter;

/// `Query.topN("historytrmx", "FIELD,bytes", "FILTER", "START, END", "bytes", N)`.
pub(super) fn topn_call(i: &str, required_side: Option<Side>) -> PResult<'_, TopN> {
    let (i, ()) = tokens(i, &[W("Query"), P("."), W("topN"), P("(")])?;
    let (i, ()) = string_exact(i, "historytrmx")?;
    let (i, ()) = token(P(","))(i)?;
    let (i, side) = string_with(i, |s| field_spec(s, required_side))?;
    let (i, ()) = token(P(","))(i)?;
    let (i, (ips, zones)) = string_with(i, |s| filter(s, side))?;
    let (i, (start, end)) = {
        let (i, ()) = token(P(","))(i)?;
        string_with(i, interval)?
    };
    let (i, ()) = token(P(","))(i)?;
    let (i, ()) = string_exact(i, "bytes")?;
    let (i, ()) = token(P(","))(i)?;
    let (i, n) = top_n_count(i)?;
    let (i, ()) = token(P(")"))(i)?;
    Ok((
        i,
        TopN {
            side,
            ips,
            zones,
            start,
            end,
            n,
        },
    ))
}

/// `ipsource,bytes` or `ipdestination,bytes`.
fn field_spec(s: &str, required: Option<Side>) -> PResult<'_, Side> {
    let at = ws(s);
    let (i, side) = if let Ok((i, ())) = token(W("ipsource"))(s) {
        (i, Side::Sent)
    } else if let Ok((i, ())) = token(W("ipdestination"))(s) {
        (i, Side::Received)
    } else {
        return error(
            at,
            format!(
                "expected \"ipsource,bytes\" or \"ipdestination,bytes\", found \"{}\"",
                shorten(s)
            ),
        );
    };
    if let Some(required) = required
        && required != side
    {
        let want = match required {
            Side::Sent => "ipsource,bytes",
            Side::Received => "ipdestination,bytes",
        };
        return error(
            at,
            format!(
                "expected \"{want}\" in this query, found \"{}\"",
                shorten(s)
            ),
        );
    }
    let (i, ()) = tokens(i, &[P(","), W("bytes")])?;
    let (i, ()) = end_of_content(i, "the end of the field list")?;
    Ok((i, side))
}

/// `FIELD = ip,ip,... [& ZONEFIELD = z,...] [& ZONEFIELD != z,...]`.
fn filter(s: &str, side: Side) -> PResult<'_, (Vec<IpAddr>, ZoneFilter)> {
    let (ip_field, zone_field) = (side.address_field(), side.zone_field());
    let (i, ()) = tokens(s, &[W(ip_field), P("=")])?;
    let (mut i, ips) = ip_list(i)?;
    let mut zones = ZoneFilter::any();
    let (mut have_include, mut have_exclude) = (false, false);
    loop {
        let at = ws(i);
        if at.is_empty() {
            break;
        }
        if !peek(at, P("&")) {
            return error(
                at,
                format!(
                    "expected `,`, `&` or the end of the filter, found {}",
                    describe_found(at)
                ),
            );
        }
        let (rest, ()) = tokens(at, &[P("&"), W(zone_field)])?;
        let op_at = ws(rest);
        let (rest, exclude) = if let Ok((rest, ())) = token(P("!="))(rest) {
            (rest, true)
        } else if let Ok((rest, ())) = token(P("="))(rest) {
            (rest, false)
        } else {
            return error(
                op_at,
                format!("expected `=` or `!=`, found {}", describe_found(op_at)),
            );
        };
        if exclude && have_exclude {
            return error(at, format!("{zone_field} != given twice"));
        }
        if !exclude && (have_include || have_exclude) {
            return error(
                at,
                format!("{zone_field} = must be given at most once, before {zone_field} !="),
            );
        }
        let (rest, names) = zone_list(rest)?;
        for name in names {
            zones = if exclude {
                zones.exclude(name)
            } else {
                zones.include(name)
            };
        }
        have_include |= !exclude;
        have_exclude |= exclude;
        i = rest;
    }
    Ok((i, (ips, zones)))
}

/// The bytes an address may be written with: hex digits, `:` and `.`.
const IP_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_hexdigit() || c == b':' || c == b'.';
        b += 1;
    }
    table
};

fn ip_list(i: &str) -> PResult<'_, Vec<IpAddr>> {
    // Byte positions: every one used to slice `i` follows an ASCII byte.
    let bytes = i.as_bytes();
    let skip_ws = |mut k: usize| {
        while bytes
            .get(k)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        {
            k += 1;
        }
        k
    };
    let mut ips = Vec::new();
    let mut k = 0;
    loop {
        let start = skip_ws(k);
        k = start;
        while bytes.get(k).is_some_and(|&b| IP_BYTES[usize::from(b)]) {
            k += 1;
        }
        let text = &i[start..k];
        if text.is_empty() {
            let at = &i[start..];
            return error(
                at,
                format!("expected an ip address, found {}", describe_found(at)),
            );
        }
        match parse_ip(text) {
            Some(ip) => ips.push(ip),
            None => {
                return error(
                    &i[start..],
                    format!("invalid ip address \"{}\"", shorten(text)),
                );
            }
        }
        let after = skip_ws(k);
        if bytes.get(after) == Some(&b',') {
            k = after + 1;
        } else {
            return Ok((&i[k..], ips));
        }
    }
}

/// The dotted-quad path of [`parse_ip`].
#[cfg(test)]
pub(super) use usage_model::read_dotted_quad as parse_ipv4;
/// Addresses of a script's lists, read as std reads them (one shared
/// reader with the client's answer parser).
pub(super) use usage_model::read_ip as parse_ip;

fn zone_list(mut i: &str) -> PResult<'_, Vec<String>> {
    let mut zones = Vec::new();
    loop {
        let at = ws(i);
        let (rest, name) =
            take_while1::<_, _, SyntaxError<'_>>(is_ts_zone_char)(at).or_else(|_| {
                error(
                    at,
                    format!(
                        "expected a zone name [A-Za-z0-9_.-]+, found {}",
                        describe_found(at)
                    ),
                )
            })?;
        zones.push(name.to_owned());
        i = rest;
        match token(P(","))(i) {
            Ok((rest, ())) => i = rest,
            Err(_) => return Ok((i, zones)),
        }
    }
}

/// `yyyyMMdd HH:mm:ss, yyyyMMdd HH:mm:ss`.
pub(super) fn interval(s: &str) -> PResult<'_, (PrimitiveDateTime, PrimitiveDateTime)> {
    let start_at = ws(s);
    let (i, start) = date_time(start_at)?;
    let (i, ()) = token(P(","))(i)?;
    let (i, end) = date_time(ws(i))?;
    let (i, ()) = end_of_content(i, "the end of the interval")?;
    if start > end {
        return error(
            start_at,
            format!("interval \"{}\" starts after it ends", shorten(s)),
        );
    }
    Ok((i, (start, end)))
}

pub(super) fn date_time(i: &str) -> PResult<'_, PrimitiveDateTime> {
    fn digits(n: usize) -> impl Fn(&str) -> PResult<'_, &str> {
        move |i| take_while_m_n(n, n, |c: char| c.is_ascii_digit()).parse(i)
    }
    let bad = || {
        nom::Err::Error(SyntaxError {
            at: i,
            expected: Expected::Message(format!(
                "expected a time `yyyyMMdd HH:mm:ss`, found {}",
                describe_found(i)
            )),
        })
    };
    let parsed: PResult<'_, _> = (
        digits(8),
        multispace1,
        digits(2),
        tag(":"),
        digits(2),
        tag(":"),
        digits(2),
    )
        .parse(i);
    let (rest, (ymd, _, hh, _, mm, _, ss)) = parsed.map_err(|_| bad())?;
    let text = &i[..i.len() - rest.len()];
    let invalid = || error(i, format!("invalid date or time \"{}\"", shorten(text)));
    let num = |s: &str| s.parse::<u32>().unwrap_or(u32::MAX);
    let year = num(&ymd[..4]) as i32;
    let Ok(month) = Month::try_from(num(&ymd[4..6]).min(255) as u8) else {
        return invalid();
    };
    let Ok(date) = Date::from_calendar_date(year, month, num(&ymd[6..]).min(255) as u8) else {
        return invalid();
    };
    let Ok(time) = Time::from_hms(
        num(hh).min(255) as u8,
        num(mm).min(255) as u8,
        num(ss).min(255) as u8,
    ) else {
        return invalid();
    };
    Ok((rest, PrimitiveDateTime::new(date, time)))
}

fn top_n_count(i: &str) -> PResult<'_, usize> {
    let at = ws(i);
    let (rest, digits) = take_while1::<_, _, SyntaxError<'_>>(|c: char| c.is_ascii_digit())(at)
        .or_else(|_| {
            error(
                at,
                format!("expected the row count N, found {}", describe_found(at)),
            )
        })?;
    if rest.starts_with(is_ident_char) {
        return error(
            at,
            format!("expected the row count N, found {}", describe_found(at)),
        );
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= MAX_TOP_N => Ok((rest, usize::try_from(n).unwrap_or(usize::MAX))),
        _ => error(
            at,
            format!(
                "row count N {} is above the limit {MAX_TOP_N}",
                shorten(digits)
            ),
        ),
    }
}
