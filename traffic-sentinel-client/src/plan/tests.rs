//! Tests of planning, of the script text and of the form body.

use time::macros::{datetime, offset};

use time::{OffsetDateTime, UtcOffset};

use super::*;
use crate::request::{ANSWER_SLACK_BYTES, MAX_ROW_BYTES, MAX_SENTINEL_BYTES};
use crate::script::{SCRIPT_FOOTER, SCRIPT_HEADER, push_decimal, push_ip, ts_interval};
use usage_model::{QueryTag, TimeInterval};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn hour_query(tag: u32, ips: Vec<IpAddr>) -> TrafficQuery {
    TrafficQuery {
        tag: QueryTag(tag),
        interval: TimeInterval::new(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
        )
        .unwrap(),
        ips,
    }
}

fn ipv4s(count: usize) -> Vec<IpAddr> {
    // Every address is 14 characters long: `10.1xx.1xx.100`.
    assert!(count <= 15_000);
    (0..count)
        .map(|i| IpAddr::from([10, 100 + (i / 100) as u8, 100 + (i % 100) as u8, 100]))
        .collect()
}

fn config(
    builder: impl FnOnce(crate::MonitorConfigBuilder) -> crate::MonitorConfigBuilder,
) -> MonitorConfig {
    builder(MonitorConfig::builder("http://10.0.0.1:8080"))
        .build()
        .unwrap()
}

fn plan_error(config: &MonitorConfig, queries: &[TrafficQuery]) -> (QueryTag, String) {
    match plan_requests(config, queries) {
        Err(Error::Plan { tag, reason }) => (tag, reason),
        other => panic!("expected a plan error, got {other:?}"),
    }
}

#[test]
fn exact_script_for_a_small_query() {
    let config = config(|b| {
        b.include_zones(["EXTERNAL", "PEERING"])
            .exclude_zones(["INTERNAL"])
    });
    let query = hour_query(7, vec![ip("203.0.113.7"), ip("2001:db8::1")]);
    let requests = plan_requests(&config, std::slice::from_ref(&query)).unwrap();
    assert_eq!(requests.len(), 1);
    let expected = r#"var n = 0;
var q;
q = Query.topN("historytrmx", "ipsource,bytes", "ipsource = 203.0.113.7,2001:db8::1 & destinationzone = EXTERNAL,PEERING & destinationzone != INTERNAL", "20261101 10:00:00, 20261101 11:00:00", "bytes", 2);
q.run(function(row, table) { if (row[0]) { println("s,7," + row[0] + "," + row[1]); n++; } });
q = Query.topN("historytrmx", "ipdestination,bytes", "ipdestination = 203.0.113.7,2001:db8::1 & sourcezone = EXTERNAL,PEERING & sourcezone != INTERNAL", "20261101 10:00:00, 20261101 11:00:00", "bytes", 2);
q.run(function(row, table) { if (row[0]) { println("r,7," + row[0] + "," + row[1]); n++; } });
println("end," + n);"#;
    assert_eq!(requests[0].script(), expected);
    assert_eq!(
        requests[0].chunks(),
        &[QueryChunk {
            tag: QueryTag(7),
            interval: query.interval,
            ips: query.ips.clone(),
        }]
    );
    assert_eq!(requests[0].tags(), vec![QueryTag(7)]);
    assert_eq!(requests[0].max_rows(), 4);
}

#[test]
fn default_zones_and_empty_include_list() {
    let query = hour_query(1, vec![ip("192.0.2.1")]);
    let default = plan_requests(&config(|b| b), std::slice::from_ref(&query)).unwrap();
    assert!(default[0].script().contains(
        "\"ipsource = 192.0.2.1 & destinationzone = EXTERNAL\", \"20261101 10:00:00, 20261101 11:00:00\", \"bytes\", 1);"
    ));
    assert!(
        default[0]
            .script()
            .contains("\"ipdestination = 192.0.2.1 & sourcezone = EXTERNAL\", ")
    );
    let any_zone = config(|b| b.include_zones(Vec::<String>::new()));
    let script = plan_requests(&any_zone, std::slice::from_ref(&query)).unwrap()[0]
        .script()
        .to_owned();
    assert!(
        script.contains("\"ipsource = 192.0.2.1\", \"20261101"),
        "{script}"
    );
    assert!(
        script.contains("\"ipdestination = 192.0.2.1\", \"20261101"),
        "{script}"
    );
    assert!(!script.contains("zone"), "{script}");
    let exclude_only = config(|b| {
        b.include_zones(Vec::<String>::new())
            .exclude_zones(["A", "B"])
    });
    let script = plan_requests(&exclude_only, &[query]).unwrap()[0]
        .script()
        .to_owned();
    assert!(
        script.contains("\"ipsource = 192.0.2.1 & destinationzone != A,B\""),
        "{script}"
    );
    assert!(
        script.contains("\"ipdestination = 192.0.2.1 & sourcezone != A,B\""),
        "{script}"
    );
}

