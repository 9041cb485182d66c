//! Store speed per engine: committing one window of 10k records, and the
//! per-account report over 1M stored records, on SQLite (a file in a
//! temporary directory) and, when reachable, PostgreSQL (127.0.0.1:5432,
//! database created per run) and MariaDB/MySQL (127.0.0.1:3306).
//!
//! Before timing, each engine is checked: the report's totals equal the
//! bytes committed. The peak memory (VmHWM) of a whole process that opens
//! the store read-only and streams the 1M-record report (by account, and by
//! address: one row per record) is measured in a child process, printed on
//! stdout.
//!
//! `cargo bench -p usage-benches --bench store`; under `cargo test` it runs
//! once on 1k-record windows and 20k records.

use std::hint::black_box;
use std::ops::ControlFlow;
use std::time::Instant;

use criterion::{BatchSize, Criterion};
use sqlx::{AnyConnection, Connection as _, Executor as _};
use time::{Duration, OffsetDateTime};
use usage_benches::{account, full_run, guest_ip, measure_child, peak_memory_kb};
use usage_model::{ByteCounts, CollectionWindow, UsageRecord, ZoneId};
use usage_store::{Engine, OpenMode, ReportFilter, Store, StoreTarget, WindowCommit, WindowStats};

/// The child's environment variable: `TARGET` and which report to stream.
const CHILD: &str = "USAGE_STORE_BENCH_REPORT";

const ACCOUNTS: u64 = 1_000;

/// The first window's start: 2026-11-01T00:00:00Z.
fn origin() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_793_491_200).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Window `n` of a zone: hour `n` from the origin.
fn hour(n: i64) -> CollectionWindow {
    let start = origin() + Duration::hours(n);
    CollectionWindow::new(start, start + Duration::hours(1)).expect("an hour is not empty")
}

/// A window of `records` records of `zone`: address `i` held by account
/// `i % 1000` the whole hour, `i + 1` bytes sent and `2i` received.
fn window_commit(zone: &ZoneId, n: i64, records: u32) -> WindowCommit {
    let window = hour(n);
    let records = (0..records)
        .map(|i| {
            UsageRecord::new(
                zone.clone(),
                account(u64::from(i) % ACCOUNTS),
                guest_ip(i),
                window.start(),
                window.end(),
                ByteCounts {
                    sent: u64::from(i) + 1,
                    received: 2 * u64::from(i),
                },
            )
        })
        .collect();
    WindowCommit {
        zone: zone.clone(),
        window,
        planned_from: (n > 0).then(|| window.start()),
        records,
        anomalies: Vec::new(),
        ownership_digest: [1; 32],
        grid: usage_model::Grid::HOURLY,
        event_log_digest: [2; 32],
        stats: WindowStats {
            ips: 10_000,
            requests: 1,
        },
        settings: vec![("granularity".to_owned(), "3600".to_owned())],
        collected_at: window.end() + Duration::hours(2),
        cloudstack: None,
    }
}

/// A fresh database per server engine, dropped at the end of the run.
struct Server {
    admin: &'static str,
    name: String,
}

impl Server {
    async fn create(engine: Engine) -> Option<(Server, StoreTarget)> {
        sqlx::any::install_default_drivers();
        let admins: &[&'static str] = match engine {
            Engine::Postgres => &[
                "postgres://postgres@127.0.0.1:5432/test",
                "postgres://root@127.0.0.1:5432/test",
            ],
            _ => &["mysql://root@127.0.0.1:3306/test"],
        };
        for admin in admins {
            let Ok(mut conn) = AnyConnection::connect(admin).await else {
                continue;
            };
            let name = format!("usbench_{}", std::process::id());
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .ok()?;
            let _ = conn.close().await;
            let base = admin.rsplit_once('/').map_or(*admin, |(base, _)| base);
            let target = StoreTarget::parse(&format!("{base}/{name}")).ok()?;
            return Some((Server { admin, name }, target));
        }
        println!("store: skipping {engine}: not reachable");
        None
    }

    async fn drop_database(self) {
        if let Ok(mut conn) = AnyConnection::connect(self.admin).await {
            let force = if self.admin.starts_with("postgres") {
                " WITH (FORCE)"
            } else {
                ""
            };
            let _ = conn
                .execute(format!("DROP DATABASE IF EXISTS {}{force}", self.name).as_str())
                .await;
            let _ = conn.close().await;
        }
    }
}

