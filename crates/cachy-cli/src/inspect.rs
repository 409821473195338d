//! `stats`, `keys`, `prune`, `flush` and `create-table`: looking into a store and maintaining
//! it through what its backend offers ([`Inspect`]), whichever backend it is.

use cachy::Repository;
use cachy::inspect::{Census, Inspect, Location, Tally};
use serde_json::{Map, Value, json};

use crate::output::{Failure, Output, unsupported};

/// What looks into `repository`'s store (the manager's own, not a second one), or a failure
/// saying why `operation` cannot be done on it.
fn inspector<'a>(repository: &'a Repository, operation: &str) -> Result<&'a dyn Inspect, Failure> {
    repository
        .store()
        .inspector()
        .map_err(|why| unsupported(repository.name(), format!("cannot {operation}: {why}")))
}

/// Run `work` with a progress display saying `what`.
async fn shown<T>(
    out: &Output,
    what: &str,
    work: impl AsyncFnOnce(cachy::inspect::OnProgress) -> cachy::Result<T>,
) -> cachy::Result<T> {
    let shown = out.progress(what);
    let result = work(shown.on_progress()).await;
    shown.finish();
    result
}

/// `cachy stats`: what the store holds, as far as its backend can tell.
pub(crate) async fn stats(repository: &Repository, out: &Output) -> Result<(), Failure> {
    let name = repository.name();
    let store = inspector(repository, "show stats")?;
    let census = shown(out, "counting", async |progress| {
        store.census(progress).await
    })
    .await
    .map_err(|e| e.with_store(name))?;
    let driver = store.driver();
    let (place, mut document) = located(store.location());
    document.insert("store".to_owned(), name.into());
    document.insert("driver".to_owned(), driver.into());
    let mut text = format!("store `{name}` ({driver}{place})");
    match census {
        Census::Keys { keys, bytes } => {
            text.push_str(&format!("\nkeys: {keys}\nvalue bytes: {bytes}"));
            document.insert("keys".to_owned(), keys.into());
            document.insert("bytes".to_owned(), bytes.into());
        }
        Census::Rows(rows) => {
            text.push_str(&format!(
                "\nlive rows: {} ({} value bytes)\nexpired rows: {} ({} value bytes)",
                rows.live, rows.live_bytes, rows.expired, rows.expired_bytes
            ));
            document.insert(
                "live".to_owned(),
                json!({ "rows": rows.live, "bytes": rows.live_bytes }),
            );
            document.insert(
                "expired".to_owned(),
                json!({ "rows": rows.expired, "bytes": rows.expired_bytes }),
            );
        }
        Census::Files(files) => {
            for (label, field, tally) in [
                ("live files", "live", files.live),
                ("expired files", "expired", files.expired),
                ("corrupt files", "corrupt", files.corrupt),
                ("abandoned temporary files", "abandoned", files.abandoned),
            ] {
                text.push_str(&format!(
                    "\n{label}: {} ({} bytes)",
                    tally.files, tally.bytes
                ));
                document.insert(field.to_owned(), tally_json(tally));
            }
        }
        Census::Servers(servers) => {
            for s in &servers {
                text.push_str(&format!(
                    "\n{}: {} items, {} of {} bytes, {} hits, {} misses, {} evictions",
                    s.address,
                    s.curr_items,
                    s.bytes,
                    s.limit_maxbytes,
                    s.get_hits,
                    s.get_misses,
                    s.evictions
                ));
            }
            let servers: Vec<Value> = servers
                .iter()
                .map(|s| {
                    json!({
                        "address": s.address, "curr_items": s.curr_items, "bytes": s.bytes,
                        "limit_maxbytes": s.limit_maxbytes, "get_hits": s.get_hits,
                        "get_misses": s.get_misses, "evictions": s.evictions,
                    })
                })
                .collect();
            document.insert("servers".to_owned(), servers.into());
        }
        other => {
            return Err(unsupported(
                name,
                format!("cannot show stats: this command does not know the census {other:?}"),
            ));
        }
    }
    out.print(&text, Value::Object(document))
}