#[test]
fn interval_is_written_in_the_server_offset() {
    let interval = TimeInterval::new(
        datetime!(2026-11-01 22:00 UTC),
        datetime!(2026-11-02 00:00 UTC),
    )
    .unwrap();
    assert_eq!(
        ts_interval(interval, &offset!(+05:30).into()).unwrap(),
        "20261102 03:30:00, 20261102 05:30:00"
    );
    assert_eq!(
        ts_interval(interval, &offset!(-08:00).into()).unwrap(),
        "20261101 14:00:00, 20261101 16:00:00"
    );
    assert_eq!(
        ts_interval(interval, &UtcOffset::UTC.into()).unwrap(),
        "20261101 22:00:00, 20261102 00:00:00"
    );
    // Instants given in another offset are the same instants.
    let same = TimeInterval::new(
        datetime!(2026-11-02 03:30 +05:30),
        datetime!(2026-11-02 05:30 +05:30),
    )
    .unwrap();
    assert_eq!(
        ts_interval(same, &offset!(-08:00).into()).unwrap(),
        "20261101 14:00:00, 20261101 16:00:00"
    );
    let query = TrafficQuery {
        tag: QueryTag(3),
        interval,
        ips: vec![ip("192.0.2.1")],
    };
    let script = plan_requests(&config(|b| b.server_utc_offset(offset!(+05:30))), &[query])
        .unwrap()[0]
        .script()
        .to_owned();
    assert!(
        script.contains("\"20261102 03:30:00, 20261102 05:30:00\""),
        "{script}"
    );
}

#[test]
fn refuses_years_that_do_not_fit() {
    let query = TrafficQuery {
        tag: QueryTag(4),
        interval: TimeInterval::new(
            datetime!(9999-12-31 22:00 UTC),
            datetime!(9999-12-31 23:00 UTC),
        )
        .unwrap(),
        ips: vec![ip("192.0.2.1")],
    };
    assert!(plan_requests(&config(|b| b), std::slice::from_ref(&query)).is_ok());
    let (tag, reason) = plan_error(&config(|b| b.server_utc_offset(offset!(+05:30))), &[query]);
    assert_eq!(tag, QueryTag(4));
    assert!(reason.contains("yyyyMMdd"), "{reason}");
}

#[test]
fn refuses_invalid_queries_naming_tag_and_value() {
    let config = config(|b| b);
    let good = hour_query(1, vec![ip("192.0.2.1")]);

    let (tag, reason) = plan_error(&config, &[good.clone(), good.clone()]);
    assert_eq!(tag, QueryTag(1));
    assert!(reason.contains("more than one query"), "{reason}");

    let mut empty = hour_query(2, vec![ip("192.0.2.1")]);
    empty.interval = TimeInterval::new(
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 10:00 UTC),
    )
    .unwrap();
    let (tag, reason) = plan_error(&config, &[good.clone(), empty]);
    assert_eq!(tag, QueryTag(2));
    assert!(reason.contains("is empty"), "{reason}");

    let mut off_grid = hour_query(3, vec![ip("192.0.2.1")]);
    off_grid.interval = TimeInterval::new(
        datetime!(2026-11-01 10:00 UTC),
        datetime!(2026-11-01 10:30 UTC),
    )
    .unwrap();
    let (tag, reason) = plan_error(&config, &[off_grid]);
    assert_eq!(tag, QueryTag(3));
    assert!(
        reason.contains("interval end 2026-11-01 10:30:00.0 +00:00:00"),
        "{reason}"
    );
    assert!(reason.contains("grid of 3600 seconds"), "{reason}");

    let mut off_grid_ns = hour_query(4, vec![ip("192.0.2.1")]);
    off_grid_ns.interval = TimeInterval::new(
        datetime!(2026-11-01 10:00:00.5 UTC),
        datetime!(2026-11-01 11:00 UTC),
    )
    .unwrap();
    let (_, reason) = plan_error(&config, &[off_grid_ns]);
    assert!(reason.contains("interval start"), "{reason}");

    let (tag, reason) = plan_error(&config, &[hour_query(5, vec![])]);
    assert_eq!(tag, QueryTag(5));
    assert!(reason.contains("no ip"), "{reason}");

    let (tag, reason) = plan_error(
        &config,
        &[hour_query(
            6,
            vec![ip("192.0.2.1"), ip("2001:db8::1"), ip("2001:db8::1")],
        )],
    );
    assert_eq!(tag, QueryTag(6));
    assert!(
        reason.contains("ip 2001:db8::1 appears more than once"),
        "{reason}"
    );
}

