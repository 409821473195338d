//! HTTP response caching for tower and axum services, in any cachy store.
//!
//! [`ResponseCache`] is a `tower::Layer`: in front of a handler (or a whole router), it
//! answers `GET` and `HEAD` requests from the cache, keyed by method, host, path, query and
//! the request headers the response varies on, and stores what the handler answers, as
//! HTTP allows (a response that gives no lifetime only with a default
//! [`ttl`](ResponseCache::ttl)): `Cache-Control` (`no-store`, `no-cache`, `private`,
//! `max-age`, `s-maxage`, `must-revalidate`, `proxy-revalidate`), `Expires` and `Age` on
//! the response; `no-store`, `no-cache`, `max-age` and `Pragma: no-cache` on the request.
//! Responses setting cookies are not kept unless allowed; requests carrying `Authorization`
//! or `Cookie` pass through unless allowed; a `POST`, `PUT`, `PATCH` or `DELETE` that
//! succeeds drops its URL's responses. It adds `Age` and `X-Cache` (`hit`, `miss`, `stale`,
//! `pass`), answers `If-None-Match` and `If-Modified-Since` with `304 Not Modified`, and can
//! compute an `ETag` for responses without one. With the `metrics` feature it counts
//! responses as `cachy.http.responses{store, route, cache}`.
//!
//! It is built on the store's resilient `remember`: concurrent identical requests run the
//! handler once (across processes too with [`distributed`](ResponseCache::distributed)), a
//! store that fails never fails a request, a handler failing (a `5xx`, or an error) is
//! answered with the last response for [`stale_if_error`](ResponseCache::stale_if_error),
//! and one that just expired is answered at once for
//! [`stale_while_revalidate`](ResponseCache::stale_while_revalidate) while the handler
//! makes a new one in the background. [`tags`](ResponseCache::tags) put a route's
//! responses under cache tags, which the endpoints that change them flush.
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use cachy_http::ResponseCache;
//!
//! let cache = cachy::CacheManager::from_value(serde_json::json!({
//!     "stores": { "dict": { "driver": "dict" } }
//! }))?;
//! let products = ResponseCache::new(cache.store(None)?)
//!     .ttl(Duration::from_secs(30)) // for responses that say nothing
//!     .tags(["products"])
//!     .stale_if_error(Duration::from_secs(600));
//! let app: Router = Router::new()
//!     .route("/products", get(|| async { "[...]" }))
//!     .layer(products);
//! // after a write: cache.tags("products")?.flush().await?;
//! # let _ = app; Ok(()) }
//! ```

#![warn(missing_docs)]

// The README, included only for doctests, so that its example is compiled.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

use std::sync::Arc;
use std::time::Duration;

use cachy::{RememberOptions, Repository};

mod body;
mod keys;
mod pending;
mod policy;
mod service;
mod stored;

pub use body::{BoxError, CacheBody};
pub use service::CachedService;

/// A `tower::Layer` caching the responses of the service it wraps in a cachy store. See
/// the [crate docs](crate).
#[derive(Clone)]
pub struct ResponseCache {
    cache: Repository,
    options: Arc<Options>,
    /// Shared by every copy of the layer: a write through one is seen by the others.
    pending: Arc<pending::Pending>,
}

#[derive(Clone)]
struct Options {
    prefix: String,
    ttl: Duration,
    vary: Vec<String>,
    max_body_bytes: usize,
    cache_set_cookie: bool,
    cache_credentials: bool,
    etag: bool,
    stale_if_error: Option<Duration>,
    stale_while_revalidate: Option<Duration>,
    distributed: Option<(Duration, Duration)>,
    pass_ttl: Duration,
    route: Option<String>,
    store_timeout: Duration,
}

impl ResponseCache {
    /// Cache responses in `cache` (a repository from a `CacheManager`, or tagged): `GET`
    /// and `HEAD`, for as long as the response says (`max-age`, `s-maxage`, `Expires`;
    /// nothing that does not say, unless [`ttl`](Self::ttl) gives a default), bodies up to
    /// 1 MiB.
    pub fn new(cache: Repository) -> Self {
        ResponseCache {
            cache,
            options: Arc::new(Options {
                prefix: "http:".to_owned(),
                ttl: Duration::ZERO,
                vary: Vec::new(),
                max_body_bytes: 1024 * 1024,
                cache_set_cookie: false,
                cache_credentials: false,
                etag: false,
                stale_if_error: None,
                stale_while_revalidate: None,
                distributed: None,
                pass_ttl: Duration::from_secs(60),
                route: None,
                store_timeout: Duration::from_secs(1),
            }),
            pending: Arc::default(),
        }
    }

    fn with(mut self, change: impl FnOnce(&mut Options)) -> Self {
        change(Arc::make_mut(&mut self.options));
        self
    }

    /// What the keys start with (default `http:`).
    pub fn prefix(self, prefix: impl Into<String>) -> Self {
        self.with(|o| o.prefix = prefix.into())
    }

