//! The service a [`ResponseCache`] makes of another: what each request gets, from the
//! cache or from the handler, and what of the handler's response is kept.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cachy::{Computed, Source};
use http::header::{self, HeaderMap};
use http::{Method, Request, Response};
use http_body::Body;
use serde::{Deserialize, Serialize};

use crate::ResponseCache;
use crate::body::{self, BoxError, CacheBody};
use crate::policy::{Directives, age_of, lifetime, varies_on};
use crate::stored::{Cached, Stored, push_header};

impl<S> tower_layer::Layer<S> for ResponseCache {
    type Service = CachedService<S>;

    fn layer(&self, inner: S) -> CachedService<S> {
        CachedService {
            inner,
            cache: self.clone(),
        }
    }
}

/// The service [`ResponseCache`] makes of another.
#[derive(Clone)]
pub struct CachedService<S> {
    inner: S,
    cache: ResponseCache,
}

/// Why a computation of a response gave no response to keep.
#[derive(Debug)]
enum Failed {
    /// The handler failed: its caller has what it answered.
    Handler,
    /// The cache failed.
    Cache(cachy::Error),
}

impl From<cachy::Error> for Failed {
    fn from(error: cachy::Error) -> Self {
        Failed::Cache(error)
    }
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Handler => f.write_str("the handler failed"),
            Failed::Cache(e) => write!(f, "{e}"),
        }
    }
}

/// What the handler answered the caller that ran it, when that cannot go through the cache
/// (a failure, a response that must not be shared, a body over the limit).
type Slot<E> = Arc<Mutex<Option<Result<Response<CacheBody>, E>>>>;

fn put_in<E>(slot: &Slot<E>, answer: Result<Response<CacheBody>, E>) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(answer);
}

fn take<E>(slot: &Slot<E>) -> Option<Result<Response<CacheBody>, E>> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// A response the handler made, how long it may be kept (`None`: not at all), and whether
/// it may be served after it expired.
struct Made {
    value: Cached,
    ttl: Option<Duration>,
    allow_stale: bool,
}

impl Made {
    /// A response that cannot be shared: each caller asks the handler, and the cache
    /// remembers that for `ttl`, if any.
    fn not_kept(ttl: Option<Duration>) -> Self {
        Made {
            value: Cached::Pass,
            ttl,
            allow_stale: false,
        }
    }
}

/// Statuses a response may be kept with without saying so (RFC 9110, 15.1), but for 501.
const KEPT_STATUSES: &[u16] = &[200, 203, 204, 300, 301, 308, 404, 405, 410, 414];

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for CachedService<S>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Default + Send + 'static,
    ResBody: Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<CacheBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<CacheBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone that was made ready answers this request; the one left serves the next.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let cache = self.cache.clone();
        #[cfg(feature = "metrics")]
        let route = cache.route_of(&request);
        Box::pin(async move {
            let answer = cache.answer(inner, request).await;
            #[cfg(feature = "metrics")]
            if let Ok(response) = &answer
                && cachy::observe::metrics_enabled()
            {
                cache.count(route, response);
            }
            answer
        })
    }
}

#[cfg(feature = "metrics")]
impl ResponseCache {
    /// The `route` label of `request`: the one configured, else axum's route pattern.
    fn route_of<B>(&self, request: &Request<B>) -> String {
        if let Some(route) = &self.options.route {
            return route.clone();
        }
        #[cfg(feature = "axum")]
        if let Some(matched) = request.extensions().get::<axum::extract::MatchedPath>() {
            return matched.as_str().to_owned();
        }
        // Without axum, only a configured name says which route this is.
        let _ = request;
        String::new()
    }

    /// Count `response`, by where it came from (its `X-Cache`).
    fn count(&self, route: String, response: &Response<CacheBody>) {
        let source = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("pass")
            .to_owned();
        metrics::counter!(
            "cachy.http.responses",
            "store" => self.cache.name().to_owned(),
            "route" => route,
            "cache" => source,
        )
        .increment(1);
    }
}

/// `request` answered by `inner`, which may not be ready yet.
async fn call<S, ReqBody, ResBody>(
    inner: &mut S,
    request: Request<ReqBody>,
) -> Result<Response<ResBody>, S::Error>
where
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
    inner.call(request).await
}

/// The handler's own answer, marked as not from the cache.
fn pass<ResBody, E>(answer: Result<Response<ResBody>, E>) -> Result<Response<CacheBody>, E>
where
    ResBody: Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    answer.map(|response| marked(response.map(CacheBody::new), "pass"))
}

