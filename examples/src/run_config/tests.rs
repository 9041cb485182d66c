//! Tests of the `run` configuration.

use std::path::Path;

use time::macros::{datetime, offset};

use super::{
    ConfigError, DEFAULT_GRANULARITY, DEFAULT_INTERVAL, DEFAULT_LAG, DEFAULT_MAX_WINDOW,
    MonitorCredentials, MonitorSource, RunConfig, ServerTimeZone,
};

const PATH: &str = "/etc/traffic-usage.toml";

fn parse(text: &str) -> Result<RunConfig, ConfigError> {
    RunConfig::parse(text, Path::new(PATH))
}

fn error(text: &str) -> String {
    match parse(text) {
        Ok(config) => panic!("accepted {text:?} as {config:?}"),
        Err(error) => error.to_string(),
    }
}

/// The example of DESIGN §12, with the commented keys set.
const DESIGN_EXAMPLE: &str = r#"
db = "usage.sqlite"            # or postgres://…, mysql://…
events = "events.jsonl"        # or mysql://…/cloud
interval = "1h"                # how often a pass runs
lag = "2h"
max_window = "1d"
exclude_accounts = ["1"]

[[monitor]]                    # one per zone, like addTrafficMonitor
zone = "zone-1"
url = "http://10.147.28.100:8080"
include_zones = ["EXTERNAL"]   # traffic.sentinel.include.zones
exclude_zones = []             # traffic.sentinel.exclude.zones
granularity = "1h"
server_time_zone = "UTC"       # an IANA name or ±HH:MM
user = "guest"; password_env = "TS_PASSWORD"
"#;

#[test]
fn the_design_example_is_read_key_by_key() {
    // The `;` of the design's comment is not TOML: one key per line.
    let config = parse(&DESIGN_EXAMPLE.replace("; ", "\n")).unwrap();
    assert_eq!(config.db, "usage.sqlite");
    assert_eq!(config.events, "events.jsonl");
    assert_eq!(config.interval, std::time::Duration::from_secs(3600));
    assert_eq!(config.lag, time::Duration::hours(2));
    assert_eq!(config.max_window, time::Duration::days(1));
    assert_eq!(config.exclude_accounts.len(), 1);
    assert_eq!(config.exclude_accounts[0].as_str(), "1");
    assert_eq!(config.cloudstack_resource_type, "DirectAttached");
    assert!(!config.events_from_cloudstack());
    let [monitor] = config.monitors.as_slice() else {
        panic!("one monitor expected: {config:?}");
    };
    assert_eq!(monitor.zone.as_str(), "zone-1");
    assert_eq!(
        monitor.source,
        MonitorSource::Url("http://10.147.28.100:8080".parse().unwrap())
    );
    let names = |zones: &[traffic_sentinel_client::TsZone]| {
        zones
            .iter()
            .map(|z| z.as_str().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&monitor.include_zones), ["EXTERNAL"]);
    assert!(monitor.exclude_zones.is_empty());
    assert_eq!(monitor.granularity, 3600);
    assert_eq!(
        monitor.server_time_zone,
        ServerTimeZone::Named("UTC".into())
    );
    assert_eq!(
        monitor.credentials,
        Some(MonitorCredentials {
            user: "guest".into(),
            password_env: "TS_PASSWORD".into()
        })
    );
    assert_eq!(monitor.line, 10);
}

#[test]
fn absent_keys_take_their_defaults() {
    let config = parse(
        "db = \"u.sqlite\"\nevents = \"e.jsonl\"\n[[monitor]]\nzone = \"z\"\nurl = \"https://ts.example\"\n",
    )
    .unwrap();
    assert_eq!(
        (config.interval, config.lag, config.max_window),
        (DEFAULT_INTERVAL, DEFAULT_LAG, DEFAULT_MAX_WINDOW)
    );
    assert_eq!(
        (config.db_password_env, config.events_password_env),
        (None, None)
    );
    assert!(config.exclude_accounts.is_empty());
    let monitor = &config.monitors[0];
    assert_eq!(monitor.granularity, DEFAULT_GRANULARITY);
    assert_eq!(monitor.include_zones[0].as_str(), "EXTERNAL");
    assert_eq!(monitor.include_zones.len(), 1);
    assert!(monitor.exclude_zones.is_empty());
    assert_eq!(
        monitor.server_time_zone,
        ServerTimeZone::Offset(offset!(UTC))
    );
    assert_eq!(
        (monitor.credentials.clone(), monitor.cloudstack_host_id),
        (None, None)
    );
    assert_eq!(
        (monitor.timeout, monitor.retries, monitor.from),
        (None, None, None)
    );
}

