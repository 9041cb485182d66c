//! Reading CloudStack's `usage_event` table: 1M rows (a fifth of them other
//! event types or `VirtualNetwork` rows) streamed into `IpEvent`s from the
//! MariaDB/MySQL server at 127.0.0.1:3306 (`root`, no password), in a
//! database created per run and dropped at the end.
//!
//! Before timing, the read is checked: the expected number of events, in
//! id order, and no skipped row. The peak memory (VmHWM) of whole processes
//! that connect and stream the table is measured in child processes and
//! printed on stdout: one that only counts the events (the bound of the
//! stream itself), one whose query matches no row (the connection alone),
//! and one that keeps every event in a `Vec` (what feeding the ownership
//! ledger costs).
//!
//! `cargo bench -p usage-benches --bench cloudstack_events`; under `cargo
//! test` it runs once on 20k rows. Without a reachable server it prints one
//! line and does nothing.

use std::fmt::Write as _;
use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use sqlx::{AnyConnection, Connection as _, Executor as _};
use usage_benches::{full_run, measure_child, peak_memory_kb};
use usage_store::{CloudStackDatabase, StoreTarget, UsageEventOptions};

/// The child's environment variable: `MODE TARGET`.
const CHILD: &str = "USAGE_CLOUDSTACK_BENCH_READ";

const ADMIN: &str = "mysql://root@127.0.0.1:3306/test";

/// Rows per `INSERT`.
const BATCH: u64 = 10_000;

/// The first event's time: 2026-11-01T00:00:00Z, in Unix seconds.
const ORIGIN: i64 = 1_793_491_200;

/// `cloud.usage_event` as CloudStack creates it.
const USAGE_EVENT: &str = "CREATE TABLE usage_event (
    id bigint unsigned NOT NULL AUTO_INCREMENT,
    type varchar(32) NOT NULL,
    account_id bigint unsigned NOT NULL,
    created datetime NOT NULL,
    zone_id bigint unsigned NOT NULL,
    resource_id bigint unsigned,
    resource_name varchar(255),
    offering_id bigint unsigned NULL,
    template_id bigint unsigned NULL,
    size bigint unsigned NULL,
    resource_type varchar(32) NULL,
    processed tinyint NOT NULL DEFAULT 0,
    virtual_size bigint unsigned NULL,
    PRIMARY KEY (id),
    INDEX i_usage_event__created (created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// Row `i`: id `1000 + i`, one second after the previous; every tenth a
/// `VM.CREATE`, every tenth (offset 5) a `VirtualNetwork` assign; the rest
/// `DirectAttached` assigns and releases of IPv4 and (one in four) IPv6
/// addresses, of 1000 accounts in 3 zones.
fn row(sql: &mut String, i: u64) {
    let kind = match i % 10 {
        0 => "VM.CREATE",
        n if n % 2 == 1 => "NET.IPASSIGN",
        _ => "NET.IPRELEASE",
    };
    let resource_type = if i % 10 == 5 {
        "VirtualNetwork"
    } else {
        "DirectAttached"
    };
    let seconds = ORIGIN + i64::try_from(i).unwrap_or(i64::MAX / 2);
    let at = time::OffsetDateTime::from_unix_timestamp(seconds).expect("a time in range");
    let address = u32::try_from(i / 2).unwrap_or(u32::MAX);
    let ip = if i % 4 == 3 {
        std::net::Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000_u128 | u128::from(address),
        )
        .to_string()
    } else {
        std::net::Ipv4Addr::from(0x0a00_0000_u32.wrapping_add(address)).to_string()
    };
    let _ = write!(
        sql,
        "({}, '{kind}', {}, '{} {:02}:{:02}:{:02}', {}, {}, '{ip}', '{resource_type}')",
        1000 + i,
        i % 1000,
        at.date(),
        at.hour(),
        at.minute(),
        at.second(),
        1 + i % 3,
        i / 2,
    );
}

/// The events the default options read from `rows` rows.
fn expected_events(rows: u64) -> u64 {
    (0..rows).filter(|i| i % 10 != 0 && i % 10 != 5).count() as u64
}

