//! Database store: get (hit) and put of a small struct through cachy, next to sqlx issuing
//! the same statements directly, per database, in one run (SQLite file; PostgreSQL and
//! MariaDB started here).
//!
//! `cargo bench -p cachy-rs --all-features --bench database`

use std::time::Duration;

use cachy::CacheManager;
use cachy_testkit::bench::{User, user};
use cachy_testkit::servers::{MariaDbServer, PostgresServer, TestServer};
use criterion::{Criterion, criterion_group, criterion_main};
use sqlx::AssertSqlSafe;

const FAR: i64 = 9_999_999_999;

macro_rules! bench_database {
    ($c:expr, $runtime:expr, $name:expr, $url:expr, $pool:expr, $key:literal, $p:expr) => {{
        let runtime: &tokio::runtime::Runtime = $runtime;
        let table = format!("bench_{}", $name);
        let cache = CacheManager::from_value(serde_json::json!({
            "stores": { "db": { "driver": "database", "url": $url, "table": table, "create_table": true } }
        }))
        .unwrap();
        let repo = cache.store(None).unwrap();
        runtime.block_on(repo.put("hit", &user(), 60)).unwrap();
        let pool = runtime.block_on($pool).unwrap();
        let payload = repo.serializer().serialize(&user()).unwrap();
        let select = format!("SELECT value, expiration FROM {table} WHERE {} = {}", $key, $p(1));
        let upsert = if $name == "mariadb" {
            format!(
                "INSERT INTO {table} ({}, value, expiration) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value), expiration = VALUES(expiration)",
                $key
            )
        } else {
            format!(
                "INSERT INTO {table} ({k}, value, expiration) VALUES ({}, {}, {}) ON CONFLICT ({k}) DO UPDATE SET value = excluded.value, expiration = excluded.expiration",
                $p(1), $p(2), $p(3), k = $key
            )
        };
        let mut group = $c.benchmark_group(format!("database/{}", $name));
        group.bench_function("cachy/get_hit", |b| {
            b.to_async(runtime).iter(|| async { repo.get::<User>("hit").await.unwrap().unwrap() })
        });
        group.bench_function("sqlx/get_hit", |b| {
            b.to_async(runtime).iter(|| async {
                let row = sqlx::query(AssertSqlSafe(select.as_str())).bind(b"hit".as_slice()).fetch_one(&pool).await.unwrap();
                let value: Vec<u8> = sqlx::Row::get(&row, 0);
                value
            })
        });
        group.bench_function("cachy/put", |b| {
            b.to_async(runtime).iter(|| async { repo.put("put", &user(), 60).await.unwrap() })
        });
        group.bench_function("sqlx/put", |b| {
            b.to_async(runtime).iter(|| async {
                sqlx::query(AssertSqlSafe(upsert.as_str()))
                    .bind(b"put".as_slice())
                    .bind(payload.as_slice())
                    .bind(FAR)
                    .execute(&pool)
                    .await
                    .unwrap();
            })
        });
        group.finish();
    }};
}

fn dollar(n: usize) -> String {
    format!("${n}")
}

fn question(_: usize) -> String {
    "?".to_owned()
}

fn database(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let sqlite_pool = sqlx::sqlite::SqlitePoolOptions::new().connect_with(
        sqlite
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap()
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal),
    );
    bench_database!(
        c,
        &runtime,
        "sqlite",
        &sqlite,
        sqlite_pool,
        "\"key\"",
        question
    );

    let postgres =
        PostgresServer::start().expect("PostgreSQL is installed (./scripts/test installs it)");
    bench_database!(
        c,
        &runtime,
        "postgres",
        postgres.url(),
        sqlx::PgPool::connect(&postgres.url()),
        "\"key\"",
        dollar
    );

    let mariadb =
        MariaDbServer::start().expect("MariaDB is installed (./scripts/test installs it)");
    bench_database!(
        c,
        &runtime,
        "mariadb",
        mariadb.url(),
        sqlx::MySqlPool::connect(&mariadb.url()),
        "`key`",
        question
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = database
}
criterion_main!(benches);