/// A config with one monitor of zone `z`; `top` and `monitor` are added to
/// the top level (lines 3…) and to the monitor table.
fn config_with(top: &str, monitor: &str) -> String {
    format!(
        "db = \"u.sqlite\"\nevents = \"e.jsonl\"\n{top}\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts:8080\"\n{monitor}\n"
    )
}

#[test]
fn values_are_read_in_every_accepted_form() {
    type Check = fn(&RunConfig) -> bool;
    let cases: &[(&str, &str, Check)] = &[
        ("interval = \"5s\"", "", |c| c.interval.as_secs() == 5),
        ("interval = \"1h30m\"", "", |c| c.interval.as_secs() == 5400),
        ("lag = \"0\"", "", |c| c.lag.is_zero()),
        ("lag = 0", "", |c| c.lag.is_zero()),
        ("lag = \"0s\"", "", |c| c.lag.is_zero()),
        ("max_window = \"90m\"", "", |c| {
            c.max_window.whole_minutes() == 90
        }),
        ("exclude_accounts = [1, \"acct-2\"]", "", |c| {
            c.exclude_accounts
                .iter()
                .map(|a| a.as_str())
                .eq(["1", "acct-2"])
        }),
        ("", "granularity = 60", |c| c.monitors[0].granularity == 60),
        ("", "granularity = \"60\"", |c| {
            c.monitors[0].granularity == 60
        }),
        ("", "granularity = \"1m\"", |c| {
            c.monitors[0].granularity == 60
        }),
        ("", "granularity = \"1d\"", |c| {
            c.monitors[0].granularity == 86_400
        }),
        ("", "server_time_zone = \"+05:30\"", |c| {
            c.monitors[0].server_time_zone == ServerTimeZone::Offset(offset!(+05:30))
        }),
        ("", "server_time_zone = \"-08:00\"", |c| {
            c.monitors[0].server_time_zone == ServerTimeZone::Offset(offset!(-08:00))
        }),
        ("", "server_time_zone = \"europe/berlin\"", |c| {
            c.monitors[0].server_time_zone == ServerTimeZone::Named("Europe/Berlin".into())
        }),
        (
            "",
            "include_zones = []\nexclude_zones = [\"INTERNAL\", \"dmz.2\"]",
            |c| c.monitors[0].include_zones.is_empty() && c.monitors[0].exclude_zones.len() == 2,
        ),
        ("", "timeout = \"30s\"\nretries = 0", |c| {
            (c.monitors[0].timeout, c.monitors[0].retries)
                == (Some(std::time::Duration::from_secs(30)), Some(0))
        }),
        ("", "from = \"2026-11-01T01:00:00+01:00\"", |c| {
            c.monitors[0].from == Some(datetime!(2026-11-01 00:00 UTC))
        }),
        ("", "from = 2026-11-01T00:00:00Z", |c| {
            c.monitors[0].from == Some(datetime!(2026-11-01 00:00 UTC))
        }),
        ("", "zone = 7", |c| c.monitors[0].zone.as_str() == "7"),
    ];
    for (top, monitor, check) in cases {
        // A monitor line given twice would be a TOML error: drop the base zone.
        let text = if monitor.starts_with("zone") {
            config_with(top, monitor).replacen("zone = \"z\"\n", "", 1)
        } else {
            config_with(top, monitor)
        };
        let config = parse(&text).unwrap_or_else(|e| panic!("{top} / {monitor}: {e}"));
        assert!(check(&config), "{top} / {monitor}: {config:?}");
    }
}

