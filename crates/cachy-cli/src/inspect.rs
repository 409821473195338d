//! `stats` and `keys`: looking into a store through the methods only its backend has.

use std::any::Any;

use cachy::Repository;
use cachy::stores::{
    DatabaseStore, FileStore, HybridStore, MemcachedStore, MemoryStore, NullStore, RedisStore,
};
use serde_json::{Value, json};

use crate::Failure;
use crate::output::{Output, unsupported};

/// The concrete store under a repository, for what only some backends can do.
pub(crate) enum Backend<'a> {
    Redis(&'a RedisStore),
    Database(&'a DatabaseStore),
    File(&'a FileStore),
    Memcached(&'a MemcachedStore),
    /// A store nothing can be looked up in from here, and why.
    Opaque(&'static str),
}

/// The backend of `repository`'s store (the manager's own, not a second one).
pub(crate) fn backend(repository: &Repository) -> Backend<'_> {
    let store: &dyn Any = &**repository.store();
    if let Some(store) = store.downcast_ref() {
        return Backend::Redis(store);
    }
    if let Some(store) = store.downcast_ref() {
        return Backend::Database(store);
    }
    if let Some(store) = store.downcast_ref() {
        return Backend::File(store);
    }
    if let Some(store) = store.downcast_ref() {
        return Backend::Memcached(store);
    }
    Backend::Opaque(if store.is::<MemoryStore>() {
        "it is an in-process memory store: its items live in the memory of each application \
         process, and this command, another process, cannot see them"
    } else if store.is::<HybridStore>() {
        "it is a hybrid store: its in-process level lives in each application process, which \
         this command, another process, cannot see; run the command on the store under it"
    } else if store.is::<NullStore>() {
        "it is the null store, which keeps nothing"
    } else {
        "it is a store of a custom driver, which this command does not know"
    })
}

/// `cachy stats`: what the store holds, as far as its backend can tell.
pub(crate) async fn stats(repository: &Repository, out: &Output) -> Result<(), Failure> {
    let name = repository.name();
    let (text, document) = match backend(repository) {
        Backend::Redis(store) => {
            let counter = out.counter("keys scanned");
            let (mut keys, mut bytes) = (0u64, 0u64);
            let scanned = store
                .scan_prefix("*", true, |_, size| {
                    keys += 1;
                    bytes += size.unwrap_or(0);
                    counter.inc(1);
                })
                .await;
            counter.finish_and_clear();
            scanned.map_err(|e| e.with_store(name))?;
            let prefix = store.prefix();
            (
                format!(
                    "store `{name}` (redis, prefix {prefix:?})\nkeys: {keys}\nvalue bytes: {bytes}"
                ),
                json!({
                    "store": name, "driver": "redis", "prefix": prefix,
                    "keys": keys, "bytes": bytes,
                }),
            )
        }
        Backend::Database(store) => {
            let spinner = out.spinner("counting rows".to_owned());
            let counted = store.count_rows().await;
            spinner.finish_and_clear();
            let rows = counted.map_err(|e| e.with_store(name))?;
            let prefix = store.prefix();
            (
                format!(
                    "store `{name}` (database, prefix {prefix:?})\n\
                     live rows: {} ({} value bytes)\nexpired rows: {} ({} value bytes)",
                    rows.live, rows.live_bytes, rows.expired, rows.expired_bytes
                ),
                json!({
                    "store": name, "driver": "database", "prefix": prefix,
                    "live": { "rows": rows.live, "bytes": rows.live_bytes },
                    "expired": { "rows": rows.expired, "bytes": rows.expired_bytes },
                }),
            )
        }
        Backend::File(store) => {
            let bar = out.bar(0, "{bar:30} {pos}/{len} folders, {msg} [{elapsed}]");
            let shown = bar.clone();
            let counted = store
                .inventory(Some(Box::new(move |progress| {
                    shown.set_length(progress.folders);
                    shown.set_position(progress.folders_done);
                    shown.set_message(format!("{} files", progress.files));
                })))
                .await;
            bar.finish_and_clear();
            let files = counted.map_err(|e| e.with_store(name))?;
            let tally = |(files, bytes): (u64, u64)| json!({ "files": files, "bytes": bytes });
            let (live, expired, corrupt, abandoned) = (
                (files.live.files, files.live.bytes),
                (files.expired.files, files.expired.bytes),
                (files.corrupt.files, files.corrupt.bytes),
                (files.abandoned.files, files.abandoned.bytes),
            );
            (
                format!(
                    "store `{name}` (file, {})\nlive files: {} ({} bytes)\n\
                     expired files: {} ({} bytes)\ncorrupt files: {} ({} bytes)\n\
                     abandoned temporary files: {} ({} bytes)",
                    store.root().display(),
                    live.0,
                    live.1,
                    expired.0,
                    expired.1,
                    corrupt.0,
                    corrupt.1,
                    abandoned.0,
                    abandoned.1
                ),
                json!({
                    "store": name, "driver": "file", "path": store.root(),
                    "live": tally(live), "expired": tally(expired), "corrupt": tally(corrupt),
                    "abandoned": tally(abandoned),
                }),
            )
        }
        Backend::Memcached(store) => {
            let spinner = out.spinner("asking the servers".to_owned());
            let asked = store.server_stats().await;
            spinner.finish_and_clear();
            let servers = asked.map_err(|e| e.with_store(name))?;
            let mut text = format!("store `{name}` (memcached)");
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
            (
                text,
                json!({ "store": name, "driver": "memcached", "servers": servers }),
            )
        }
        Backend::Opaque(why) => {
            return Err(unsupported(name, format!("cannot show stats: {why}")));
        }
    };
    out.print(&text, document)
}

/// `cachy keys PATTERN`: the keys of the store that match `pattern`, sorted.
pub(crate) async fn keys(
    repository: &Repository,
    pattern: &str,
    out: &Output,
) -> Result<(), Failure> {
    let name = repository.name();
    let keys = match backend(repository) {
        Backend::Redis(store) => {
            let counter = out.counter("keys scanned");
            let mut keys = Vec::new();
            let scanned = store
                .scan_prefix(pattern, false, |key, _| {
                    keys.push(key.to_owned());
                    counter.inc(1);
                })
                .await;
            counter.finish_and_clear();
            scanned.map_err(|e| e.with_store(name))?;
            keys.sort_unstable();
            keys
        }
        Backend::Database(store) => {
            let spinner = out.spinner("listing keys".to_owned());
            let listed = store.keys(pattern).await;
            spinner.finish_and_clear();
            listed.map_err(|e| e.with_store(name))?
        }
        Backend::File(_) => {
            return Err(unsupported(
                name,
                "cannot list keys: a file store names each file by a hash of its key, so \
                 the keys themselves are stored nowhere"
                    .to_owned(),
            ));
        }
        Backend::Memcached(_) => {
            return Err(unsupported(
                name,
                "cannot list keys: memcached has no command that lists them".to_owned(),
            ));
        }
        Backend::Opaque(why) => {
            return Err(unsupported(name, format!("cannot list keys: {why}")));
        }
    };
    out.print(
        &keys.join("\n"),
        json!({ "store": name, "pattern": pattern, "keys": keys }),
    )
}
