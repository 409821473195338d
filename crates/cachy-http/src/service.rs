//! The service a [`ResponseCache`] makes of another: what each request gets, from the
//! cache or from the handler, and what of the handler's response is kept.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use cachy::{Computed, Source};
use http::header;
use http::{Method, Request, Response};
use http_body::Body;

use crate::ResponseCache;
use crate::body::{self, BoxError, CacheBody};
use crate::keys::Index;
use crate::policy::{Directives, age_of, lifetime, varies_on};
use crate::stored::{Cached, Stored};

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
            self.vary_on(url_key, varies.clone()).await;
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

/// Whether `method` changes nothing on the server (RFC 9110, 9.2.1).
fn is_safe(method: &Method) -> bool {
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::TRACE].contains(method)
}
