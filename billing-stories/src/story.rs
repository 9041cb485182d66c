//! A story: its setup, its windows and what each must produce, parsed from
//! the line format of the crate documentation.

use std::collections::BTreeMap;
use std::net::IpAddr;

use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};
use usage_model::{
    AccountId, ByteCounts, CollectionWindow, Grid, IpEvent, IpEventKind, UsageRecord, ZoneId,
};

use crate::Failure;

/// A record a window must produce.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Clone)]
pub struct ExpectedRecord {
    /// The account billed.
    pub account: String,
    /// The address.
    pub ip: IpAddr,
    /// The first instant billed.
    pub start: OffsetDateTime,
    /// The end of the billed span (exclusive).
    pub end: OffsetDateTime,
    /// Bytes sent by the address.
    pub sent: u64,
    /// Bytes received by the address.
    pub received: u64,
}

impl From<&UsageRecord> for ExpectedRecord {
    /// The record as a story writes it.
    fn from(record: &UsageRecord) -> ExpectedRecord {
        ExpectedRecord {
            account: record.account.to_string(),
            ip: record.ip,
            start: record.start,
            end: record.end,
            sent: record.bytes_sent,
            received: record.bytes_received,
        }
    }
}

/// One window of a story and its expectations, each with its line number.
#[derive(Debug, Default)]
pub struct Section {
    /// The line that opened the section (`window` or `expect window`).
    pub line: usize,
    /// The window billed.
    pub window: Option<CollectionWindow>,
    /// `expect record` lines.
    pub records: Vec<(usize, ExpectedRecord)>,
    /// Whether `expect no records` was given.
    pub no_records: bool,
    /// `expect anomaly ID KIND` lines (`KIND` as DESIGN names it, e.g.
    /// `assign-while-held-by-other`).
    pub anomalies: Vec<(usize, u64, String)>,
    /// `expect total ACCOUNT …` lines.
    pub totals: Vec<(usize, String, ByteCounts)>,
    /// `expect plan pieces P queries Q ips I`.
    pub plan: Option<(usize, [usize; 3])>,
    /// `expect checkpoint T`.
    pub checkpoint: Option<(usize, OffsetDateTime)>,
}

/// `schedule checkpoint T (now T | until T) [lag D] [max-window D]`: the
/// windows a schedule must yield, given as `expect window` sections.
#[derive(Debug)]
pub struct ScheduleLine {
    /// Its line number.
    pub line: usize,
    /// The zone's checkpoint.
    pub checkpoint: OffsetDateTime,
    /// The time of the run (windows due by then), or …
    pub now: Option<OffsetDateTime>,
    /// … the end of an explicit range.
    pub until: Option<OffsetDateTime>,
    /// The settle lag, if not the default.
    pub lag: Option<Duration>,
    /// The longest window, if not the default.
    pub max_window: Option<Duration>,
}

/// A parsed story.
#[derive(Debug)]
pub struct Story {
    /// The zone billed (`zone`, default `zone-1`).
    pub zone: ZoneId,
    /// The billing grid (`grid`, default hourly).
    pub grid: Grid,
    /// Accounts whose holdings are never billed (`exclude-account`).
    pub excluded_accounts: Vec<AccountId>,
    /// The event log, in file order.
    pub events: Vec<IpEvent>,
    /// The bytes of each `(address, bucket start)`, with the line that
    /// first gave them.
    pub traffic: BTreeMap<(IpAddr, OffsetDateTime), (usize, ByteCounts)>,
    /// The schedule line, if any.
    pub schedule: Option<ScheduleLine>,
    /// The windows and their expectations, in file order.
    pub sections: Vec<Section>,
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    let full = match text.strip_suffix('Z') {
        Some(rest) if rest.len() == 16 => format!("{rest}:00Z"),
        _ => text.to_owned(),
    };
    OffsetDateTime::parse(&full, &Rfc3339).map_err(|e| format!("bad time {text:?}: {e}"))
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}"))?;
    match unit {
        "s" => Ok(Duration::seconds(n)),
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        _ => Err(format!("bad duration unit in {text:?} (s, m, h or d)")),
    }
}

fn parse_u64(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("bad number {text:?}"))
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse().map_err(|_| format!("bad ip {text:?}"))
}

fn parse_account(text: &str) -> Result<AccountId, String> {
    AccountId::new(text).map_err(|e| e.to_string())
}

/// `START .. END` at `tokens`.
fn parse_range(tokens: &[&str]) -> Result<(OffsetDateTime, OffsetDateTime), String> {
    match tokens {
        [start, "..", end, ..] => Ok((parse_time(start)?, parse_time(end)?)),
        _ => Err(format!(
            "expected `START .. END`, found {:?}",
            tokens.join(" ")
        )),
    }
}

/// `sent N received N` in any order, either optional.
fn parse_bytes(tokens: &[&str]) -> Result<ByteCounts, String> {
    let mut bytes = ByteCounts::ZERO;
    let mut rest = tokens;
    while let [key, value, tail @ ..] = rest {
        match *key {
            "sent" => bytes.sent = parse_u64(value)?,
            "received" => bytes.received = parse_u64(value)?,
            other => return Err(format!("expected `sent` or `received`, found {other:?}")),
        }
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(format!("dangling {:?}", rest.join(" ")));
    }
    Ok(bytes)
}