#[test]
fn offset_intervals_on_the_utc_grid_are_accepted() {
    // 10:30 +05:30 is 05:00 UTC: on the hourly grid.
    let query = TrafficQuery {
        tag: QueryTag(1),
        interval: TimeInterval::new(
            datetime!(2026-11-01 10:30 +05:30),
            datetime!(2026-11-01 11:30 +05:30),
        )
        .unwrap(),
        ips: vec![ip("192.0.2.1")],
    };
    assert!(plan_requests(&config(|b| b), &[query]).is_ok());
}

#[test]
fn no_queries_means_no_requests() {
    assert!(plan_requests(&config(|b| b), &[]).unwrap().is_empty());
}

/// Checks the invariants of a plan and returns its requests' chunk sizes.
fn check_plan(
    config: &MonitorConfig,
    queries: &[TrafficQuery],
    requests: &[ScriptRequest],
) -> Vec<Vec<usize>> {
    let mut seen: Vec<(QueryTag, IpAddr)> = Vec::new();
    for request in requests {
        assert!(request.script().len() <= config.max_script_bytes());
        assert!(request.script().starts_with(SCRIPT_HEADER));
        assert!(request.script().ends_with(SCRIPT_FOOTER));
        let topns = request.script().matches("Query.topN(").count();
        assert_eq!(topns, 2 * request.chunks().len());
        for chunk in request.chunks() {
            assert!(!chunk.ips().is_empty());
            assert!(chunk.ips().len() <= config.max_ips_per_query());
            let n = format!("\"bytes\", {});\n", chunk.ips().len());
            assert!(request.script().contains(&n));
            seen.extend(chunk.ips().iter().map(|ip| (chunk.tag(), *ip)));
        }
    }
    let expected: Vec<(QueryTag, IpAddr)> = queries
        .iter()
        .flat_map(|q| q.ips.iter().map(move |ip| (q.tag, *ip)))
        .collect();
    assert_eq!(seen, expected, "every address asked exactly once, in order");
    requests
        .iter()
        .map(|r| r.chunks().iter().map(|c| c.ips().len()).collect())
        .collect()
}

#[test]
fn predicted_chunk_length_matches_the_script() {
    let config = config(|b| b.exclude_zones(["INTERNAL"]));
    for count in [1, 9, 10, 11, 99, 100, 101, 1000] {
        let mut ips = ipv4s(count);
        ips.push(ip("2001:db8::abcd:1"));
        let queries = [hour_query(4_000_000_000, ips)];
        let prepared = prepare_queries(&config, &queries).unwrap();
        let request = &plan_requests(&config, &queries).unwrap()[0];
        let ip_bytes: usize = (0..=count).map(|i| prepared[0].ip_text(i).len()).sum();
        assert_eq!(
            request.script().len(),
            SCRIPT_HEADER.len() + SCRIPT_FOOTER.len() + prepared[0].chunk_len(count + 1, ip_bytes)
        );
    }
}

