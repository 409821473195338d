//! The report: the markdown table (with a header naming the machine and the versions, and
//! notes on the peers) and the SVG bar chart of the medians with their min–max.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::measure::{Bench, Measured, NOISY, Row};

/// The first line `program args` prints, or `not found`.
fn version(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|_| "not found".to_owned())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
                    / 1024
                    / 1024
            })
        })
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu}), {memory} GiB")
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
pub fn date() -> String {
    version("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

/// The table's header: the title, the machine and versions of everything measured, and how
/// the cells were measured (`took`: the whole measurement).
pub fn header(date: &str, bench: &Bench, took: Duration) -> String {
    format!(
        "# cachy benchmark comparison\n\n{date}; {}; {}; {}; {}; {}; {}; SQLite bundled by rusqlite (the store's driver; the sqlx peer links the same); Python cachy 0.3.0 with python-memcached 1.62.\n\n\
         Each cell (store, operation, callers) is measured in {} interleaved rounds: in a round every subject of the cell runs one {} ms window in turn, \
         the order rotated by one each round, after a {} ms unrecorded warm-up window each (not for Python and `redis-benchmark`, a fresh process each window). \
         Measured in {:.0} s. \"64 callers\" is 64 tokio tasks (cachy, redis-rs, moka, the `RwLock` `HashMap`, sqlx, `std::fs` + `spawn_blocking`), \
         64 threads (cachy blocking, the raw memcached protocol, `std::fs`, rusqlite, Python) or 64 clients (`redis-benchmark -c 64`). Made by `./scripts/bench`.",
        machine(),
        version("rustc", &["-V"]),
        version("redis-server", &["--version"]),
        version("memcached", &["-V"]),
        version("mariadbd", &["--version"]),
        version("/usr/lib/postgresql/15/bin/postgres", &["--version"]),
        bench.rounds,
        bench.duration.as_millis(),
        bench.warm_up.as_millis(),
        took.as_secs_f64(),
    )
}

/// What the peers that are not plain clients measure.
const NOTES: &str = "Notes on the peers:\n\n\
- **RwLock HashMap** (memory): a `std::sync::RwLock<HashMap<String, Arc<[u8]>>>` holding the already serialized bytes: \
no codec, no expiry, no eviction: what no in-process store can beat. moka holds the typed value.\n\
- **std::fs** (file): `std::fs::read` of the file the store keeps for the key (same SHA-256 path, eight folder levels, same bytes), \
and a write of a temporary file in the same folder renamed over the value's file, as the store writes (without its lock file, \
folder checks and no-follow opens). **std::fs + spawn_blocking** is the same call in `tokio::task::spawn_blocking` from 64 tokio tasks: \
the hop the async store pays.\n\
- **rusqlite** (SQLite): the store's table, `SELECT` and upsert (`INSERT … ON CONFLICT DO UPDATE`) as cached prepared statements, \
in a WAL file of its own next to the store's, autocommit. `get` runs on threads with a connection each (opened beforehand), and as **rusqlite on tasks** on the tokio tasks of the other subjects, \
running the statement on the runtime's threads with a connection each and spending tokio's cooperative budget per read, as the store does (what an async store \
can do one read at a time: with 64 threads, SQLite skips most file-lock system calls, since another connection of the process nearly always holds the lock already); \
`put` on threads sharing one `Mutex<Connection>` (SQLite has one writer at a time), with `synchronous = NORMAL` \
(the store's default; the sqlx peer connects as the store did when it ran on sqlx: WAL, `NORMAL`, 10 s busy timeout) and `FULL` (SQLite's own default: \
every commit waits for the disk).\n\
- **redis-benchmark** runs a number of requests scaled to the window (20,000 per 1.5 s with one client, 200,000 with 64), not a time.\n";

fn number(ops: f64) -> String {
    format!("{ops:.0}")
}

/// `header`, then one table line per subject of every row: median ops/s, its min–max and
/// spread over the rounds, cachy's ratio to it (median of the per-round ratios, min–max),
/// and `~` when either spread exceeds 15%.
pub fn markdown(rows: &[Row], header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    let _ = writeln!(
        out,
        "Operations per second (higher is better): the median over the rounds, the lowest and highest round, and the spread \
         ((max − min) / median). Ratios are cachy's throughput over the subject's in the same round: their median and min–max. \
         `~` marks a line whose ops/s or ratio spread more than {:.0}% over the rounds: read it as rough.\n",
        NOISY * 100.0
    );
    let _ = writeln!(
        out,
        "| store | op | callers | subject | ops/s (median) | min–max | spread | cachy / subject | ratio min–max | noisy |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|---:|---:|---:|---:|:-:|");
    for row in rows {
        for m in &row.results {
            let (ratio, ratio_range) = match &m.ratio {
                None => ("—".to_owned(), "—".to_owned()),
                Some(r) => (
                    format!("{:.2}x", r.median),
                    format!("{:.2}–{:.2}x", r.min, r.max),
                ),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {}–{} | {:.0}% | {ratio} | {ratio_range} | {} |",
                row.store,
                row.op,
                row.mode,
                m.name,
                number(m.ops.median),
                number(m.ops.min),
                number(m.ops.max),
                m.ops.spread() * 100.0,
                if m.noisy() { "~" } else { "" }
            );
        }
    }
    let _ = write!(out, "\n{NOTES}");
    out
}

/// The color of a subject in the chart.
fn color(name: &str) -> &'static str {
    match name {
        "cachy" => "#1f77b4",
        "cachy blocking" => "#aec7e8",
        "Python cachy 0.3.0" => "#d62728",
        "redis-benchmark" => "#9467bd",
        "RwLock HashMap" | "std::fs" | "std::fs + spawn_blocking" => "#ff7f0e",
        name if name.starts_with("rusqlite") => "#ff7f0e",
        // The raw clients: moka, redis-rs, the memcached protocol, sqlx.
        _ => "#2ca02c",
    }
}

/// A horizontal bar chart of every row on a log scale, titled with `date`: a bar to each
/// subject's median, a whisker over its min–max.
pub fn svg(rows: &[Row], date: &str) -> String {
    let title = format!(
        "cachy vs peers, ops/s (log scale; bar: median of the rounds, whisker: min–max; ~: spread over {:.0}%), {date}",
        NOISY * 100.0
    );
    let bar = 12;
    let height: usize = 90
        + rows
            .iter()
            .map(|r| r.results.len() * bar + 10)
            .sum::<usize>();
    // Decades from 100/s to the one above the fastest round.
    let top = rows
        .iter()
        .flat_map(|r| r.results.iter().map(|m| m.ops.max))
        .fold(1e7_f64, f64::max);
    let decades = (top.log10().ceil() as usize).max(7) - 2;
    let (left, width) = (230.0, 520.0);
    let x = |ops: f64| (ops.max(100.0).log10() - 2.0) / decades as f64 * width;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"10\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"18\" font-size=\"12\">{title}</text>\n"
    );
    let legend = [
        ("cachy", "cachy"),
        ("cachy blocking", "cachy blocking"),
        ("sqlx", "raw client"),
        ("std::fs", "physical limit"),
        ("Python cachy 0.3.0", "Python cachy 0.3.0"),
        ("redis-benchmark", "redis-benchmark"),
    ];
    for (i, (subject, label)) in legend.iter().enumerate() {
        let at = 10 + i * 150;
        let _ = writeln!(
            out,
            "<rect x=\"{at}\" y=\"26\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"35\">{label}</text>",
            color(subject),
            at + 14
        );
    }
    let labels = ["100", "1k", "10k", "100k", "1M", "10M", "100M", "1G"];
    for (i, label) in labels.iter().enumerate().take(decades + 1) {
        let at = left + i as f64 * width / decades as f64;
        let _ = writeln!(
            out,
            "<line x1=\"{at:.1}\" y1=\"44\" x2=\"{at:.1}\" y2=\"{height}\" stroke=\"#ddd\"/><text x=\"{at:.1}\" y=\"54\">{label}/s</text>"
        );
    }
    let mut y = 64;
    for row in rows {
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\">{} {} ({})</text>",
            y + 10,
            row.store,
            row.op,
            row.mode
        );
        for m in &row.results {
            bar_of(&mut out, m, left, y, bar, &x);
            y += bar;
        }
        y += 10;
    }
    out.push_str("</svg>\n");
    out
}

/// One subject's bar, whisker and label, at `y`.
fn bar_of(out: &mut String, m: &Measured, left: f64, y: usize, bar: usize, x: &dyn Fn(f64) -> f64) {
    let (low, high) = (left + x(m.ops.min), left + x(m.ops.max));
    let middle = y as f64 + (bar - 2) as f64 / 2.0;
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/>\
         <line x1=\"{low:.1}\" y1=\"{middle:.1}\" x2=\"{high:.1}\" y2=\"{middle:.1}\" stroke=\"black\"/>\
         <line x1=\"{low:.1}\" y1=\"{}\" x2=\"{low:.1}\" y2=\"{}\" stroke=\"black\"/>\
         <line x1=\"{high:.1}\" y1=\"{}\" x2=\"{high:.1}\" y2=\"{}\" stroke=\"black\"/>\
         <text x=\"{:.1}\" y=\"{}\">{} {:.0}{}</text>",
        x(m.ops.median),
        bar - 2,
        color(&m.name),
        y + 1,
        y + bar - 3,
        y + 1,
        y + bar - 3,
        high + 4.0,
        y + bar - 3,
        m.name,
        m.ops.median,
        if m.noisy() { " ~" } else { "" },
    );
}