impl Story {
    /// Parses a story.
    ///
    /// # Errors
    ///
    /// The first malformed line, with its number (0 when the story has no
    /// window).
    pub fn parse(text: &str) -> Result<Story, Failure> {
        let mut story = Story {
            zone: ZoneId::new("zone-1").map_err(|e| (0, e.to_string()))?,
            grid: Grid::HOURLY,
            excluded_accounts: Vec::new(),
            events: Vec::new(),
            traffic: BTreeMap::new(),
            schedule: None,
            sections: Vec::new(),
        };
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let tokens: Vec<&str> = content.split_whitespace().collect();
            parse_line(&mut story, line, &tokens).map_err(|msg| (line, msg))?;
        }
        if story.sections.is_empty() {
            return Err((0, "the story has no window".to_owned()));
        }
        Ok(story)
    }
}

fn parse_line(story: &mut Story, line: usize, tokens: &[&str]) -> Result<(), String> {
    let in_section = !story.sections.is_empty();
    let section = || "this line belongs before the first window".to_owned();
    match tokens {
        ["zone", name] if !in_section => {
            story.zone = ZoneId::new(*name).map_err(|e| e.to_string())?;
        }
        ["grid", step] if !in_section => {
            story.grid = Grid::new(parse_duration(step)?).map_err(|e| e.to_string())?;
        }
        ["exclude-account", id] if !in_section => {
            story.excluded_accounts.push(parse_account(id)?);
        }
        ["event", id, at, kind, account, ip, rest @ ..] if !in_section => {
            let zone = match rest {
                [] => story.zone.clone(),
                ["zone", z] => ZoneId::new(*z).map_err(|e| e.to_string())?,
                _ => return Err(format!("unexpected {:?} after the event", rest.join(" "))),
            };
            story.events.push(IpEvent {
                id: parse_u64(id)?,
                at: parse_time(at)?,
                zone,
                account: parse_account(account)?,
                ip: parse_ip(ip)?,
                kind: match *kind {
                    "assign" => IpEventKind::Assign,
                    "release" => IpEventKind::Release,
                    other => return Err(format!("event kind {other:?} is not assign or release")),
                },
            });
        }
        ["traffic", ip, at, rest @ ..] if !in_section => {
            let (ip, at, bytes) = (parse_ip(ip)?, parse_time(at)?, parse_bytes(rest)?);
            let slot = story
                .traffic
                .entry((ip, at))
                .or_insert((line, ByteCounts::ZERO));
            slot.1 = slot.1.checked_add(bytes).map_err(|e| e.to_string())?;
        }
        [
            "zone" | "grid" | "exclude-account" | "event" | "traffic",
            ..,
        ] if in_section => {
            return Err(section());
        }
        ["window", rest @ ..] => {
            let (start, end) = parse_range(rest)?;
            let window = CollectionWindow::new(start, end).map_err(|e| e.to_string())?;
            story.sections.push(Section {
                line,
                window: Some(window),
                ..Section::default()
            });
        }
        ["schedule", "checkpoint", checkpoint, rest @ ..] if story.schedule.is_none() => {
            let mut schedule = ScheduleLine {
                line,
                checkpoint: parse_time(checkpoint)?,
                now: None,
                until: None,
                lag: None,
                max_window: None,
            };
            let mut rest = rest;
            while let [key, value, tail @ ..] = rest {
                match *key {
                    "now" => schedule.now = Some(parse_time(value)?),
                    "until" => schedule.until = Some(parse_time(value)?),
                    "lag" => schedule.lag = Some(parse_duration(value)?),
                    "max-window" => schedule.max_window = Some(parse_duration(value)?),
                    other => return Err(format!("unknown schedule setting {other:?}")),
                }
                rest = tail;
            }
            if !rest.is_empty() || schedule.now.is_some() == schedule.until.is_some() {
                return Err("schedule needs exactly one of `now T` and `until T`".to_owned());
            }
            story.schedule = Some(schedule);
        }
        ["expect", "window", rest @ ..] if story.schedule.is_some() => {
            let (start, end) = parse_range(rest)?;
            let window = CollectionWindow::new(start, end).map_err(|e| e.to_string())?;
            story.sections.push(Section {
                line,
                window: Some(window),
                ..Section::default()
            });
        }
        ["expect", what, rest @ ..] => {
            let Some(current) = story.sections.last_mut() else {
                return Err("an expectation before any window".to_owned());
            };
            match (*what, rest) {
                ("record", [account, ip, tail @ ..]) => {
                    let (start, end) = parse_range(tail)?;
                    let bytes = parse_bytes(tail.get(3..).unwrap_or_default())?;
                    current.records.push((
                        line,
                        ExpectedRecord {
                            account: parse_account(account)?.to_string(),
                            ip: parse_ip(ip)?,
                            start,
                            end,
                            sent: bytes.sent,
                            received: bytes.received,
                        },
                    ));
                }
                ("no", ["records"]) => current.no_records = true,
                ("anomaly", [id, kind]) => {
                    current
                        .anomalies
                        .push((line, parse_u64(id)?, (*kind).to_owned()));
                }
                ("total", [account, tail @ ..]) => {
                    current.totals.push((
                        line,
                        parse_account(account)?.to_string(),
                        parse_bytes(tail)?,
                    ));
                }
                ("plan", ["pieces", p, "queries", q, "ips", i]) => {
                    let n = |t: &str| t.parse::<usize>().map_err(|_| format!("bad count {t:?}"));
                    current.plan = Some((line, [n(p)?, n(q)?, n(i)?]));
                }
                ("checkpoint", [at]) => current.checkpoint = Some((line, parse_time(at)?)),
                _ => return Err(format!("unknown expectation {:?}", tokens.join(" "))),
            }
        }
        _ => {
            return Err(format!(
                "unknown or misplaced statement {:?}",
                tokens.join(" ")
            ));
        }
    }
    Ok(())
}