#[test]
fn cloudstack_sources_and_sinks() {
    let text = "db = \"mysql://usage:secret@db.example/cloud_usage\"\n\
        events = \"mysql://cloud@db.example/cloud\"\n\
        events_password_env = \"CLOUD_DB_PASSWORD\"\n\
        cloudstack_resource_type = \"VirtualNetwork\"\n\
        exclude_accounts = [1, \"2\"]\n\
        [[monitor]]\nzone = 1\nurl = \"cloudstack\"\n\
        [[monitor]]\nzone = \"2\"\nurl = \"http://ts2:8080\"\ncloudstack_host_id = 5\n";
    let config = parse(text).unwrap();
    assert!(config.events_from_cloudstack());
    assert_eq!(config.cloudstack_resource_type, "VirtualNetwork");
    assert_eq!(
        config.events_password_env.as_deref(),
        Some("CLOUD_DB_PASSWORD")
    );
    assert_eq!(config.monitors[0].source, MonitorSource::CloudStack);
    assert_eq!(config.monitors[0].include_zones[0].as_str(), "EXTERNAL");
    assert_eq!(config.monitors[1].cloudstack_host_id, Some(5));
    let debug = format!("{config:?}");
    assert!(!debug.contains("secret"), "{debug}");
    assert!(debug.contains("usage:***@db.example"), "{debug}");
}

