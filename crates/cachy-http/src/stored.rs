//! A response as it is kept in the cache, and back.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha1::Digest;

use crate::body::CacheBody;

/// What the cache keeps for a key: a response, or a marker that the response could not be
/// kept (each caller then asks the handler itself); or a response made for the callers
/// waiting on one run of the handler but not kept (the first to say what it varies on).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Cached {
    Response(Stored),
    Pass,
    Unkept(Stored),
}

/// A response kept in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, ByteBuf)>,
    pub(crate) body: ByteBuf,
    /// When the response was made (by the origin, if a cache behind the handler gave it
    /// with an `Age`), in seconds since the Unix epoch, for `Age`.
    pub(crate) made_at: u64,
    /// The request header values it was made for, by lower-case name (its `Vary`).
    pub(crate) vary: Vec<(String, Option<ByteBuf>)>,
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The value of the request header `name`, as bytes.
pub(crate) fn request_value(headers: &HeaderMap, name: &str) -> Option<ByteBuf> {
    let values: Vec<&[u8]> = headers
        .get_all(name)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    (!values.is_empty()).then(|| ByteBuf::from(values.join(&b", "[..])))
}

/// Append the request header `name` and its value to `key`: `\n{kind}{name}`, then
/// `={hex}` if the request has the header (so that an absent header and an empty one are
/// different keys).
pub(crate) fn push_header(key: &mut String, kind: &str, name: &str, headers: &HeaderMap) {
    key.push('\n');
    key.push_str(kind);
    key.push_str(name);
    if let Some(value) = request_value(headers, name) {
        key.push('=');
        key.push_str(&hex::encode(value));
    }
}

impl Stored {
    /// `parts` and `body` as kept, made for a request with `request_headers` and varying on
    /// `vary`, `age` seconds old already; with an `ETag` computed from the body if it has
    /// none and `etag` is on.
    pub(crate) fn new(
        parts: &http::response::Parts,
        body: Bytes,
        request_headers: &HeaderMap,
        vary: &[String],
        age: u64,
        etag: bool,
    ) -> Self {
        let mut headers: Vec<(String, ByteBuf)> = parts
            .headers
            .iter()
            .filter(|(name, _)| !is_hop_by_hop(name))
            .map(|(name, value)| (name.as_str().to_owned(), ByteBuf::from(value.as_bytes())))
            .collect();
        if etag && !parts.headers.contains_key(header::ETAG) {
            let digest = sha1::Sha1::digest(&body);
            headers.push((
                header::ETAG.as_str().to_owned(),
                ByteBuf::from(format!("\"{}\"", hex::encode(&digest[..12]))),
            ));
        }
        Stored {
            status: parts.status.as_u16(),
            headers,
            body: ByteBuf::from(Vec::from(body)),
            made_at: unix_now().saturating_sub(age),
            vary: vary
                .iter()
                .map(|name| (name.clone(), request_value(request_headers, name)))
                .collect(),
        }
    }

    /// Whether it was made for a request with these header values.
    pub(crate) fn fits<B>(&self, request: &Request<B>) -> bool {
        self.vary
            .iter()
            .all(|(name, value)| request_value(request.headers(), name) == *value)
    }

    /// How old it is, in seconds.
    pub(crate) fn age(&self) -> u64 {
        unix_now().saturating_sub(self.made_at)
    }

    fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name.as_str())
            .map(|(_, v)| v.as_slice())
    }

    /// The response to `request`: this one with its `Age`, or `304 Not Modified` if the
    /// request's validators match; without a body for `HEAD`.
    pub(crate) fn respond<B>(
        self,
        request: &Request<B>,
        source: &'static str,
    ) -> Response<CacheBody> {
        let age = self.age();
        let not_modified = self.not_modified(request);
        let Stored {
            status,
            headers: kept,
            body,
            ..
        } = self;
        let head = request.method() == http::Method::HEAD;
        let length = body.len();
        let mut response = Response::new(if not_modified || head {
            CacheBody::empty()
        } else {
            CacheBody::full(Bytes::from(body.into_vec()))
        });
        *response.status_mut() = if not_modified {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
        };
        let headers = response.headers_mut();
        for (name, value) in &kept {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) else {
                continue;
            };
            if not_modified && !keeps_on_304(&name) {
                continue;
            }
            headers.append(name, value);
        }
        // A `HEAD` says how long the `GET` would be (an empty body would say zero).
        if head && !not_modified && !headers.contains_key(header::CONTENT_LENGTH) {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        }
        headers.insert(header::AGE, HeaderValue::from(age));
        headers.insert(
            HeaderName::from_static("x-cache"),
            HeaderValue::from_static(source),
        );
        response
    }

    /// Whether `request`'s `If-None-Match` (or, without one, `If-Modified-Since`) says it
    /// has this response already.
    fn not_modified<B>(&self, request: &Request<B>) -> bool {
        // Conditions apply to successful responses only (RFC 9110, 13.2.1).
        if !(200..300).contains(&self.status) {
            return false;
        }
        if let Some(tags) = request.headers().get(header::IF_NONE_MATCH) {
            let Some(etag) = self.header(&header::ETAG) else {
                return false;
            };
            let weakless = |tag: &[u8]| tag.strip_prefix(b"W/").unwrap_or(tag).to_vec();
            return tags.as_bytes().split(|b| *b == b',').any(|tag| {
                let tag = tag.trim_ascii();
                tag == b"*" || weakless(tag) == weakless(etag)
            });
        }
        let since = request
            .headers()
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let modified = self
            .header(&header::LAST_MODIFIED)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        match (since, modified) {
            (Some(since), Some(modified)) => modified <= since,
            _ => false,
        }
    }
}

/// Headers that describe one connection, never kept.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TE,
        header::TRAILER,
        header::PROXY_AUTHENTICATE,
        header::AGE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
        || name.as_str() == "x-cache"
}

/// The headers a `304` repeats (RFC 9110, 15.4.5).
fn keeps_on_304(name: &HeaderName) -> bool {
    [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        header::ETAG,
        header::EXPIRES,
        header::VARY,
        header::LAST_MODIFIED,
    ]
    .contains(name)
}