    /// How long a response that gives no lifetime (`max-age`, `s-maxage`, `Expires`) is
    /// kept (default zero: none of them is, as a response that says nothing may be meant
    /// for one client only, and may be a stream).
    pub fn ttl(self, ttl: Duration) -> Self {
        self.with(|o| o.ttl = ttl)
    }

    /// Request headers that are part of every key, whatever the response's `Vary` says.
    pub fn vary(self, headers: impl IntoIterator<Item = impl AsRef<str>>) -> Self {
        self.with(|o| {
            o.vary = headers
                .into_iter()
                .map(|h| h.as_ref().to_ascii_lowercase())
                .collect();
        })
    }

    /// The longest body kept (default 1 MiB): longer responses stream through, uncached.
    pub fn max_body_bytes(self, bytes: usize) -> Self {
        self.with(|o| o.max_body_bytes = bytes)
    }

    /// Keep responses that set cookies (default: not, as one client's cookie must not be
    /// served to another).
    pub fn cache_set_cookie(self, allowed: bool) -> Self {
        self.with(|o| o.cache_set_cookie = allowed)
    }

    /// Answer requests carrying `Authorization` or `Cookie` from the cache (default: they
    /// pass through, as their responses may be meant for one client only).
    pub fn cache_credentials(self, allowed: bool) -> Self {
        self.with(|o| o.cache_credentials = allowed)
    }

    /// Give responses without an `ETag` one computed from their body, so that clients can
    /// revalidate with `If-None-Match` (default off).
    pub fn etag(self, computed: bool) -> Self {
        self.with(|o| o.etag = computed)
    }

    /// When the handler fails (a `5xx` response, or an error), answer with the last
    /// response up to `window` after it expired (RFC 5861's `stale-if-error`). Not for a
    /// response that forbids it: `must-revalidate`, `proxy-revalidate`, `s-maxage`.
    pub fn stale_if_error(self, window: Duration) -> Self {
        self.with(|o| o.stale_if_error = Some(window))
    }

    /// Up to `window` after a response expired, answer with it at once and let the handler
    /// make a new one in the background (RFC 5861's `stale-while-revalidate`). Within the
    /// window a failing handler is answered with it too, as serving it was allowed anyway;
    /// with [`stale_if_error`](Self::stale_if_error) as well, the longer window serves both.
    /// Not for a response that forbids it: `must-revalidate`, `proxy-revalidate`,
    /// `s-maxage`.
    pub fn stale_while_revalidate(self, window: Duration) -> Self {
        self.with(|o| o.stale_while_revalidate = Some(window))
    }

    /// How long the cache remembers that a response could not be kept (it said `no-store`
    /// or `private`, set a cookie, gave no lifetime, had a body over the limit...): until
    /// then, concurrent requests for it go to the handler at once instead of waiting for
    /// one another (default one minute; zero: never remembered).
    pub fn pass_ttl(self, ttl: Duration) -> Self {
        self.with(|o| o.pass_ttl = ttl)
    }

    /// The longest each store call of a request waits (default one second): past it, the
    /// request goes on as if the store had failed (it asks the handler, and keeps nothing),
    /// so that a slow store costs a request at most a few of these, however long the
    /// store's own timeouts.
    pub fn store_timeout(self, timeout: Duration) -> Self {
        self.with(|o| o.store_timeout = timeout)
    }

    /// The `route` label of this layer's metrics (feature `metrics`); by default, with
    /// axum, the route's pattern (`/products/{id}`), else none.
    pub fn route(self, route: impl Into<String>) -> Self {
        self.with(|o| o.route = Some(route.into()))
    }

    /// Run the handler once across every process sharing the store: others wait up to
    /// `wait` for its response (the lock is held up to `lock_ttl`).
    pub fn distributed(self, lock_ttl: Duration, wait: Duration) -> Self {
        self.with(|o| o.distributed = Some((lock_ttl, wait)))
    }

    /// Keep this route's responses under `tags`, so that flushing any of them (`cache
    /// .tags("products")?.flush()`) drops them.
    pub fn tags(mut self, tags: impl cachy::TagNames) -> Self {
        self.cache = self.cache.tags(tags);
        self
    }

    fn remember_options(&self) -> RememberOptions {
        let o = &self.options;
        // Each response's own lifetime is given with it; this one is never used as is.
        let mut options =
            RememberOptions::new(o.ttl.max(Duration::from_secs(1))).cache_timeout(o.store_timeout);
        if let Some(window) = o.stale_if_error.max(o.stale_while_revalidate) {
            // Every request asks the handler again (a failure is not remembered).
            options = options
                .fail_safe(window)
                .fail_safe_throttle(Duration::from_millis(1));
        }
        if o.stale_while_revalidate.is_some() {
            // An expired response is answered unless the handler is just as fast.
            options = options.soft_timeout(Duration::from_millis(1));
        }
        if let Some((lock_ttl, wait)) = o.distributed {
            options = options.distributed(lock_ttl, wait);
        }
        options
    }
}
