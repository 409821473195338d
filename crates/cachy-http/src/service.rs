//! The service a [`ResponseCache`] makes of another: what each request gets, from the
//! cache or from the handler, and what of the handler's response is kept.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use cachy::{Computed, Source};
use http::header::{self, HeaderMap};
use http::{Method, Request, Response};
use http_body::Body;

use crate::ResponseCache;
use crate::body::{self, BoxError, CacheBody};
use crate::policy::{Directives, lifetime, varies_on};
use crate::stored::{Cached, Stored, request_value};

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

/// A response the handler made, and how long it may be kept (`None`: not at all).
struct Made {
    value: Cached,
    ttl: Option<Duration>,
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
        Box::pin(async move { cache.answer(inner, request).await })
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
        let directives = Directives::of(request.headers());
        let credentials = request.headers().contains_key(header::AUTHORIZATION)
            || request.headers().contains_key(header::COOKIE);
        // Only `GET` and `HEAD`: other methods' bodies are part of what they ask.
        if ![Method::GET, Method::HEAD].contains(request.method())
            || directives.no_store
            || (credentials && !o.cache_credentials)
        {
            return pass(call(&mut inner, request).await);
        }
        // The body of a `GET` or `HEAD` has no meaning: each run of the handler gets an
        // empty one.
        let (parts, _) = request.into_parts();
        let shown = Request::from_parts(parts.clone(), ());
        let fresh = move || Request::from_parts(parts.clone(), ReqBody::default());
        let url_key = self.url_key(&shown);
        // The names the responses of this URL vary on, as its last response said.
        let names: Vec<String> = self
            .cache
            .get(&names_key(&url_key))
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let key = variant_key(&url_key, &names, shown.headers());
        let slot: Slot<S::Error> = Arc::default();
        // Without a permit of its own (a `ConcurrencyLimit` or `Buffer` inside): polled
        // ready only if this caller must ask the handler itself after all.
        let mut spare = inner.clone();
        if directives.no_cache {
            // The client wants a response made now: made, kept for the next, not shared.
            let made = self.make(inner, fresh(), &url_key, &names, &slot).await;
            if let Ok(Made {
                value: Cached::Response(stored),
                ttl: Some(ttl),
            }) = &made
            {
                let kept = Cached::Response(stored.clone());
                // A failing cache never fails the request: the response is answered anyway.
                let _ = self.cache.put(&key, &kept, *ttl).await;
            }
            return match self.respond(made.map(|m| m.value), &shown, &slot, "miss") {
                Some(answer) => answer,
                None => pass(call(&mut spare, fresh()).await),
            };
        }
        let factory = {
            // The ready service runs the handler, or is dropped (with any permit it holds)
            // when another caller's run is awaited instead.
            let (cache, slot, fresh) = (self.clone(), Arc::clone(&slot), fresh.clone());
            let (url_key, names) = (url_key.clone(), names.clone());
            move || async move {
                let made = cache.make(inner, fresh(), &url_key, &names, &slot).await?;
                let computed = Computed::new(made.value);
                Ok::<_, Failed>(match made.ttl {
                    Some(ttl) => computed.ttl(ttl),
                    None => computed.uncached(),
                })
            }
        };
        let entry = self
            .cache
            .remember_entry(&key, &self.remember_options(), factory)
            .await;
        let source = match &entry {
            Ok(entry) if entry.source == Source::Stale => "stale",
            Ok(entry) if entry.source == Source::Cache => "hit",
            _ => "miss",
        };
        match self.respond(entry.map(|e| e.value), &shown, &slot, source) {
            Some(answer) => answer,
            // Another caller ran the handler, and what it got could not be shared.
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
            Ok(Cached::Response(_)) => None,
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
        names: &[String],
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
        let passed = |body: CacheBody| marked(Response::from_parts(parts.clone(), body), "miss");
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
            let _ = self
                .cache
                .put(&names_key(url_key), varies, Duration::from_secs(86_400))
                .await;
            put_in(slot, Ok(passed(CacheBody::new(body))));
            return Ok(Made {
                value: Cached::Pass,
                ttl: None,
            });
        }
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let ttl = lifetime(&parts.headers, o.ttl).filter(|_| {
            varies.is_some()
                && KEPT_STATUSES.contains(&parts.status.as_u16())
                && (o.cache_set_cookie || !parts.headers.contains_key(header::SET_COOKIE))
                && declared.is_none_or(|length| length <= o.max_body_bytes)
        });
        if ttl.is_none() {
            put_in(slot, Ok(passed(CacheBody::new(body))));
            return Ok(Made {
                value: Cached::Pass,
                ttl: None,
            });
        }
        match body::read(body, o.max_body_bytes).await {
            body::Read::Whole(bytes) => Ok(Made {
                value: Cached::Response(Stored::new(
                    &parts,
                    bytes,
                    &request_headers,
                    names,
                    o.etag,
                )),
                ttl,
            }),
            body::Read::Over(rest) => {
                put_in(slot, Ok(passed(rest)));
                Ok(Made {
                    value: Cached::Pass,
                    ttl: None,
                })
            }
            body::Read::Failed(error) => {
                put_in(slot, Ok(passed(CacheBody::failed(error))));
                Err(Failed::Handler)
            }
        }
    }

    /// The key of `request`'s URL: method, path and query, and the headers every key has.
    fn url_key(&self, request: &Request<()>) -> String {
        let o = &self.options;
        // The host too: one process may serve several sites.
        let host = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                request
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let mut key = format!(
            "{}{} {host}{}",
            o.prefix,
            request.method(),
            request.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        for name in &o.vary {
            key.push('\n');
            key.push_str(name);
            key.push('=');
            if let Some(value) = request_value(request.headers(), name) {
                key.push_str(&hex::encode(value));
            }
        }
        key
    }
}

/// Where the names the responses of `url_key` vary on are kept.
fn names_key(url_key: &str) -> String {
    format!("{url_key}\nvary")
}

/// The key of the response to a request with `headers` for `url_key`, varying on `names`.
fn variant_key(url_key: &str, names: &[String], headers: &HeaderMap) -> String {
    let mut key = url_key.to_owned();
    for name in names {
        key.push_str("\nv:");
        key.push_str(name);
        key.push('=');
        if let Some(value) = request_value(headers, name) {
            key.push_str(&hex::encode(value));
        }
    }
    key
}
