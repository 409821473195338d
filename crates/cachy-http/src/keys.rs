//! What a response is kept under: the key of a URL and of each of its variants, the URL's
//! index (the headers its responses vary on, and the random generation every key carries),
//! and how a write to the URL makes what was kept before unreachable.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap};
use http::{Method, Request};
use serde::{Deserialize, Serialize};

use crate::ResponseCache;
use crate::pending::Due;
use crate::stored::push_header;

impl ResponseCache {
    /// What `request` asks for, whatever the method: host (lower case), path and query;
    /// `None` for a `Host` that is not a host and port. Under axum's `Router::nest`, the
    /// path as the client sent it, not as the nest saw it.
    pub(crate) fn target<B>(&self, request: &Request<B>) -> Option<String> {
        // The host too: one process may serve several sites.
        let host = match request.uri().authority() {
            Some(authority) => host_of(authority.as_str().as_bytes())?,
            None => match request.headers().get(header::HOST) {
                Some(host) => host_of(host.as_bytes())?,
                None => String::new(),
            },
        };
        #[cfg(feature = "axum")]
        let uri = request
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or(request.uri(), |original| &original.0);
        #[cfg(not(feature = "axum"))]
        let uri = request.uri();
        Some(format!(
            "{host} {}",
            uri.path_and_query().map_or("/", |p| p.as_str())
        ))
    }

    /// The key of `method` on `target`.
    pub(crate) fn url_key(&self, method: &Method, target: &str) -> String {
        format!("{}{method} {target}", self.options.prefix)
    }

    /// The key of the response to a request with `headers` for `url_key`, in the URL's
    /// current generation, with the headers every key has and those its responses vary on.
    pub(crate) fn variant_key(&self, url_key: &str, index: &Index, headers: &HeaderMap) -> String {
        let mut key = format!("{url_key}\ng={}", index.generation);
        for name in &self.options.vary {
            push_header(&mut key, "c:", name, headers);
        }
        for name in &index.names {
            push_header(&mut key, "v:", name, headers);
        }
        key
    }

    /// The index of `url_key`: the one kept, or a new one (made by exactly one of
    /// concurrent requests, which all then use it); `None` when the store fails. An index
    /// that does not read as one (written by another program) is replaced.
    pub(crate) async fn index_of(&self, url_key: &str) -> Option<Index> {
        let key = index_key(url_key);
        let made = Index {
            names: Vec::new(),
            generation: new_generation(),
        };
        match self.within_budget(self.cache.get::<Index>(&key)).await {
            Ok(Some(index)) => return Some(index),
            Ok(None) => {}
            Err(e) if e.kind() == cachy::ErrorKind::Deserialize => {
                let put = self.cache.put(&key, &made, INDEX_TTL);
                return self.within_budget(put).await.ok().map(|()| made);
            }
            Err(_) => return None,
        }
        let add = self.cache.add(&key, &made, INDEX_TTL);
        if self.within_budget(add).await.ok()? {
            return Some(made);
        }
        // Another request made it meanwhile.
        self.within_budget(self.cache.get::<Index>(&key))
            .await
            .ok()
            .flatten()
    }

    /// From now on, `url_key`'s responses vary on `names`: a new index, with a new
    /// generation (what was kept under the old keys, without those names, is never used).
    /// Best effort: a failing store leaves the old index, and the next response tries again.
    pub(crate) async fn vary_on(&self, url_key: &str, names: Vec<String>) {
        let index = Index {
            names,
            generation: new_generation(),
        };
        let index_key = index_key(url_key);
        let put = self.cache.put(&index_key, &index, INDEX_TTL);
        let _ = self.within_budget(put).await;
    }

    /// Make every kept response of `target` unreachable: a new generation of its keys. If
    /// the store fails, `target` is pending until a later try succeeds; whether this one
    /// did.
    pub(crate) async fn invalidate(&self, target: &str) -> bool {
        // One budget for the whole drop: a hung store costs a write one `store_timeout`.
        let done = self
            .within_budget(self.new_generations(target))
            .await
            .is_ok();
        self.pending.record(target, done);
        done
    }

    /// A new index, with a new generation, for `GET` and `HEAD` of `target`.
    async fn new_generations(&self, target: &str) -> cachy::Result<()> {
        for method in [Method::GET, Method::HEAD] {
            let index_key = index_key(&self.url_key(&method, target));
            // Without the names, the next response teaches them again.
            let names = match self.cache.get::<Index>(&index_key).await {
                Ok(Some(index)) => index.names,
                _ => Vec::new(),
            };
            let index = Index {
                names,
                generation: new_generation(),
            };
            self.cache.put(&index_key, &index, INDEX_TTL).await?;
        }
        Ok(())
    }

    /// Whether `target` has no write whose invalidation is pending: if it has, and a try is
    /// due, it is tried again now.
    pub(crate) async fn pending_settled(&self, target: &str) -> bool {
        match self.pending.due(target) {
            Due::Settled => true,
            Due::Waiting => false,
            Due::Now => self.invalidate(target).await,
        }
    }

    /// `call` to the store, failing as a timeout past the layer's
    /// [`store_timeout`](ResponseCache::store_timeout).
    pub(crate) async fn within_budget<T>(
        &self,
        call: impl Future<Output = cachy::Result<T>>,
    ) -> cachy::Result<T> {
        let limit = self.options.store_timeout;
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(cachy::Error::new(
                cachy::ErrorKind::Timeout,
                format!("the cache did not answer within the layer's store timeout of {limit:?}"),
            ))
        })
    }
}

/// The host (with its port, lower case) a `Host` header names, if it names one and nothing
/// else: no path, user or query.
fn host_of(value: &[u8]) -> Option<String> {
    let authority = http::uri::Authority::try_from(value).ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let host = match authority.port() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_owned(),
    };
    Some(host.to_ascii_lowercase())
}

/// What the layer knows of a URL: the request headers its responses vary on, and the
/// generation of its keys, chosen at random when the index is made and again on each write
/// to the URL. Every key of a response has it: when the index is replaced, or lost
/// (expired, evicted), no response kept before can be reached again.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Index {
    pub(crate) names: Vec<String>,
    pub(crate) generation: u64,
}

/// How long an index is kept (a URL still asked for after it gets a new one: one miss).
const INDEX_TTL: Duration = Duration::from_secs(86_400);

/// A generation no other index of any process has had: 63 bits, so that every serializer
/// (JSON, msgpack, pickle) reads it back as it was written.
fn new_generation() -> u64 {
    use std::hash::BuildHasher;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::process::id(),
    );
    (std::collections::hash_map::RandomState::new().hash_one(seed) >> 1).max(1)
}

/// Where the index of `url_key` is kept.
fn index_key(url_key: &str) -> String {
    format!("{url_key}\nindex")
}
