//! What HTTP says about caching a request or a response: `Cache-Control`, `Pragma`,
//! `Expires`, `Age`, `Vary`.

use std::time::{Duration, SystemTime};

use http::header::{self, HeaderMap, HeaderName};

/// The `Cache-Control` directives this cache reads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Directives {
    pub(crate) no_store: bool,
    pub(crate) no_cache: bool,
    pub(crate) private: bool,
    pub(crate) max_age: Option<u64>,
    pub(crate) s_maxage: Option<u64>,
    pub(crate) must_revalidate: bool,
    pub(crate) proxy_revalidate: bool,
}

impl Directives {
    /// The directives of every `Cache-Control` header in `headers`; unknown ones and
    /// values that are not numbers are ignored.
    pub(crate) fn of(headers: &HeaderMap) -> Self {
        let mut directives = Directives::default();
        for value in headers.get_all(header::CACHE_CONTROL) {
            let Ok(value) = value.to_str() else { continue };
            for directive in value.split(',') {
                let (name, argument) = match directive.split_once('=') {
                    Some((name, argument)) => (name, Some(argument.trim().trim_matches('"'))),
                    None => (directive, None),
                };
                let seconds = || argument.and_then(|a| a.parse::<u64>().ok());
                match name.trim().to_ascii_lowercase().as_str() {
                    "no-store" => directives.no_store = true,
                    "no-cache" => directives.no_cache = true,
                    "private" => directives.private = true,
                    "max-age" => directives.max_age = seconds(),
                    "s-maxage" => directives.s_maxage = seconds(),
                    "must-revalidate" => directives.must_revalidate = true,
                    "proxy-revalidate" => directives.proxy_revalidate = true,
                    _ => {}
                }
            }
        }
        directives
    }

    /// The directives of a request: its `Cache-Control`, and `Pragma: no-cache` when it has
    /// none (RFC 9111, 5.4); `max-age=0` asks for a response made now, as `no-cache` does.
    pub(crate) fn of_request(headers: &HeaderMap) -> Self {
        let mut directives = Directives::of(headers);
        if !headers.contains_key(header::CACHE_CONTROL) {
            directives.no_cache = headers
                .get_all(header::PRAGMA)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| {
                    v.split(',')
                        .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
                });
        }
        if directives.max_age == Some(0) {
            directives.no_cache = true;
        }
        directives
    }

    /// Whether a response with these directives may be served after it expired: not after
    /// `must-revalidate`, nor, in a shared cache, after `proxy-revalidate` or `s-maxage`
    /// (RFC 9111, 5.2.2.2, 5.2.2.8, 5.2.2.10).
    pub(crate) fn allow_stale(&self) -> bool {
        !(self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some())
    }
}

/// How old a response already was when the handler gave it (its `Age`, from a cache behind
/// it), in seconds.
pub(crate) fn age_of(headers: &HeaderMap) -> u64 {
    headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// How long a response may still be served from a shared cache: `s-maxage`, else
/// `max-age`, less its `Age`; else `Expires` against `Date` (or now); else `default`.
/// `None`: it must not be stored.
pub(crate) fn lifetime(headers: &HeaderMap, default: Duration) -> Option<Duration> {
    let directives = Directives::of(headers);
    if directives.no_store || directives.no_cache || directives.private {
        return None;
    }
    if let Some(seconds) = directives.s_maxage.or(directives.max_age) {
        let left = seconds.saturating_sub(age_of(headers));
        return Some(Duration::from_secs(left)).filter(|d| !d.is_zero());
    }
    let date = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
    };
    if let Some(expires) = headers.get(header::EXPIRES) {
        // An `Expires` that is not a date (`0`) means already expired.
        let expires = expires
            .to_str()
            .ok()
            .and_then(|v| httpdate::parse_http_date(v).ok())?;
        let now = date(header::DATE).unwrap_or_else(SystemTime::now);
        return expires.duration_since(now).ok().filter(|d| !d.is_zero());
    }
    Some(default).filter(|d| !d.is_zero())
}

/// The request header names a response varies on, lower-cased; `None` for `Vary: *`
/// (it cannot be cached).
pub(crate) fn varies_on(headers: &HeaderMap) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for value in headers.get_all(header::VARY) {
        let value = value.to_str().ok()?;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            names.push(name.to_ascii_lowercase());
        }
    }
    names.sort_unstable();
    names.dedup();
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn lifetimes_follow_cache_control_then_expires_then_the_default() {
        let default = Duration::from_secs(60);
        let of = |pairs: &[(&str, &str)]| lifetime(&headers(pairs), default);
        assert_eq!(of(&[]), Some(default));
        assert_eq!(
            of(&[("cache-control", "public, max-age=30")]),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            of(&[("cache-control", "max-age=30, s-maxage=300")]),
            Some(Duration::from_secs(300))
        );
        for refused in [
            "no-store",
            "private",
            "no-cache",
            "max-age=0",
            "Private, max-age=9",
        ] {
            assert_eq!(of(&[("cache-control", refused)]), None, "{refused}");
        }
        let date = "Sun, 06 Dec 2026 10:00:00 GMT";
        assert_eq!(
            of(&[("date", date), ("expires", "Sun, 06 Dec 2026 10:02:00 GMT")]),
            Some(Duration::from_secs(120))
        );
        assert_eq!(of(&[("expires", "0")]), None);
        assert_eq!(of(&[("cache-control", "max-age=oops")]), Some(default));
        assert_eq!(
            of(&[("cache-control", "max-age=30"), ("age", "20")]),
            Some(Duration::from_secs(10)),
            "what an earlier cache already used up"
        );
        assert_eq!(of(&[("cache-control", "max-age=30"), ("age", "40")]), None);
    }

    #[test]
    fn a_request_asks_for_a_response_made_now_with_no_cache_max_age_0_or_pragma() {
        let of = |pairs: &[(&str, &str)]| Directives::of_request(&headers(pairs)).no_cache;
        assert!(of(&[("cache-control", "no-cache")]));
        assert!(of(&[("cache-control", "max-age=0")]));
        assert!(of(&[("pragma", "no-cache")]));
        assert!(!of(&[
            ("pragma", "no-cache"),
            ("cache-control", "max-age=5")
        ]));
        assert!(!of(&[("cache-control", "max-age=5")]));
    }

    #[test]
    fn revalidation_directives_forbid_serving_stale() {
        let of = |value: &str| Directives::of(&headers(&[("cache-control", value)])).allow_stale();
        assert!(of("max-age=60"));
        assert!(!of("max-age=60, must-revalidate"));
        assert!(!of("max-age=60, proxy-revalidate"));
        assert!(!of("s-maxage=60"));
    }

    #[test]
    fn vary_names_are_sorted_lowercase_and_star_refuses() {
        let of = |pairs: &[(&str, &str)]| varies_on(&headers(pairs));
        assert_eq!(of(&[]), Some(vec![]));
        assert_eq!(
            of(&[
                ("vary", "Accept-Language, accept-encoding"),
                ("vary", "Accept-Language")
            ]),
            Some(vec![
                "accept-encoding".to_owned(),
                "accept-language".to_owned()
            ])
        );
        assert_eq!(of(&[("vary", "Origin, *")]), None);
    }
}