#[test]
fn every_refusal_names_the_file_the_line_and_the_key() {
    let prefix = format!("config {PATH}: ");
    let cases: &[(&str, &str)] = &[
        // Durations.
        (
            "db = \"u\"\nevents = \"e\"\ninterval = \"5x\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: key \"interval\": invalid duration \"5x\": unknown unit 'x' after 5; expected s, m, h, d or w",
        ),
        (
            "db = \"u\"\nevents = \"e\"\ninterval = \"0s\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: key \"interval\": invalid duration \"0s\": duration \"0s\" must be positive",
        ),
        (
            "db = \"u\"\nevents = \"e\"\nmax_window = 3600\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: key \"max_window\": invalid duration \"3600\": missing unit after 3600; expected a duration like 90s, 30m, 2h, 1d or 1h30m",
        ),
        (
            "db = \"u\"\nevents = \"e\"\nlag = true\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: key \"lag\": expected a duration like \"90s\", \"30m\", \"2h\" or \"1d\", found boolean true",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\ntimeout = \"-1s\"\n",
            "line 6: key \"timeout\": invalid duration \"-1s\": expected a number at \"-1s\"; expected a duration like 90s, 30m, 2h, 1d or 1h30m",
        ),
        // A window shorter than a monitor's buckets.
        (
            "db = \"u\"\nevents = \"e\"\nmax_window = \"30m\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\ngranularity = \"1h\"\n",
            "line 3: key \"max_window\": 30m is shorter than the granularity of 3600 s of the monitor of zone z (line 5)",
        ),
        // A key given twice.
        (
            "db = \"u\"\nevents = \"e\"\nlag = \"1h\"\nlag = \"2h\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 4: duplicate key \"lag\"",
        ),
        // Unknown keys.
        (
            "db = \"u\"\nevents = \"e\"\nintervall = \"1h\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: unknown key \"intervall\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nlag = \"1h\"\n",
            "line 6: unknown key \"lag\" in a [[monitor]] table; top-level keys go before the first [[monitor]]",
        ),
        (
            "db = \"u\"\nevents = \"e\"\ngranularity = 60\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: unknown key \"granularity\" at the top level; it belongs in a [[monitor]] table",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n\n[extra]\n",
            "line 7: unknown key \"extra\"",
        ),
        // Missing keys.
        (
            "events = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "missing key \"db\"",
        ),
        (
            "db = \"u\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "missing key \"events\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n\n[[monitor]]\nurl = \"http://ts\"\n",
            "line 4: [[monitor]] table: missing key \"zone\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"a\"\nurl = \"http://ts\"\n[[monitor]]\nzone = \"b\"\n",
            "line 6: [[monitor]] table: missing key \"url\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n",
            "no [[monitor]] table; add one per zone",
        ),
        // Duplicate zones: the line of the second.
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://a\"\n[[monitor]]\nurl = \"http://b\"\nzone = \"z\"\n",
            "line 8: key \"zone\": zone \"z\" already has a monitor (line 4); one monitor per zone",
        ),
        // Monitor URLs.
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"ftp://ts\"\n",
            "line 5: key \"url\": invalid monitor URL \"ftp://ts\": scheme \"ftp\" is not supported; use http or https",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"10.147.28.100:8080\"\n",
            "line 5: key \"url\": invalid URL \"10.147.28.100:8080\": relative URL without a base; expected a URL like \"http://10.147.28.100:8080\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://\"\n",
            "line 5: key \"url\": invalid URL \"http://\": empty host; expected a URL like \"http://10.147.28.100:8080\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://guest:secret@ts:8080\"\n",
            "line 5: key \"url\": invalid monitor URL \"http://guest:***@ts:8080\": it must not hold user info; use the keys user and password_env",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts/inmsf/Query\"\n",
            "line 5: key \"url\": invalid monitor URL \"http://ts/inmsf/Query\": it must not have a path (found \"/inmsf/Query\")",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"cloudstack\"\n",
            "line 5: key \"url\": \"cloudstack\" reads the monitor from CloudStack's database and needs events = \"mysql://…/cloud\"",
        ),
        // Store and events locations.
        (
            "db = \"ftp://u:secret@h/x\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 1: key \"db\": URL scheme \"ftp\" is not supported in \"ftp://u:***@h/x\"; expected a SQLite file path, postgres://USER@HOST/DB or mysql://USER@HOST/DB",
        ),
        (
            "db = \"postgres://u:secret@h\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 1: key \"db\": URL \"postgres://u:***@h\" names no database",
        ),
        (
            "db = \"u\"\nevents = \"postgres://h/cloud\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 2: key \"events\": URL scheme \"postgres\" is not supported in \"postgres://h/cloud\"; expected a JSON Lines file path or mysql://USER@HOST/cloud",
        ),
        (
            "db = \"\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 1: key \"db\": must not be empty; expected a SQLite file path, postgres://USER@HOST/DB or mysql://USER@HOST/DB",
        ),
        (
            "db = \"mysql://u:secret@h/db\"\ndb_password_env = \"DB_PASSWORD\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 2: key \"db_password_env\": the db URL already holds a password; keep only one of them",
        ),
        (
            "db = \"u\"\nevents = \"e\"\nevents_password_env = \"PW\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: key \"events_password_env\": events is a file, which takes no password",
        ),
        (
            "db = \"u\"\nevents = \"e\"\ncloudstack_resource_type = \"DirectAttached\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: key \"cloudstack_resource_type\": only applies to events read from CloudStack (events = \"mysql://…/cloud\")",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\ncloudstack_host_id = 5\n",
            "line 6: key \"cloudstack_host_id\": posting to CloudStack's user_statistics needs db = \"mysql://…\" on CloudStack's database server",
        ),
        (
            "db = \"u\"\nevents = \"mysql://h/cloud\"\n[[monitor]]\nzone = \"zone-1\"\nurl = \"cloudstack\"\n",
            "line 4: key \"zone\": \"zone-1\" is not a CloudStack id: with events from CloudStack, zone holds CloudStack's numeric ids",
        ),
        // Granularity.
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\ngranularity = 7\n",
            "line 6: key \"granularity\": invalid granularity \"7\": expected seconds or a duration like 60, \"1m\" or \"1h\" that divides a day (86400 s)",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\ngranularity = \"7m\"\n",
            "line 6: key \"granularity\": invalid granularity \"7m\": expected seconds or a duration like 60, \"1m\" or \"1h\" that divides a day (86400 s)",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\ngranularity = -60\n",
            "line 6: key \"granularity\": invalid granularity \"-60\": expected seconds or a duration like 60, \"1m\" or \"1h\" that divides a day (86400 s)",
        ),
        // Zones and names.
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\ninclude_zones = [\"EXT ERNAL\"]\n",
            "line 6: key \"include_zones\": invalid zone \"EXT ERNAL\": character ' ' is not allowed; use only [A-Za-z0-9_.-]",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\ninclude_zones = \"EXTERNAL\"\n",
            "line 6: key \"include_zones\": expected an array like [\"EXTERNAL\"], found string \"EXTERNAL\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nexclude_zones = [\"EXTERNAL\"]\n",
            "line 6: key \"exclude_zones\": zone \"EXTERNAL\" is also in include_zones",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"\"\nurl = \"http://ts\"\n",
            "line 4: key \"zone\": invalid zone \"\": must not be empty",
        ),
        // Time zones.
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nserver_time_zone = \"Mars/Olympus_Mons\"\n",
            "line 6: key \"server_time_zone\": unknown time zone \"Mars/Olympus_Mons\"; expected an IANA name like \"Europe/Berlin\" or an offset like \"+05:30\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nserver_time_zone = \"Etc/Unknown\"\n",
            "line 6: key \"server_time_zone\": unknown time zone \"Etc/Unknown\"; expected an IANA name like \"Europe/Berlin\" or an offset like \"+05:30\"",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nserver_time_zone = \"+25:00\"\n",
            "line 6: key \"server_time_zone\": invalid offset \"+25:00\": offset hours 25 out of range 0..=23",
        ),
        // Credentials and limits.
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nuser = \"guest\"\n",
            "line 6: key \"user\": needs password_env, the environment variable holding the password",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\npassword_env = \"TS_PASSWORD\"\n",
            "line 6: key \"password_env\": needs user",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nuser = \"guest:secret\"\npassword_env = \"P\"\n",
            "line 6: key \"user\": must not contain ':'",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nuser = \"g\"\npassword_env = \"TS-PASSWORD\"\n",
            "line 7: key \"password_env\": invalid environment variable name \"TS-PASSWORD\": expected letters, digits and _",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nretries = 11\n",
            "line 6: key \"retries\": 11 is out of range 0..=10",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[[monitor]]\nzone = \"z\"\nurl = \"http://ts\"\nfrom = \"2026-11-01T00:00:00\"\n",
            "line 6: key \"from\": invalid time \"2026-11-01T00:00:00\": expected an RFC 3339 time like 2026-11-01T10:00:00Z: add Z (UTC) or an offset like +01:00 to the time",
        ),
        // The shape of the file.
        (
            "db = \"u\"\nevents = \"e\"\nmonitor = 5\n",
            "line 3: invalid type: integer `5`, expected [[monitor]] tables for key `monitor`",
        ),
        (
            "db = \"u\"\nevents = \"e\"\n[monitor]\nzone = \"z\"\nurl = \"http://ts\"\n",
            "line 3: invalid type: map, expected [[monitor]] tables for key `monitor`",
        ),
        (
            "db = \"u\"\nevents = \"e\"\nmonitor = [5]\n",
            "line 3: invalid type: integer `5`, expected a [[monitor]] table",
        ),
        (
            "db = \"u\"\nevents = \"e\"\nlag = \"2h\nmax_window = \"1d\"\n",
            "line 3: invalid basic string, expected `\"`",
        ),
        (
            "db = \"u\"\ndb = \"v\"\nevents = \"e\"\n",
            "line 2: duplicate key \"db\"",
        ),
    ];
    let mut wrong = Vec::new();
    for (text, expected) in cases {
        let message = error(text);
        if message != format!("{prefix}{expected}") {
            wrong.push(format!(
                "{text:?}\n  gives    {message}\n  expected {prefix}{expected}"
            ));
        }
        assert!(!message.contains('\n'), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_missing_file_is_named() {
    let message = RunConfig::load(Path::new("/nonexistent/traffic-usage.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("config /nonexistent/traffic-usage.toml: cannot read: "),
        "{message}"
    );
}

#[test]
fn the_sample_config_in_contrib_loads() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../contrib/traffic-usage.toml"
    ));
    let config = RunConfig::load(path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!config.monitors.is_empty());
    assert!(config.monitors.iter().all(|m| m.include_zones.len() == 1));
}
