//! A CloudStack-shaped `cloud` database (DESIGN §11; the schema facts of
//! issue 14), the traffic of its guest addresses, and what each account
//! owes, worked out here from the rows and flows alone: a replay of the
//! events and a sum over hour buckets, not the billing code.

use std::collections::BTreeMap;
use std::net::IpAddr;

use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use traffic_sentinel_emulator::Flow;

use crate::support::{Engine, Rng, TestStore};

/// The CloudStack zone collected: its numeric id.
pub(crate) const ZONE: &str = "1";
/// The `host.id` of the zone's traffic monitor.
pub(crate) const HOST_ID: &str = "7";
/// CloudStack's system account, never billed.
pub(crate) const SYSTEM_ACCOUNT: &str = "1";
pub(crate) const FROM: &str = "2026-11-01T00:00:00Z";
pub(crate) const UNTIL: &str = "2026-11-02T00:00:00Z";
const FROM_AT: OffsetDateTime = datetime!(2026-11-01 00:00 UTC);
const UNTIL_AT: OffsetDateTime = datetime!(2026-11-02 00:00 UTC);
/// A URL nothing listens on: a monitor the collector must not pick.
const DEAD_MONITOR: &str = "http://127.0.0.1:9";

/// `usage_event`: every usage event of the cloud.
const USAGE_EVENT: &str = "CREATE TABLE usage_event (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    type varchar(32) NOT NULL,
    account_id bigint unsigned NOT NULL,
    created datetime NOT NULL,
    zone_id bigint unsigned NOT NULL,
    resource_id bigint unsigned,
    resource_name varchar(255),
    offering_id bigint unsigned,
    template_id bigint unsigned,
    size bigint unsigned,
    resource_type varchar(32),
    processed tinyint NOT NULL DEFAULT 0,
    virtual_size bigint unsigned,
    PRIMARY KEY (id),
    INDEX i_usage_event__created (created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// `host`: a traffic monitor is a host of type `TrafficMonitor`.
const HOST: &str = "CREATE TABLE host (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    name varchar(255) NOT NULL,
    uuid varchar(40),
    type varchar(32) NOT NULL,
    data_center_id bigint unsigned NOT NULL,
    removed datetime,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// `host_details`: `url`, `inclZones`, `exclZones`, `last_collection`.
const HOST_DETAILS: &str = "CREATE TABLE host_details (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    host_id bigint unsigned NOT NULL,
    name varchar(255) NOT NULL,
    value varchar(255) NOT NULL,
    PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// `user_statistics`: its unique key does not stop duplicates while
/// `public_ip_address` is NULL.
const USER_STATISTICS: &str = "CREATE TABLE user_statistics (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    data_center_id bigint unsigned NOT NULL,
    account_id bigint unsigned NOT NULL,
    public_ip_address char(40),
    device_id bigint unsigned NOT NULL,
    device_type varchar(32) NOT NULL,
    network_id bigint unsigned,
    net_bytes_received bigint unsigned NOT NULL DEFAULT 0,
    net_bytes_sent bigint unsigned NOT NULL DEFAULT 0,
    current_bytes_received bigint unsigned NOT NULL DEFAULT 0,
    current_bytes_sent bigint unsigned NOT NULL DEFAULT 0,
    agg_bytes_received bigint unsigned NOT NULL DEFAULT 0,
    agg_bytes_sent bigint unsigned NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    UNIQUE KEY (account_id, data_center_id, public_ip_address, device_id, device_type, network_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// One `usage_event` row.
#[derive(Clone, Debug)]
pub(crate) struct UsageEvent {
    pub(crate) id: u64,
    pub(crate) kind: &'static str,
    pub(crate) account: u64,
    pub(crate) created: OffsetDateTime,
    pub(crate) zone: u64,
    pub(crate) resource_name: Option<String>,
    pub(crate) resource_type: Option<&'static str>,
    /// Deleted after being written, as CloudStack prunes old rows.
    pub(crate) pruned: bool,
}

const DIRECT: Option<&str> = Some("DirectAttached");
const VIRTUAL: Option<&str> = Some("VirtualNetwork");
/// The guest addresses handed from account to account.
const POOL: usize = 6;
/// Accounts the pool goes to in turn, the system account among them.
const POOL_ACCOUNTS: [u64; 5] = [2, 3, 4, 1, 5];

/// The rows of `usage_event`, in id order (ids follow `created`; events
/// at one instant in a shuffled order, so a handover's assign may come
/// before its release):
///
/// - `100.64.1.0`–`100.64.1.5`: leases of accounts 2, 3, 4, 1 and 5 in
///   turn, at odd minutes, some handed over at one instant;
/// - `203.0.113.20`: the system account's all along;
/// - `203.0.113.21`: only `VirtualNetwork` events (not metered here);
/// - `2001:db8::23`: account 3's all along; a `VirtualNetwork` release of
///   it at 12:00 is not its release;
/// - `203.0.113.22`: a pruned history: the assign to account 2 was deleted,
///   its release at 10:00 stays; account 5 from 14:00;
/// - `::ffff:203.0.113.23`: account 2 from 03:20 to 18:40 (IPv4-mapped);
/// - `198.51.100.30`, and a release of `100.64.1.2`, in zone 2;
/// - `VM.CREATE`, `NETWORK.OFFERING.ASSIGN` and `PORTABLE.IPRELEASE` rows
///   (the last two naming held addresses), and two `DirectAttached` rows
///   whose `resource_name` is no address (`eth0`, NULL).
pub(crate) fn usage_events() -> Vec<UsageEvent> {
    let (assign, release) = ("NET.IPASSIGN", "NET.IPRELEASE");
    let mut rows: Vec<UsageEvent> = Vec::new();
    let mut rng = Rng(0xc10d_0014);
    for i in 0..POOL {
        let address = format!("100.64.1.{i}");
        let mut at = datetime!(2026-10-31 20:00 UTC) + Duration::minutes(rng.below(600) as i64);
        let mut turn = i;
        while at < datetime!(2026-11-02 01:00 UTC) {
            let account = POOL_ACCOUNTS[turn % POOL_ACCOUNTS.len()];
            rows.push(row(assign, account, at, 1, Some(&address), DIRECT));
            at += Duration::minutes(30 + rng.below(300) as i64);
            rows.push(row(release, account, at, 1, Some(&address), DIRECT));
            // Half the handovers at the release's instant.
            at += Duration::minutes(rng.below(2) as i64 * (7 + rng.below(50) as i64));
            turn += 1 + rng.below(2) as usize;
        }
    }
    let mut pruned = row(
        assign,
        2,
        datetime!(2026-10-31 08:00 UTC),
        1,
        Some("203.0.113.22"),
        DIRECT,
    );
    pruned.pruned = true;
    rows.push(pruned);
    let at = |hour: i64, minute: i64| {
        datetime!(2026-11-01 00:00 UTC) + Duration::hours(hour) + Duration::minutes(minute)
    };
    let day_before = |hour: i64| at(hour - 24, 0);
    rows.extend([
        row(assign, 1, day_before(12), 1, Some("203.0.113.20"), DIRECT),
        row(assign, 4, day_before(12), 1, Some("203.0.113.21"), VIRTUAL),
        row(release, 4, at(16, 0), 1, Some("203.0.113.21"), VIRTUAL),
        row(assign, 3, day_before(10), 1, Some("2001:db8::23"), DIRECT),
        row(release, 3, at(12, 0), 1, Some("2001:db8::23"), VIRTUAL),
        row(release, 2, at(10, 0), 1, Some("203.0.113.22"), DIRECT),
        row(assign, 5, at(14, 0), 1, Some("203.0.113.22"), DIRECT),
        row(assign, 2, at(3, 20), 1, Some("::ffff:203.0.113.23"), DIRECT),
        row(
            release,
            2,
            at(18, 40),
            1,
            Some("::ffff:203.0.113.23"),
            DIRECT,
        ),
        row(assign, 2, day_before(12), 2, Some("198.51.100.30"), DIRECT),
        row(release, 3, at(6, 0), 2, Some("100.64.1.2"), DIRECT),
        row("VM.CREATE", 2, day_before(21), 1, Some("i-2-10-VM"), None),
        row(
            "NETWORK.OFFERING.ASSIGN",
            3,
            at(11, 0),
            1,
            Some("100.64.1.1"),
            DIRECT,
        ),
        row(
            "PORTABLE.IPRELEASE",
            2,
            at(9, 0),
            1,
            Some("203.0.113.23"),
            DIRECT,
        ),
        row(assign, 4, at(5, 0), 1, Some("eth0"), DIRECT),
        row(release, 4, at(7, 0), 1, None, DIRECT),
    ]);
    // Ids in the order of `created`; rows of one instant shuffled.
    let mut keyed: Vec<(OffsetDateTime, u64, UsageEvent)> = rows
        .into_iter()
        .map(|row| (row.created, rng.next(), row))
        .collect();
    keyed.sort_by_key(|(created, shuffle, _)| (*created, *shuffle));
    keyed
        .into_iter()
        .enumerate()
        .map(|(index, (_, _, mut row))| {
            row.id = index as u64 + 1;
            row
        })
        .collect()
}

/// A row not yet numbered.
fn row(
    kind: &'static str,
    account: u64,
    created: OffsetDateTime,
    zone: u64,
    resource_name: Option<&str>,
    resource_type: Option<&'static str>,
) -> UsageEvent {
    UsageEvent {
        id: 0,
        kind,
        account,
        created,
        zone,
        resource_name: resource_name.map(str::to_owned),
        resource_type,
        pruned: false,
    }
}

/// The canonical guest addresses of [`usage_events`] that have traffic.
fn guests() -> Vec<IpAddr> {
    let mut guests: Vec<String> = (0..POOL).map(|i| format!("100.64.1.{i}")).collect();
    for address in [
        "203.0.113.20",
        "203.0.113.21",
        "203.0.113.22",
        "203.0.113.23",
        "2001:db8::23",
        "198.51.100.30",
    ] {
        guests.push(address.to_owned());
    }
    guests.iter().map(|a| a.parse().unwrap()).collect()
}

/// Every 10 minutes (jittered) from 2026-10-31 22:00 to 2026-11-02 01:00,
/// each guest sends to EXTERNAL, PEERING and INTERNAL and receives from
/// EXTERNAL and PEERING; `100.64.1.5` only receives.
pub(crate) fn flows() -> Vec<Flow> {
    let mut rng = Rng(0xf10e_0014);
    let guests = guests();
    let mut flows = Vec::new();
    let mut at = datetime!(2026-10-31 22:00 UTC);
    while at < datetime!(2026-11-02 01:00 UTC) {
        for &guest in &guests {
            let time = at + Duration::seconds(rng.below(600) as i64);
            let mut flow = |source: &str, destination: &str, zone: &str, sent: bool| {
                let peer: IpAddr = if sent { destination } else { source }.parse().unwrap();
                let (ipsource, ipdestination) = if sent { (guest, peer) } else { (peer, guest) };
                let (sourcezone, destinationzone) = if sent {
                    ("CLOUD", zone)
                } else {
                    (zone, "CLOUD")
                };
                flows.push(Flow {
                    time,
                    ipsource,
                    ipdestination,
                    sourcezone: sourcezone.to_owned(),
                    destinationzone: destinationzone.to_owned(),
                    bytes: 1 + rng.below(50_000),
                });
            };
            if guest.to_string() != "100.64.1.5" {
                flow("", "192.0.2.1", "EXTERNAL", true);
                flow("", "192.0.2.2", "PEERING", true);
                flow("", "10.0.0.1", "INTERNAL", true);
            }
            flow("192.0.2.1", "", "EXTERNAL", false);
            flow("192.0.2.2", "", "PEERING", false);
        }
        at += Duration::minutes(10);
    }
    flows
}

/// Bytes `(sent, received)` per account id.
pub(crate) type Owed = BTreeMap<u64, (u64, u64)>;

/// What each account owes for `[FROM, UNTIL)` with Traffic Sentinel zones
/// `include` metered: the `DirectAttached` `NET.IPASSIGN`/`NET.IPRELEASE`
/// rows of zone 1 that are left, whose `resource_name` is an address,
/// replayed per address in `(created, releases first, id)` order (an
/// assign makes its account the holder, a release makes the address free);
/// each hour bucket of an address goes to its holder at the bucket's last
/// second, unless that is the system account.
pub(crate) fn owed(events: &[UsageEvent], flows: &[Flow], include: &[&str]) -> Owed {
    let mut by_ip: BTreeMap<IpAddr, Vec<(OffsetDateTime, bool, u64, u64)>> = BTreeMap::new();
    for event in events {
        let kept = !event.pruned
            && event.zone == 1
            && event.resource_type == DIRECT
            && matches!(event.kind, "NET.IPASSIGN" | "NET.IPRELEASE");
        let ip = event
            .resource_name
            .as_deref()
            .and_then(|name| name.parse::<IpAddr>().ok());
        if let (true, Some(ip)) = (kept, ip) {
            let is_assign = event.kind == "NET.IPASSIGN";
            by_ip.entry(ip.to_canonical()).or_default().push((
                event.created,
                is_assign,
                event.id,
                event.account,
            ));
        }
    }
    for replay in by_ip.values_mut() {
        replay.sort();
    }
    let holder = |ip: IpAddr, at: OffsetDateTime| -> Option<u64> {
        let mut held = None;
        for &(created, is_assign, _, account) in by_ip.get(&ip)? {
            if created > at {
                break;
            }
            held = is_assign.then_some(account);
        }
        held
    };
    let mut owed = Owed::new();
    for flow in flows {
        if flow.time < FROM_AT || flow.time >= UNTIL_AT {
            continue;
        }
        let hour = flow
            .time
            .replace_minute(0)
            .and_then(|t| t.replace_second(0))
            .and_then(|t| t.replace_nanosecond(0))
            .unwrap();
        let last_second = hour + Duration::hours(1) - Duration::seconds(1);
        let sides = [
            (flow.ipsource, &flow.destinationzone, true),
            (flow.ipdestination, &flow.sourcezone, false),
        ];
        for (ip, other_zone, sent) in sides {
            if !include.contains(&other_zone.as_str()) {
                continue;
            }
            match holder(ip, last_second) {
                Some(account) if account.to_string() != SYSTEM_ACCOUNT => {
                    let slot = owed.entry(account).or_default();
                    if sent {
                        slot.0 += flow.bytes;
                    } else {
                        slot.1 += flow.bytes;
                    }
                }
                _ => {}
            }
        }
    }
    owed
}

/// One `user_statistics` row, without its `id`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct StatisticsRow {
    account: u64,
    zone: u64,
    device: u64,
    device_type: &'static str,
    public_ip: Option<&'static str>,
    network: Option<u64>,
    /// `net_bytes_received`, `net_bytes_sent`, `current_bytes_received`,
    /// `current_bytes_sent`, `agg_bytes_received`, `agg_bytes_sent`.
    counters: [u64; 6],
}

/// The rows CloudStack left before the collector ran: a virtual router's
/// row of account 2, CloudStack's own direct-network collection of account
/// 3 by host 7 (to be added to), an older monitor's row of account 4 and a
/// row of zone 2.
const STATISTICS_BEFORE: [StatisticsRow; 4] = [
    StatisticsRow {
        account: 2,
        zone: 1,
        device: 40,
        device_type: "DomainRouter",
        public_ip: Some("10.1.1.2"),
        network: Some(204),
        counters: [100, 200, 5_000, 6_000, 5_100, 6_200],
    },
    StatisticsRow {
        account: 3,
        zone: 1,
        device: 7,
        device_type: "DirectNetwork",
        public_ip: None,
        network: Some(0),
        counters: [0, 0, 1_000, 2_000, 1_000, 2_000],
    },
    StatisticsRow {
        account: 4,
        zone: 1,
        device: 99,
        device_type: "DirectNetwork",
        public_ip: None,
        network: Some(0),
        counters: [0, 0, 300, 400, 300, 400],
    },
    StatisticsRow {
        account: 5,
        zone: 2,
        device: 8,
        device_type: "DirectNetwork",
        public_ip: None,
        network: Some(0),
        counters: [0, 0, 10, 20, 0, 0],
    },
];

/// The columns of a `user_statistics` row as text, without `id`, in the
/// order of [`CloudDatabase::statistics`].
const STATISTICS_COLUMNS: &str = "CAST(account_id AS CHAR), CAST(data_center_id AS CHAR),
    CAST(device_id AS CHAR), device_type, public_ip_address, CAST(network_id AS CHAR),
    CAST(net_bytes_received AS CHAR), CAST(net_bytes_sent AS CHAR),
    CAST(current_bytes_received AS CHAR), CAST(current_bytes_sent AS CHAR),
    CAST(agg_bytes_received AS CHAR), CAST(agg_bytes_sent AS CHAR)";

impl StatisticsRow {
    fn text(&self) -> Vec<Option<String>> {
        let mut cells = vec![
            Some(self.account.to_string()),
            Some(self.zone.to_string()),
            Some(self.device.to_string()),
            Some(self.device_type.to_owned()),
            self.public_ip.map(str::to_owned),
            self.network.map(|n| n.to_string()),
        ];
        cells.extend(self.counters.iter().map(|c| Some(c.to_string())));
        cells
    }
}

/// `user_statistics` after `owed` is posted for the zone's monitor `host`
/// as CloudStack's listener would: the row `(account, zone 1, NULL
/// address, host, DirectNetwork, network 0)` created with zero counters
/// when missing, its `current_bytes_*` grown by the account's bytes; no
/// row for an account that owes nothing. Sorted as
/// [`CloudDatabase::statistics`].
pub(crate) fn statistics_after(owed: &Owed, host: u64) -> Vec<Vec<Option<String>>> {
    let mut rows = STATISTICS_BEFORE.to_vec();
    for (&account, &(sent, received)) in owed {
        if sent == 0 && received == 0 {
            continue;
        }
        let key = |row: &StatisticsRow| {
            row.account == account
                && row.zone == 1
                && row.public_ip.is_none()
                && row.device == host
                && row.device_type == "DirectNetwork"
                && row.network == Some(0)
        };
        let index = match rows.iter().position(key) {
            Some(index) => index,
            None => {
                rows.push(StatisticsRow {
                    account,
                    zone: 1,
                    device: host,
                    device_type: "DirectNetwork",
                    public_ip: None,
                    network: Some(0),
                    counters: [0; 6],
                });
                rows.len() - 1
            }
        };
        rows[index].counters[2] += received;
        rows[index].counters[3] += sent;
    }
    rows.sort();
    rows.iter().map(StatisticsRow::text).collect()
}

/// A fresh, uniquely named CloudStack database on the MariaDB server,
/// dropped afterwards.
pub(crate) struct CloudDatabase {
    db: TestStore,
}

impl CloudDatabase {
    /// The four tables, [`usage_events`] (pruned rows deleted again),
    /// [`STATISTICS_BEFORE`], and a host registry: a routing host and a
    /// removed traffic monitor in zone 1 and a live monitor in zone 2 (both
    /// at a URL nothing listens on); with `monitor`, the zone's live traffic
    /// monitor, host [`HOST_ID`], at that URL, for Traffic Sentinel zones
    /// `EXTERNAL,PEERING` and not `INTERNAL`.
    pub(crate) fn create(events: &[UsageEvent], monitor: Option<&str>) -> CloudDatabase {
        let db = Engine::MySql.fresh();
        for table in [USAGE_EVENT, HOST, HOST_DETAILS, USER_STATISTICS] {
            db.execute(table);
        }
        let time = |at: OffsetDateTime| {
            format!(
                "'{:04}-{:02}-{:02} {:02}:{:02}:{:02}'",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )
        };
        let quoted =
            |text: Option<&str>| text.map_or_else(|| "NULL".to_owned(), |t| format!("'{t}'"));
        let values: Vec<String> = events
            .iter()
            .map(|e| {
                format!(
                    "({}, '{}', {}, {}, {}, {}, {}, {}, 0)",
                    e.id,
                    e.kind,
                    e.account,
                    time(e.created),
                    e.zone,
                    100 + e.id,
                    quoted(e.resource_name.as_deref()),
                    quoted(e.resource_type),
                )
            })
            .collect();
        db.execute(&format!(
            "INSERT INTO usage_event (id, type, account_id, created, zone_id, resource_id,
                                      resource_name, resource_type, size)
             VALUES {}",
            values.join(",\n")
        ));
        let pruned: Vec<String> = events
            .iter()
            .filter(|e| e.pruned)
            .map(|e| e.id.to_string())
            .collect();
        if !pruned.is_empty() {
            db.execute(&format!(
                "DELETE FROM usage_event WHERE id IN ({})",
                pruned.join(",")
            ));
        }
        let statistics: Vec<String> = STATISTICS_BEFORE
            .iter()
            .map(|row| {
                let c = row.counters;
                format!(
                    "({}, {}, {}, {}, '{}', {}, {}, {}, {}, {}, {}, {})",
                    row.zone,
                    row.account,
                    quoted(row.public_ip),
                    row.device,
                    row.device_type,
                    row.network
                        .map_or_else(|| "NULL".to_owned(), |n| n.to_string()),
                    c[0],
                    c[1],
                    c[2],
                    c[3],
                    c[4],
                    c[5]
                )
            })
            .collect();
        db.execute(&format!(
            "INSERT INTO user_statistics (data_center_id, account_id, public_ip_address, device_id,
                 device_type, network_id, net_bytes_received, net_bytes_sent,
                 current_bytes_received, current_bytes_sent, agg_bytes_received, agg_bytes_sent)
             VALUES {}",
            statistics.join(", ")
        ));
        db.execute(
            "INSERT INTO host (id, name, uuid, type, data_center_id, removed) VALUES
                 (1, 'kvm-1', 'u-1', 'Routing', 1, NULL),
                 (5, 'ts-old', 'u-5', 'TrafficMonitor', 1, '2026-10-01 00:00:00'),
                 (8, 'ts-2', 'u-8', 'TrafficMonitor', 2, NULL)",
        );
        db.execute(&format!(
            "INSERT INTO host_details (host_id, name, value) VALUES
                 (5, 'url', '{DEAD_MONITOR}'),
                 (8, 'url', '{DEAD_MONITOR}'),
                 (8, 'last_collection', '1793491200000')"
        ));
        if let Some(url) = monitor {
            db.execute(&format!(
                "INSERT INTO host (id, name, uuid, type, data_center_id, removed)
                 VALUES ({HOST_ID}, 'ts-1', 'u-7', 'TrafficMonitor', 1, NULL)"
            ));
            db.execute(&format!(
                "INSERT INTO host_details (host_id, name, value) VALUES
                     ({HOST_ID}, 'url', '{url}'),
                     ({HOST_ID}, 'last_collection', '1793491200000'),
                     ({HOST_ID}, 'inclZones', 'EXTERNAL,PEERING'),
                     ({HOST_ID}, 'exclZones', 'INTERNAL')"
            ));
        }
        CloudDatabase { db }
    }

    /// Runs `statement` in the database, as CloudStack would.
    pub(crate) fn execute(&self, statement: &str) {
        self.db.execute(statement);
    }

    /// The database as `--events` takes it.
    pub(crate) fn url(&self) -> &str {
        self.db.target()
    }

    /// Every `user_statistics` row without its `id`, as text: account,
    /// zone, device id, device type, address, network id, then the net,
    /// current and aggregate counters (received before sent); sorted.
    pub(crate) fn statistics(&self) -> Vec<Vec<Option<String>>> {
        self.db.rows(&format!(
            "SELECT {STATISTICS_COLUMNS} FROM user_statistics
             ORDER BY account_id, data_center_id, device_id, device_type, public_ip_address"
        ))
    }

    /// Every `user_statistics` row with its `id` first, by `id`.
    pub(crate) fn statistics_with_ids(&self) -> Vec<Vec<Option<String>>> {
        self.db.rows(&format!(
            "SELECT CAST(id AS CHAR), {STATISTICS_COLUMNS} FROM user_statistics ORDER BY id"
        ))
    }

    /// The bytes `(sent, received)` posted per account since
    /// [`STATISTICS_BEFORE`] to the zone's rows of monitor `host`.
    pub(crate) fn posted(&self, host: &str) -> Owed {
        let mut posted = Owed::new();
        for row in self.db.rows(&format!(
            "SELECT CAST(account_id AS CHAR), CAST(current_bytes_sent AS CHAR),
                    CAST(current_bytes_received AS CHAR)
             FROM user_statistics
             WHERE data_center_id = 1 AND device_id = {host} AND device_type = 'DirectNetwork'"
        )) {
            let number = |i: usize| -> u64 { row[i].as_deref().unwrap().parse().unwrap() };
            let account = number(0);
            let before = STATISTICS_BEFORE
                .iter()
                .find(|r| r.account == account && r.zone == 1 && r.device.to_string() == host)
                .map_or((0, 0), |r| (r.counters[3], r.counters[2]));
            let now = (number(1) - before.0, number(2) - before.1);
            if now != (0, 0) {
                posted.insert(account, now);
            }
        }
        posted
    }
}