/// Where the store keeps its items: a phrase for the text (`, prefix "app:"`) and the same
/// as the first fields of the JSON document.
fn located(location: Location) -> (String, Map<String, Value>) {
    let mut document = Map::new();
    let place = match location {
        Location::Prefix(prefix) => {
            let place = format!(", prefix {prefix:?}");
            document.insert("prefix".to_owned(), prefix.into());
            place
        }
        Location::Path(path) => {
            let place = format!(", {}", path.display());
            document.insert("path".to_owned(), json!(path));
            place
        }
        Location::Servers(servers) => {
            let place = format!(", {}", servers.join(", "));
            document.insert("addresses".to_owned(), json!(servers));
            place
        }
        other => format!(", {other:?}"),
    };
    (place, document)
}

fn tally_json(tally: Tally) -> Value {
    json!({ "files": tally.files, "bytes": tally.bytes })
}

/// `cachy keys PATTERN`: the keys of the store that match `pattern`, printed as they are
/// found (see [`Inspect::for_each_key`](cachy::inspect::Inspect::for_each_key) for the
/// order).
pub(crate) async fn keys(
    repository: &Repository,
    pattern: &str,
    out: &Output,
) -> Result<(), Failure> {
    let name = repository.name();
    let store = inspector(repository, "list keys")?;
    let head = serde_json::Map::from_iter([
        ("store".to_owned(), name.into()),
        ("pattern".to_owned(), pattern.into()),
    ]);
    let mut list = out.list(head, "keys");
    let listed = shown(out, "listing keys", async |progress| {
        store
            .for_each_key(pattern, progress, &mut |key| list.item(key))
            .await
    })
    .await;
    list.finish(listed.is_ok())?;
    listed.map_err(|e| Failure(e.with_store(name)))
}

/// `cachy prune`: remove what the store keeps but will never serve again.
pub(crate) async fn prune(repository: &Repository, out: &Output) -> Result<(), Failure> {
    let name = repository.name();
    let store = inspector(repository, "prune")?;
    let pruned = shown(out, "pruning", async |progress| store.prune(progress).await)
        .await
        .map_err(|e| e.with_store(name))?;
    let mut document = json!({ "store": name, "pruned": pruned.items });
    if let Some(bytes) = pruned.bytes {
        document["bytes"] = bytes.into();
    }
    out.print(&pruned.items.to_string(), document)
}

/// `cachy flush`: remove every item, with progress where the backend reports it.
pub(crate) async fn flush(repository: &Repository, out: &Output) -> Result<(), Failure> {
    let name = repository.name();
    let what = format!("flushing store `{name}`");
    if repository.store().is_process_local() {
        // This process's own copy of the store is not the one the application fills.
        let why = repository.store().inspector().err().unwrap_or(
            "its items live in the memory of each application process, which this command \
             cannot reach",
        );
        return Err(unsupported(name, format!("cannot flush: {why}")));
    }
    let flushed = match repository.store().inspector() {
        Ok(store) => {
            shown(out, &what, async |progress| {
                store.flush_with_progress(progress).await
            })
            .await
        }
        Err(_) => shown(out, &what, async |_| repository.flush().await).await,
    };
    flushed.map_err(|e| e.with_store(name))?;
    out.print(
        &format!("flushed store `{name}`: every item removed"),
        json!({ "store": name, "flushed": true }),
    )
}

/// `cachy create-table`: create what the store needs before first use.
pub(crate) async fn create_table(repository: &Repository, out: &Output) -> Result<(), Failure> {
    let name = repository.name();
    let store = inspector(repository, "create a table")?;
    store
        .create_schema()
        .await
        .map_err(|e| e.with_store(name))?;
    out.print("", json!({ "store": name, "table_exists": true }))
}