#[test]
fn chunks_at_the_per_query_limit() {
    let config = config(|b| b.max_ips_per_query(100));
    let queries = [
        hour_query(1, ipv4s(250)),
        hour_query(2, ipv4s(100)),
        hour_query(3, ipv4s(1)),
    ];
    let requests = plan_requests(&config, &queries).unwrap();
    assert_eq!(
        check_plan(&config, &queries, &requests),
        vec![vec![100, 100, 50, 100, 1]]
    );
    assert_eq!(requests[0].max_rows(), 2 * 351);
    assert_eq!(
        requests[0].tags(),
        vec![QueryTag(1), QueryTag(2), QueryTag(3)]
    );
    assert_eq!(requests[0].script().matches("\"bytes\", 100);").count(), 6);
    assert_eq!(requests[0].script().matches("\"bytes\", 50);").count(), 2);
}

#[test]
fn requests_at_the_per_request_limit() {
    let base = config(|b| b.max_ips_per_query(10));
    let one_chunk = plan_requests(&base, &[hour_query(1, ipv4s(10))]).unwrap()[0]
        .script()
        .len();
    let chunk_len = one_chunk - SCRIPT_HEADER.len() - SCRIPT_FOOTER.len();
    // Room for exactly three 10-address chunks per request.
    let limit = SCRIPT_HEADER.len() + SCRIPT_FOOTER.len() + 3 * chunk_len;
    let config = config(|b| b.max_ips_per_query(10).max_script_bytes(limit));
    let queries = [hour_query(1, ipv4s(70))];
    let requests = plan_requests(&config, &queries).unwrap();
    assert_eq!(
        check_plan(&config, &queries, &requests),
        vec![vec![10, 10, 10], vec![10, 10, 10], vec![10]]
    );
    assert_eq!(requests[0].script().len(), limit);
    // One byte less: the third chunk of each request is cut short.
    let tight = config_with_limit(limit - 1);
    let requests = plan_requests(&tight, &queries).unwrap();
    let sizes = check_plan(&tight, &queries, &requests);
    assert_eq!(sizes.len(), 3);
    assert_eq!(sizes[0], vec![10, 10, 9]);
    assert_eq!(sizes.iter().flatten().sum::<usize>(), 70);
}

fn config_with_limit(limit: usize) -> MonitorConfig {
    config(|b| b.max_ips_per_query(10).max_script_bytes(limit))
}

#[test]
fn several_queries_share_requests_and_split_across_them() {
    let single = plan_requests(&config(|b| b), &[hour_query(1, ipv4s(1))]).unwrap()[0]
        .script()
        .len();
    // Room for a bit more than two single-address queries.
    let config = config(|b| b.max_script_bytes(2 * single));
    let queries: Vec<_> = (0..5).map(|t| hour_query(t, ipv4s(1))).collect();
    let requests = plan_requests(&config, &queries).unwrap();
    assert_eq!(
        check_plan(&config, &queries, &requests),
        vec![vec![1, 1], vec![1, 1], vec![1]]
    );
}

#[test]
fn a_single_address_that_does_not_fit_is_an_error() {
    let config = config(|b| b.max_script_bytes(500));
    let (tag, reason) = plan_error(&config, &[hour_query(9, vec![ip("192.0.2.1")])]);
    assert_eq!(tag, QueryTag(9));
    assert!(reason.contains("single ip 192.0.2.1"), "{reason}");
    assert!(reason.contains("limit of 500 script bytes"), "{reason}");
}

#[test]
fn form_body_is_exact() {
    let request =
        &plan_requests(&config(|b| b), &[hour_query(7, vec![ip("2001:db8::1")])]).unwrap()[0];
    let body = request.form_body();
    assert!(
        body.starts_with(
            "script=var+n+%3D+0%3B%0Avar+q%3B%0Aq+%3D+Query.topN%28%22historytrmx%22%2C"
        )
    );
    assert!(body.ends_with("%22end%2C%22+%2B+n%29%3B&authenticate=basic&resultFormat=txt"));
    let decoded: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        decoded,
        vec![
            ("script".to_owned(), request.script().to_owned()),
            ("authenticate".to_owned(), "basic".to_owned()),
            ("resultFormat".to_owned(), "txt".to_owned()),
        ]
    );
}

