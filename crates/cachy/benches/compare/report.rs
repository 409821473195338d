//! The report: the markdown table (with a header naming the machine and the versions) and the
//! SVG bar chart.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::measure::Row;

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
/// long each cell ran.
pub fn header(date: &str, duration: Duration) -> String {
    format!(
        "# cachy benchmark comparison\n\n{date}; {}; {}; {}; {}; {}; {}; SQLite bundled by sqlx; Python cachy 0.3.0 with python-memcached 1.62.\n\n\
         Each cell runs {:.1} s; \"64 callers\" is 64 tokio tasks (cachy, redis-rs, moka, sqlx), 64 threads (cachy blocking, the raw memcached protocol, Python) \
         or 64 clients (`redis-benchmark -c 64`). Made by `./scripts/bench`.",
        machine(),
        version("rustc", &["-V"]),
        version("redis-server", &["--version"]),
        version("memcached", &["-V"]),
        version("mariadbd", &["--version"]),
        version("/usr/lib/postgresql/15/bin/postgres", &["--version"]),
        duration.as_secs_f64(),
    )
}

/// `header`, then one table line per subject of every row, with cachy's ratio to it.
pub fn markdown(rows: &[Row], header: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{header}\n");
    let _ = writeln!(
        out,
        "Operations per second (higher is better); ratios are cachy's throughput over the peer's.\n"
    );
    let _ = writeln!(
        out,
        "| store | op | callers | subject | ops/s | cachy / subject |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for row in rows {
        let ours = row.results[0].1;
        for (name, ops) in &row.results {
            let ratio = if name == "cachy" {
                "—".to_owned()
            } else {
                format!("{:.2}x", ours / ops)
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {name} | {ops:.0} | {ratio} |",
                row.store, row.op, row.mode
            );
        }
    }
    out
}

/// A horizontal bar chart of every row, on a log scale, titled with `date`.
pub fn svg(rows: &[Row], date: &str) -> String {
    let title = format!("cachy vs peers, ops/s (log scale), {date}");
    let colors = ["#1f77b4", "#aec7e8", "#2ca02c", "#d62728", "#9467bd"];
    let subjects = [
        "cachy",
        "cachy blocking",
        "raw",
        "Python cachy 0.3.0",
        "redis-benchmark",
    ];
    let color = |name: &str| {
        let index =
            if name.starts_with("raw") || name == "moka" || name == "redis-rs" || name == "sqlx" {
                2
            } else {
                subjects.iter().position(|s| *s == name).unwrap_or(2)
            };
        colors[index]
    };
    let bar = 12;
    let height: usize = 60
        + rows
            .iter()
            .map(|r| r.results.len() * bar + 10)
            .sum::<usize>();
    let (left, width) = (230.0, 560.0);
    let x = |ops: f64| (ops.max(100.0).log10() - 2.0) / 5.0 * width;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"10\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"18\" font-size=\"13\">{title}</text>\n"
    );
    for (i, label) in ["100", "1k", "10k", "100k", "1M", "10M"].iter().enumerate() {
        let at = left + i as f64 * width / 5.0;
        let _ = writeln!(
            out,
            "<line x1=\"{at}\" y1=\"30\" x2=\"{at}\" y2=\"{height}\" stroke=\"#ddd\"/><text x=\"{at}\" y=\"40\">{label}/s</text>"
        );
    }
    let mut y = 50;
    for row in rows {
        let _ = writeln!(
            out,
            "<text x=\"10\" y=\"{}\">{} {} ({})</text>",
            y + 10,
            row.store,
            row.op,
            row.mode
        );
        for (name, ops) in &row.results {
            let _ = writeln!(
                out,
                "<rect x=\"{left}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{name} {ops:.0}</text>",
                x(*ops),
                bar - 2,
                color(name),
                left + x(*ops) + 4.0,
                y + bar - 3
            );
            y += bar;
        }
        y += 10;
    }
    out.push_str("</svg>\n");
    out
}