/// A fresh database holding `rows` rows, or `None` when no server answers.
async fn seed(rows: u64) -> Option<(String, StoreTarget)> {
    sqlx::any::install_default_drivers();
    let Ok(mut conn) = AnyConnection::connect(ADMIN).await else {
        println!("cloudstack_events: skipping: MariaDB/MySQL at 127.0.0.1:3306 is not reachable");
        return None;
    };
    let name = format!("uscsbench_{}", std::process::id());
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create the database");
    conn.execute(format!("USE {name}").as_str())
        .await
        .expect("use it");
    conn.execute(USAGE_EVENT).await.expect("create usage_event");
    let mut start = 0;
    while start < rows {
        let end = (start + BATCH).min(rows);
        let mut sql = String::from(
            "INSERT INTO usage_event (id, type, account_id, created, zone_id, resource_id, resource_name, resource_type) VALUES ",
        );
        for i in start..end {
            if i != start {
                sql.push(',');
            }
            row(&mut sql, i);
        }
        conn.execute(sql.as_str()).await.expect("insert rows");
        start = end;
    }
    let _ = conn.close().await;
    let target = StoreTarget::parse(&format!("mysql://root@127.0.0.1:3306/{name}")).ok()?;
    Some((name, target))
}

async fn drop_database(name: &str) {
    if let Ok(mut conn) = AnyConnection::connect(ADMIN).await {
        let _ = conn
            .execute(format!("DROP DATABASE IF EXISTS {name}").as_str())
            .await;
        let _ = conn.close().await;
    }
}

/// Streams every event of `options`, counting them; checks id order.
async fn count_events(cloud: &CloudStackDatabase, options: &UsageEventOptions) -> (u64, bool) {
    let mut count = 0_u64;
    let mut last = 0_u64;
    let mut in_order = true;
    let read = cloud
        .read_ip_events(options, |event| {
            count += 1;
            in_order &= event.id > last;
            last = event.id;
            black_box(event);
            ControlFlow::Continue(())
        })
        .await
        .expect("read the events");
    assert_eq!(read.events, count);
    assert!(read.skipped.is_empty(), "{:?}", read.skipped.first());
    (count, in_order)
}

/// The child process: connects, reads as `mode` says, prints the events
/// seen and the process's peak resident memory in kB.
fn child(spec: &str) {
    let (mode, target) = spec.split_once(' ').expect("MODE TARGET");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let events = runtime.block_on(async {
        let target = StoreTarget::parse(target).expect("a target");
        let cloud = CloudStackDatabase::connect(&target).await.expect("connect");
        let events = match mode {
            "count" => count_events(&cloud, &UsageEventOptions::new()).await.0,
            "none" => {
                let options = UsageEventOptions::new().resource_type("NoSuchType");
                count_events(&cloud, &options).await.0
            }
            _ => {
                let mut kept = Vec::new();
                cloud
                    .read_ip_events(&UsageEventOptions::new(), |event| {
                        kept.push(event);
                        ControlFlow::Continue(())
                    })
                    .await
                    .expect("read the events");
                black_box(&kept);
                kept.len() as u64
            }
        };
        cloud.close().await;
        events
    });
    println!("{events} {}", peak_memory_kb());
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let rows: u64 = if full_run() { 1_000_000 } else { 20_000 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let Some((name, target)) = runtime.block_on(seed(rows)) else {
        return;
    };
    println!(
        "cloudstack_events: inserted {rows} usage_event rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let cloud = runtime
        .block_on(CloudStackDatabase::connect(&target))
        .expect("connect");

    // Check the answer before timing anything.
    let want = expected_events(rows);
    let (count, in_order) = runtime.block_on(count_events(&cloud, &UsageEventOptions::new()));
    assert_eq!(count, want, "events read");
    assert!(in_order, "events in id order");

    let mut criterion = Criterion::default().configure_from_args();
    let mut group = criterion.benchmark_group("cloudstack_events");
    group.sample_size(10);
    group.throughput(Throughput::Elements(rows));
    group.bench_function(format!("stream {rows} usage_event rows"), |b| {
        b.iter(|| {
            let (count, _) = runtime.block_on(count_events(&cloud, &UsageEventOptions::new()));
            assert_eq!(count, want);
        });
    });
    group.finish();
    runtime.block_on(cloud.close());

    // The server here takes no password: the target's text is complete.
    let shown = target.to_string();
    for (mode, what) in [
        ("none", "a query matching no row"),
        ("count", "streaming, counting only"),
        ("collect", "keeping every event in a Vec"),
    ] {
        let (events, peak) = measure_child(CHILD, &format!("{mode} {shown}"));
        println!(
            "cloudstack_events: {rows} rows, {what}, in a child process: {events} events, peak RSS {peak} kB"
        );
    }
    runtime.block_on(drop_database(&name));
    criterion.final_summary();
}