#[test]
fn answer_limit_follows_the_row_count() {
    let request = &plan_requests(&config(|b| b), &[hour_query(7, ipv4s(3))]).unwrap()[0];
    assert_eq!(request.max_rows(), 6);
    assert_eq!(
        request.max_answer_bytes(),
        6 * MAX_ROW_BYTES + MAX_SENTINEL_BYTES + ANSWER_SLACK_BYTES
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(1000))]

    /// Whatever the limits, every address is asked exactly once, in
    /// order, no chunk passes the per-query limit, no script passes the
    /// per-request limit, and every request but the last is full enough
    /// that the next address could not have joined it.
    #[test]
    fn plans_respect_the_limits(
        max_ips in 1usize..25,
        max_bytes in 1_200usize..8_000,
        sizes in proptest::collection::vec(1usize..60, 1..5),
        v6 in proptest::prelude::any::<bool>(),
    ) {
        let config = config(|b| b.max_ips_per_query(max_ips).max_script_bytes(max_bytes).exclude_zones(["INTERNAL"]));
        let queries: Vec<TrafficQuery> = sizes
            .iter()
            .enumerate()
            .map(|(tag, &size)| {
                let ips = (0..size)
                    .map(|i| {
                        if v6 && i % 2 == 1 {
                            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, tag as u16, i as u16])
                        } else {
                            IpAddr::from([10, tag as u8, (i >> 8) as u8, i as u8])
                        }
                    })
                    .collect();
                hour_query(tag as u32, ips)
            })
            .collect();
        let requests = plan_requests(&config, &queries).unwrap();
        check_plan(&config, &queries, &requests);
        let total: usize = sizes.iter().sum();
        proptest::prop_assert!(requests.len() <= total);
        let prepared = prepare_queries(&config, &queries).unwrap();
        for pair in requests.windows(2) {
            let next = &pair[1].chunks()[0];
            let query = prepared.iter().find(|q| q.query.tag == next.tag()).unwrap();
            let first_ip = next.ips()[0].to_string();
            // The first address of the next request did not fit in this one.
            proptest::prop_assert!(pair[0].script().len() + query.chunk_len(1, first_ip.len()) > max_bytes);
        }
    }
}

/// The script of `request` as the straightforward writer makes it:
/// `Display` for every address and number, `format!` for every part.
fn reference_script(config: &MonitorConfig, request: &ScriptRequest) -> String {
    let mut script = String::from(SCRIPT_HEADER);
    for chunk in request.chunks() {
        let interval_text = ts_interval(chunk.interval(), config.server_time_zone()).unwrap();
        let ips: Vec<String> = chunk.ips().iter().map(ToString::to_string).collect();
        for side in Side::BOTH {
            let ip_field = match side {
                Side::Sent => "ipsource",
                Side::Received => "ipdestination",
            };
            let mut filter = format!("{ip_field} = {}", ips.join(","));
            for (zones, operator) in [
                (config.include_zones(), "="),
                (config.exclude_zones(), "!="),
            ] {
                if !zones.is_empty() {
                    let zones: Vec<&str> = zones.iter().map(|z| z.as_str()).collect();
                    filter += &format!(" & {} {operator} {}", side.zone_field(), zones.join(","));
                }
            }
            script += &format!(
                "q = Query.topN(\"historytrmx\", \"{ip_field},bytes\", \"{filter}\", \"{interval_text}\", \"bytes\", {});\nq.run(function(row, table) {{ if (row[0]) {{ println(\"{},{},\" + row[0] + \",\" + row[1]); n++; }} }});\n",
                ips.len(),
                side.letter(),
                chunk.tag(),
            );
        }
    }
    script + SCRIPT_FOOTER
}