fn marked(mut response: Response<CacheBody>, source: &'static str) -> Response<CacheBody> {
    response.headers_mut().insert(
        header::HeaderName::from_static("x-cache"),
        header::HeaderValue::from_static(source),
    );
    response
}

impl ResponseCache {
    async fn answer<S, ReqBody, ResBody>(
        &self,
        mut inner: S,
        request: Request<ReqBody>,
    ) -> Result<Response<CacheBody>, S::Error>
    where
        S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqBody: Default + Send + 'static,
        ResBody: Body<Data = bytes::Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let o = &self.options;
        let method = request.method().clone();
        let Some(target) = self.target(&request) else {
            // A `Host` that is no host (`a/b`) would make the key of another URL.
            return pass(call(&mut inner, request).await);
        };
        // Only `GET` and `HEAD`: other methods' bodies are part of what they ask.
        if method != Method::GET && method != Method::HEAD {
            let answer = call(&mut inner, request).await;
            // A write that succeeded changed what the URL's responses say (RFC 9111, 4.4).
            if !is_safe(&method)
                && let Ok(response) = &answer
                && (response.status().is_success() || response.status().is_redirection())
            {
                self.invalidate(&target).await;
            }
            return pass(answer);
        }
        let directives = Directives::of_request(request.headers());
        let credentials = [
            header::AUTHORIZATION,
            header::PROXY_AUTHORIZATION,
            header::COOKIE,
        ]
        .iter()
        .any(|name| request.headers().contains_key(name));
        if directives.no_store || directives.no_cache || (credentials && !o.cache_credentials) {
            // The client wants a response made now (or none kept): what is kept stays.
            return pass(call(&mut inner, request).await);
        }
        let url_key = self.url_key(&method, &target);
        let (parts, _) = request.into_parts();
        let shown = Request::from_parts(parts.clone(), ());
        // The body of a `GET` or `HEAD` has no meaning: each run of the handler gets an
        // empty one. The request asking for the response to keep has no conditions: the
        // layer answers them from what it keeps (a handler's `304` or `206` would be
        // remembered as a response it cannot keep, for every client).
        let original = parts.clone();
        let fresh = move || Request::from_parts(original.clone(), ReqBody::default());
        let unconditional = {
            let mut parts = parts;
            for name in CONDITIONS {
                parts.headers.remove(name);
            }
            move || Request::from_parts(parts.clone(), ReqBody::default())
        };
        // What is kept for the URL is not used while a write to it could not drop what was
        // kept before, nor while its index cannot be read: a key that is never written, so
        // that concurrent requests still share one run of the handler, which keeps nothing.
        // (A pending drop that succeeds now makes a new index: read after it.)
        let settled = self.pending_settled(&target).await;
        let index = self.index_of(&url_key).await;
        let trusted = settled && index.is_some();
        let index = index.unwrap_or_default();
        let mut key = self.variant_key(&url_key, &index, shown.headers());
        if !trusted {
            key.push_str("\nuntrusted");
        }
        // After more failed drops than it could remember, this process uses only what it
        // kept since (see `Pending::record`).
        if let Some(since) = self.pending.kept_since() {
            key.push_str(&format!("\nsince={since}"));
        }
        let slot: Slot<S::Error> = Arc::default();
        // Without a permit of its own (a `ConcurrencyLimit` or `Buffer` inside): polled
        // ready only if this caller must ask the handler itself after all.
        let mut spare = inner.clone();
        let factory = {
            // The ready service runs the handler, or is dropped (with any permit it holds)
            // when another caller's run is awaited instead.
            let (cache, slot) = (self.clone(), Arc::clone(&slot));
            move || async move {
                let made = cache
                    .make(inner, unconditional(), &url_key, &index, &slot)
                    .await?;
                let computed = Computed::new(made.value);
                let computed = match made.ttl {
                    Some(ttl) if trusted => computed.ttl(ttl),
                    _ => computed.uncached(),
                };
                Ok::<_, Failed>(if made.allow_stale {
                    computed
                } else {
                    computed.fail_safe(Duration::ZERO)
                })
            }
        };
        let entry = self
            .cache
            .remember_entry(&key, &self.remember_options(), factory)
            .await;
        let (cached, source) = match entry {
            Ok(entry) => {
                let source = match entry.source {
                    Source::Stale => "stale",
                    Source::Cache => "hit",
                    Source::Computed if trusted => "miss",
                    Source::Computed => "pass",
                };
                (Ok(entry.value), source)
            }
            Err(error) => (Err(error), "pass"),
        };
        // A client that takes no response as old as the one kept gets one made now.
        if let (Some(max_age), Ok(Cached::Response(stored))) = (directives.max_age, &cached)
            && matches!(source, "hit" | "stale")
            && stored.age() > max_age
        {
            return match take(&slot) {
                Some(answer) => answer,
                None => pass(call(&mut spare, fresh()).await),
            };
        }
        match self.respond(cached, &shown, &slot, source) {
            Some(answer) => answer,
            // Another caller ran the handler, and what it got could not be shared; or the
            // cache remembers that this URL's responses cannot be.
            None => pass(call(&mut spare, fresh()).await),
        }
    }

    /// The answer to `shown` from what the cache (or this caller's run of the handler)
    /// gave; `None` when this caller must ask the handler itself.
    fn respond<E>(
        &self,
        cached: Result<Cached, Failed>,
        shown: &Request<()>,
        slot: &Slot<E>,
        source: &'static str,
    ) -> Option<Result<Response<CacheBody>, E>> {
        match cached {
            Ok(Cached::Response(stored)) if stored.fits(shown) => {
                Some(Ok(stored.respond(shown, source)))
            }
            Ok(Cached::Unkept(stored)) if stored.fits(shown) => {
                Some(Ok(stored.respond(shown, "pass")))
            }
            Ok(Cached::Response(_) | Cached::Unkept(_)) => None,
            Ok(Cached::Pass) | Err(_) => take(slot),
        }
    }

    /// Run the handler on `request` and say what of its response can be kept; what cannot
    /// be shared goes to `slot`, for the caller that ran it.
    async fn make<S, ReqBody, ResBody>(
        &self,
        mut inner: S,
        request: Request<ReqBody>,
        url_key: &str,
        index: &Index,
        slot: &Slot<S::Error>,
    ) -> Result<Made, Failed>
    where
        S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
        ResBody: Body<Data = bytes::Bytes> + Send + 'static,
        ResBody::Error: Into<BoxError>,
    {
        let o = &self.options;
        let request_headers = request.headers().clone();
        let response = match call(&mut inner, request).await {
            Ok(response) => response,
            Err(error) => {
                put_in(slot, Err(error));
                return Err(Failed::Handler);
            }
        };
        let (parts, body) = response.into_parts();
        let passed = |body: CacheBody| marked(Response::from_parts(parts.clone(), body), "pass");
        let names = index.names.as_slice();
        if parts.status.is_server_error() {
            put_in(slot, Ok(passed(CacheBody::new(body))));
            return Err(Failed::Handler);
        }
        let varies = varies_on(&parts.headers);
        if let Some(varies) = &varies
            && varies.as_slice() != names
        {
            // Responses of this URL vary on other headers than the key had: the next keys
            // will have them; this response, made under a key without them, is not shared.
            let index = Index {
                names: varies.clone(),
                generation: new_generation(),
            };
            let index_key = index_key(url_key);
            let put = self.cache.put(&index_key, &index, INDEX_TTL);
            let _ = self.within_budget(put).await;
            // Not kept, but given to the identical requests waiting for it, as their keys
            // had the same headers.
            return match body::read(body, o.max_body_bytes).await {
                body::Read::Whole(bytes) => Ok(Made {
                    value: Cached::Unkept(Stored::new(
                        &parts,
                        bytes,
                        &request_headers,
                        varies,
                        age_of(&parts.headers),
                        o.etag,
                    )),
                    ttl: None,
                    allow_stale: false,
                }),
                body::Read::Over(rest) => {
                    put_in(slot, Ok(passed(rest)));
                    Ok(Made::not_kept(None))
                }
                body::Read::Failed(error) => {
                    put_in(slot, Ok(passed(CacheBody::failed(error))));
                    Err(Failed::Handler)
                }
            };
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        // A stream of events is answered as it comes, never read whole.
        let stream = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        let ttl = lifetime(&parts.headers, o.ttl).filter(|_| {
            varies.is_some()
                && !stream
                && KEPT_STATUSES.contains(&parts.status.as_u16())
                && (o.cache_set_cookie || !parts.headers.contains_key(header::SET_COOKIE))
                && declared.is_none_or(|length| length <= o.max_body_bytes)
        });
        let pass_ttl = Some(o.pass_ttl).filter(|ttl| !ttl.is_zero());
        if ttl.is_none() {
            put_in(slot, Ok(passed(CacheBody::new(body))));
            return Ok(Made::not_kept(pass_ttl));
        }
        match body::read(body, o.max_body_bytes).await {
            body::Read::Whole(bytes) => Ok(Made {
                value: Cached::Response(Stored::new(
                    &parts,
                    bytes,
                    &request_headers,
                    names,
                    age_of(&parts.headers),
                    o.etag,
                )),
                ttl,
                allow_stale: Directives::of(&parts.headers).allow_stale(),
            }),
            body::Read::Over(rest) => {
                put_in(slot, Ok(passed(rest)));
                Ok(Made::not_kept(pass_ttl))
            }
            body::Read::Failed(error) => {
                put_in(slot, Ok(passed(CacheBody::failed(error))));
                Err(Failed::Handler)
            }
        }
    }

    /// What `request` asks for, whatever the method: host (lower case), path and query;
    /// `None` for a `Host` that is not a host and port. Under axum's `Router::nest`, the
    /// path as the client sent it, not as the nest saw it.
    fn target<B>(&self, request: &Request<B>) -> Option<String> {
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
    fn url_key(&self, method: &Method, target: &str) -> String {
        format!("{}{method} {target}", self.options.prefix)
    }

    /// The key of the response to a request with `headers` for `url_key`, in the URL's
    /// current generation, with the headers every key has and those its responses vary on.
    fn variant_key(&self, url_key: &str, index: &Index, headers: &HeaderMap) -> String {
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
    async fn index_of(&self, url_key: &str) -> Option<Index> {
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

    /// Make every kept response of `target` unreachable: a new generation of its keys. If
    /// the store fails, `target` is pending until a later try succeeds; whether this one
    /// did.
    async fn invalidate(&self, target: &str) -> bool {
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
    async fn pending_settled(&self, target: &str) -> bool {
        match self.pending.due(target) {
            Due::Settled => true,
            Due::Waiting => false,
            Due::Now => self.invalidate(target).await,
        }
    }

    /// `call` to the store, failing as a timeout past the layer's
    /// [`store_timeout`](ResponseCache::store_timeout).
    async fn within_budget<T>(
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

/// Request headers that make a request conditional (or partial).
const CONDITIONS: [header::HeaderName; 6] = [
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

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

/// Writes whose invalidation failed, by target, with when it was last tried: until one
/// succeeds, the target's kept responses are not used (in this process).
#[derive(Default)]
pub(crate) struct Pending {
    any: std::sync::atomic::AtomicBool,
    targets: Mutex<std::collections::HashMap<String, std::time::Instant>>,
    kept_since: AtomicU64,
}

/// Whether a target is pending, and whether to try its invalidation again.
enum Due {
    Settled,
    Waiting,
    Now,
}

/// The most targets kept pending (see [`Pending::record`] for what happens past it).
const MOST_PENDING: usize = 10_000;

/// How often a pending invalidation is tried again, at most.
const RETRY_EVERY: Duration = Duration::from_secs(1);

impl Pending {
    fn due(&self, target: &str) -> Due {
        if !self.any.load(Ordering::Acquire) {
            return Due::Settled;
        }
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        match targets.get_mut(target) {
            None => Due::Settled,
            Some(tried) if tried.elapsed() < RETRY_EVERY => Due::Waiting,
            Some(tried) => {
                *tried = std::time::Instant::now();
                Due::Now
            }
        }
    }

    fn record(&self, target: &str, done: bool) {
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        if done {
            targets.remove(target);
        } else if targets.len() < MOST_PENDING || targets.contains_key(target) {
            targets.insert(target.to_owned(), std::time::Instant::now());
        } else {
            // More than it can remember: from now on this process keys what it keeps with
            // the time, so that nothing kept before, by anyone, is used again here; the
            // targets it remembered are covered by that too.
            targets.clear();
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos().max(1) as u64);
            self.kept_since.store(now, Ordering::Release);
        }
        self.any.store(!targets.is_empty(), Ordering::Release);
    }

    /// Since when this process uses only what it kept itself (nanoseconds since the Unix
    /// epoch), after more failed drops than it could remember.
    fn kept_since(&self) -> Option<u64> {
        Some(self.kept_since.load(Ordering::Acquire)).filter(|since| *since != 0)
    }
}

/// Whether `method` changes nothing on the server (RFC 9110, 9.2.1).
fn is_safe(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE].contains(method)
}

/// What the layer knows of a URL: the request headers its responses vary on, and the
/// generation of its keys, chosen at random when the index is made and again on each write
/// to the URL. Every key of a response has it: when the index is replaced, or lost
/// (expired, evicted), no response kept before can be reached again.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    names: Vec<String>,
    generation: u64,
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