/// The child process: opens `target` read-only, streams one report of the
/// `report` zone, prints
/// the rows seen and the process's peak resident memory in kB.
fn child(spec: &str) {
    let (kind, target) = spec.split_once(' ').expect("KIND TARGET");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let rows = runtime.block_on(async {
        let target = StoreTarget::parse(target).expect("a target");
        let store = Store::open(&target, OpenMode::ReadOnly)
            .await
            .expect("open");
        let mut rows = 0_u64;
        let filter = ReportFilter::new().zone(ZoneId::new("report").expect("a zone"));
        if kind == "account" {
            store
                .report_by_account(&filter, |row| {
                    rows += 1;
                    black_box(row);
                    ControlFlow::Continue(())
                })
                .await
                .expect("report");
        } else {
            store
                .report_by_ip(&filter, |record| {
                    rows += 1;
                    black_box(record);
                    ControlFlow::Continue(())
                })
                .await
                .expect("report");
        }
        store.close().await;
        rows
    });
    println!("{rows} {}", peak_memory_kb());
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    let full = full_run();
    let (window_records, report_windows): (u32, i64) =
        if full { (10_000, 100) } else { (1_000, 20) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let mut criterion = Criterion::default().configure_from_args();
    let dir = tempfile::tempdir().expect("a temporary directory");

    for engine in [Engine::Sqlite, Engine::Postgres, Engine::MySql] {
        let (server, target) = if engine == Engine::Sqlite {
            (None, StoreTarget::sqlite(dir.path().join("bench.sqlite")))
        } else {
            match runtime.block_on(Server::create(engine)) {
                Some((server, target)) => (Some(server), target),
                None => continue,
            }
        };
        let store = runtime
            .block_on(Store::open(&target, OpenMode::ReadWrite))
            .expect("the store opens");

        // Seed the report zone, checking the totals.
        let report_zone = ZoneId::new("report").expect("a zone");
        let started = Instant::now();
        for n in 0..report_windows {
            let commit = window_commit(&report_zone, n, window_records);
            runtime
                .block_on(store.commit_window(&commit))
                .expect("commit");
        }
        let seeded = started.elapsed();
        let records = u64::try_from(report_windows).unwrap_or(0) * u64::from(window_records);
        let mut sent = 0_u64;
        let mut accounts = 0_u64;
        runtime
            .block_on(store.report_by_account(&ReportFilter::new(), |row| {
                sent += row.bytes_sent;
                accounts += 1;
                ControlFlow::Continue(())
            }))
            .expect("report");
        let per_window: u64 = (1..=u64::from(window_records)).sum();
        assert_eq!(
            sent,
            per_window * u64::try_from(report_windows).unwrap_or(0),
            "{engine}"
        );
        assert_eq!(
            accounts,
            ACCOUNTS.min(u64::from(window_records)),
            "{engine}"
        );
        println!(
            "store/{engine}: seeded {records} records in {report_windows} windows in {:.1} s ({:.0} ms per window)",
            seeded.as_secs_f64(),
            seeded.as_secs_f64() * 1000.0 / report_windows as f64
        );

        let mut group = criterion.benchmark_group(format!("store/{engine}"));
        group.sample_size(10);
        let mut zones = 0_u32;
        group.bench_function(format!("commit window of {window_records} records"), |b| {
            b.iter_batched(
                || {
                    zones += 1;
                    window_commit(
                        &ZoneId::new(format!("commit-{zones}")).expect("a zone"),
                        0,
                        window_records,
                    )
                },
                |commit| {
                    runtime
                        .block_on(store.commit_window(&commit))
                        .expect("commit")
                },
                BatchSize::PerIteration,
            );
        });
        group.bench_function(format!("report by account over {records} records"), |b| {
            b.iter(|| {
                let mut rows = 0_u32;
                runtime
                    .block_on(store.report_by_account(
                        &ReportFilter::new().zone(report_zone.clone()),
                        |row| {
                            rows += 1;
                            black_box(row);
                            ControlFlow::Continue(())
                        },
                    ))
                    .expect("report");
                rows
            });
        });
        group.finish();
        runtime.block_on(store.close());

        // The servers here take no password: the target's text is complete.
        let shown = target.to_string();
        for kind in ["account", "ip"] {
            let (rows, peak) = measure_child(CHILD, &format!("{kind} {shown}"));
            println!(
                "store/{engine}: report by {kind} over {records} records in a child process: {rows} rows, peak RSS {peak} kB"
            );
        }
        if let Some(server) = server {
            runtime.block_on(server.drop_database());
        }
    }
    criterion.final_summary();
}