fn any_ip() -> impl proptest::strategy::Strategy<Value = IpAddr> {
    use proptest::prelude::*;
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from),
        // IPv4-mapped and -compatible addresses, runs of zeros.
        any::<[u8; 4]>().prop_map(|v4| IpAddr::V6(std::net::Ipv4Addr::from(v4).to_ipv6_mapped())),
        (any::<[u16; 2]>(), 0usize..8).prop_map(|(words, at)| {
            let mut segments = [0u16; 8];
            segments[at] = words[0];
            segments[7 - at] = words[1];
            IpAddr::from(segments)
        }),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

    /// The script is exactly what the straightforward writer makes, and
    /// its length is the predicted one.
    #[test]
    fn scripts_match_the_straightforward_writer(
        max_ips in 1usize..30,
        max_bytes in 1_500usize..20_000,
        include in proptest::collection::vec("[A-Za-z0-9_.-]{1,8}", 0..3),
        exclude in proptest::collection::vec("[A-Za-z0-9_.-]{1,8}", 0..3),
        offset_minutes in -12 * 60i32..=14 * 60,
        queries in proptest::collection::vec(
            (proptest::collection::btree_set(any_ip(), 1..40), 0u32..4_000_000_000, 0i64..48, 1i64..48),
            1..5,
        ),
        shuffle in proptest::prelude::any::<bool>(),
    ) {
        let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
        let config = config(|b| {
            b.max_ips_per_query(max_ips)
                .max_script_bytes(max_bytes)
                .include_zones(include)
                .exclude_zones(exclude)
                .server_utc_offset(offset)
        });
        let mut tags = HashSet::new();
        let queries: Vec<TrafficQuery> = queries
            .into_iter()
            .filter(|(_, tag, _, _)| tags.insert(*tag))
            .map(|(ips, tag, start_hours, hours)| {
                let start = datetime!(2026-11-01 00:00 UTC) + time::Duration::hours(start_hours);
                let mut ips: Vec<IpAddr> = ips.into_iter().collect();
                if shuffle {
                    ips.reverse();
                }
                TrafficQuery {
                    tag: QueryTag(tag),
                    interval: TimeInterval::new(start, start + time::Duration::hours(hours)).unwrap(),
                    ips,
                }
            })
            .collect();
        let requests = plan_requests(&config, &queries).unwrap();
        check_plan(&config, &queries, &requests);
        for request in &requests {
            proptest::prop_assert_eq!(request.script(), reference_script(&config, request));
        }
    }

    /// Addresses and numbers are written as `Display` writes them.
    #[test]
    fn ips_and_numbers_match_display(ip in any_ip(), value in proptest::prelude::any::<u64>(), small in 0u64..1000) {
        let mut text = String::from("x");
        push_ip(&mut text, ip);
        proptest::prop_assert_eq!(&text[1..], ip.to_string());
        for number in [value, small] {
            let mut text = String::new();
            push_decimal(&mut text, number);
            proptest::prop_assert_eq!(text, number.to_string());
        }
    }
}

#[test]
fn form_body_of_a_whole_script_matches_url() {
    let config = config(|b| b.exclude_zones(["INTERNAL"]));
    let mut ips = ipv4s(300);
    ips.push(ip("2001:db8::abcd:1"));
    for request in plan_requests(&config, &[hour_query(12, ips)]).unwrap() {
        let expected: String =
            url::form_urlencoded::byte_serialize(request.script().as_bytes()).collect();
        assert_eq!(
            request.form_body(),
            format!("script={expected}&authenticate=basic&resultFormat=txt")
        );
    }
}

#[test]
fn repeated_addresses_out_of_order_are_found() {
    let ips = [
        ip("10.0.0.3"),
        ip("10.0.0.1"),
        ip("10.0.0.2"),
        ip("10.0.0.1"),
        ip("10.0.0.3"),
    ];
    assert_eq!(first_repeated(&ips), Some(ip("10.0.0.1")));
    assert_eq!(first_repeated(&ips[..3]), None);
    assert_eq!(
        first_repeated(&[ip("10.0.0.1"), ip("10.0.0.1")]),
        Some(ip("10.0.0.1"))
    );
}

/// The intervals a plan sends, as a server in `zone` reads their text back:
/// `(tag, [start, end))` per chunk.
fn read_back(
    requests: &[ScriptRequest],
    zone: &usage_model::ServerTimeZone,
) -> Vec<(QueryTag, OffsetDateTime, OffsetDateTime)> {
    let format = time::macros::format_description!("[year][month][day] [hour]:[minute]:[second]");
    let mut read = Vec::new();
    for request in requests {
        for chunk in request.chunks() {
            let text = ts_interval(chunk.interval(), zone).unwrap();
            assert!(request.script().contains(&format!("\"{text}\"")), "{text}");
            let (start, end) = text.split_once(", ").unwrap();
            let local = |t: &str| time::PrimitiveDateTime::parse(t, &format).unwrap();
            read.push((
                chunk.tag(),
                zone.from_local(local(start)).unwrap(),
                zone.from_local(local(end)).unwrap(),
            ));
        }
    }
    read
}

/// Around Berlin's autumn fold (2026-10-25: 03:00 CEST back to 02:00 CET at
/// 01:00 UTC, so local 02:00–03:00 is both [00:00, 01:00) and [01:00,
/// 02:00) UTC), with an hourly and a minute grid and pieces of many lengths
/// tiling the night: as the server reads the script back, no interval goes
/// backwards, no two overlap (each bucket asked at most once), the night is
/// covered whole, and every interval that does not touch the repeated hour
/// is read exactly as asked.
#[test]
fn the_autumn_fold_asks_each_bucket_at_most_once() {
    let zone = usage_model::ServerTimeZone::named("Europe/Berlin").unwrap();
    let night = (
        datetime!(2026-10-24 22:00 UTC),
        datetime!(2026-10-25 04:00 UTC),
    );
    let repeated = (
        datetime!(2026-10-25 00:00 UTC),
        datetime!(2026-10-25 02:00 UTC),
    );
    let minute_pieces = [7i64, 13, 20, 30, 45, 60, 90, 17, 3, 1, 24, 50];
    for (grid, lengths) in [
        (usage_model::Grid::HOURLY, vec![60i64, 60, 120, 60, 60, 60]),
        (usage_model::Grid::HOURLY, vec![60i64, 60, 60, 60, 120]),
        (usage_model::Grid::MINUTELY, minute_pieces.to_vec()),
        (
            usage_model::Grid::MINUTELY,
            minute_pieces.iter().rev().copied().collect(),
        ),
    ] {
        let mut queries = Vec::new();
        let mut at = night.0;
        for (tag, minutes) in lengths.iter().cycle().enumerate() {
            if at >= night.1 {
                break;
            }
            let end = (at + time::Duration::minutes(*minutes)).min(night.1);
            queries.push(TrafficQuery {
                tag: QueryTag(tag as u32),
                interval: TimeInterval::new(at, end).unwrap(),
                ips: vec![ip("192.0.2.1")],
            });
            at = end;
        }
        let config = config(|b| b.granularity(grid).server_time_zone(zone.clone()));
        let requests = plan_requests(&config, &queries).unwrap();
        let mut read = read_back(&requests, &zone);
        for &(tag, start, end) in &read {
            assert!(start < end, "{grid}: tag {tag} read as [{start}, {end})");
            let asked = queries[tag.0 as usize].interval;
            if asked.end() <= repeated.0 || asked.start() >= repeated.1 {
                assert_eq!(
                    (start, end),
                    (asked.start(), asked.end()),
                    "{grid}: tag {tag}"
                );
            }
        }
        read.sort_by_key(|&(_, start, _)| start);
        assert_eq!(read.first().map(|r| r.1), Some(night.0), "{grid}");
        assert_eq!(read.last().map(|r| r.2), Some(night.1), "{grid}");
        for pair in read.windows(2) {
            // Neither overlapping nor leaving a gap: each bucket once.
            assert_eq!(pair[0].2, pair[1].1, "{grid}: {pair:?}");
        }
        // The queries wholly in the first reading are the ones not sent.
        let sent: Vec<QueryTag> = read.iter().map(|r| r.0).collect();
        for query in &queries {
            let first = (repeated.0, repeated.0 + time::Duration::HOUR);
            let inside = query.interval.start() >= first.0 && query.interval.end() <= first.1;
            assert_eq!(!sent.contains(&query.tag), inside, "{grid}: {query:?}");
        }
        // A boundary in the second reading is written as its earlier
        // reading: on the hourly grid, the query that starts at 01:00 UTC
        // is read from 00:00 UTC.
        let at_the_change = queries
            .iter()
            .find(|q| q.interval.start() == repeated.0 + time::Duration::HOUR);
        if let (usage_model::Grid::HOURLY, Some(query)) = (grid, at_the_change) {
            let read_from = read.iter().find(|r| r.0 == query.tag).map(|r| r.1);
            assert_eq!(read_from, Some(repeated.0), "{read:?}");
        }
    }
}
