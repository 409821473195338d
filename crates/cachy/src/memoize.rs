//! Memoizing functions: the engine of `#[cachy::cached]`, usable without the attribute.
//!
//! The key of a call is `{prefix}:{sha1(path, arguments)}`: the function's full path and
//! every argument (serialized as JSON), so different arguments never share a value. (Python
//! cachy's decorator drops the first positional argument, so its `f(3)` can return the cached
//! `f(2)`; not here.) The prefix is Python cachy's `key` option, or the function's path.
//!
//! Memoization never breaks the function: if the cache fails (server down, a value of
//! another type under the key, unserializable arguments), the function runs as if uncached.
//! Concurrent calls with the same arguments in one process compute once (see
//! [`Repository::remember`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> cachy::Result<()> {
//! use cachy::{CacheManager, Memoizer};
//!
//! let cache = CacheManager::from_value(serde_json::json!({
//!     "stores": { "dict": { "driver": "dict" } }
//! }))?;
//! let square = Memoizer::new(cache.store(None)?, "square").minutes(5);
//! assert_eq!(square.call(square.key(&3), || async { 9 }).await, 9);
//! assert_eq!(square.call(square.key(&3), || async { 0 }).await, 9, "from the cache");
//! assert_eq!(square.call(square.key(&4), || async { 16 }).await, 16);
//! # Ok(())
//! # }
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::sync::OnceLock;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sha1::{Digest, Sha1};

use crate::error::{Error, ErrorKind, Result};
use crate::expiry::Expiry;
use crate::flight::ShareErrors;
use crate::manager::CacheManager;
use crate::observe::{Operation, Outcome, Record};
use crate::repository::Repository;
use crate::repository::remember::options::RememberOptions;
use crate::repository::remember::{CacheErrors, Failed, Remembered};
use crate::runtime::Blocking;
use crate::store::Ttl;

mod resilient;

static GLOBAL: OnceLock<CacheManager> = OnceLock::new();

/// A `#[cached]` function's argument, as part of its key: it must be `Serialize`, or be left
/// out of the key with `skip(argument)`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `Serialize`, so this argument cannot be part of a `#[cached]` key",
    label = "leave it out of the key with `#[cached(skip(argument))]`, or derive `Serialize`"
)]
pub trait KeyArgument {}

impl<T: Serialize + ?Sized> KeyArgument for T {}

/// `argument`, checked to be usable in a `#[cached]` key (used by the attribute's expansion).
#[doc(hidden)]
pub fn key_argument<T: KeyArgument + ?Sized>(argument: &T) -> &T {
    argument
}

/// Say, once per memoized function, that its calls run uncached: at `WARN` when its store
/// failed to build (a misspelt store name), at `DEBUG` when no global manager is installed
/// yet (usual before startup ends).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn unresolved(prefix: &str, error: Option<&Error>) {
    #[cfg(feature = "tracing")]
    {
        static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        match error {
            Some(error) => {
                let mut warned = WARNED
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !warned.iter().any(|p| p == prefix) {
                    warned.push(prefix.to_owned());
                    tracing::warn!(function = prefix, %error, "#[cached] runs uncached: its store cannot be used");
                }
            }
            None => tracing::debug!(
                function = prefix,
                "#[cached] runs uncached: no global cache manager is installed"
            ),
        }
    }
}

/// The return type `R` of a `#[cached]` function, for choosing (by method resolution on
/// `&&ErrorOf<R>`) whether its errors are shared with waiting callers (used by the attribute's
/// expansion).
#[doc(hidden)]
pub struct ErrorOf<R>(std::marker::PhantomData<fn() -> R>);

impl<R> ErrorOf<R> {
    #[doc(hidden)]
    pub const NEW: Self = ErrorOf(std::marker::PhantomData);
}

/// Chosen for a `Result` whose error is `Clone + Send + Sync`: share it.
#[doc(hidden)]
pub trait ShareCloneErrors {
    fn sharing(&self) -> Option<ShareErrors>;
}

impl<T, E: Clone + Send + Sync + 'static> ShareCloneErrors for &ErrorOf<Result<T, E>> {
    fn sharing(&self) -> Option<ShareErrors> {
        Some(ShareErrors::of::<E>())
    }
}

/// Chosen for every other return type: share nothing.
#[doc(hidden)]
pub trait ShareNoErrors {
    fn sharing(&self) -> Option<ShareErrors> {
        None
    }
}

impl<R> ShareNoErrors for ErrorOf<R> {}

/// Install the manager that `#[cached]` functions use when they name none. Call it once, at
/// startup; a second call is an error and leaves the first manager in place.
pub fn set_global(manager: CacheManager) -> Result<()> {
    GLOBAL.set(manager).map_err(|_| {
        Error::new(
            ErrorKind::Config,
            "a global cache manager is already installed",
        )
    })
}

/// The manager installed with [`set_global`], if any.
pub fn global() -> Option<&'static CacheManager> {
    GLOBAL.get()
}

/// Memoizes calls into one store: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Memoizer {
    repository: Option<Repository>,
    prefix: String,
    /// The version of the values, kept in their keys.
    version: Option<u64>,
    expiry: Option<Expiry>,
    /// Resilience options (their lifetime is replaced by the memoizer's).
    options: Option<RememberOptions>,
    /// Whether the callers that waited for a failed call get copies of its error.
    share_errors: Option<ShareErrors>,
}

impl Memoizer {
    /// Memoize into `repository`, under keys starting with `prefix` (a function's path, or
    /// Python cachy's `key` option).
    pub fn new(repository: Repository, prefix: impl Into<String>) -> Self {
        Memoizer {
            repository: Some(repository),
            prefix: prefix.into(),
            version: None,
            expiry: None,
            options: None,
            share_errors: None,
        }
    }

    /// Memoize into the store `store` (the default store for `None`) of `manager`, or of the
    /// global manager when `manager` is `None`. When the store cannot be resolved (no global
    /// manager, an unknown store), calls run uncached.
    pub fn resolve(
        manager: Option<&CacheManager>,
        store: Option<&str>,
        prefix: impl Into<String>,
    ) -> Self {
        let prefix = prefix.into();
        let repository = match manager.or(global()) {
            Some(manager) => manager
                .store(store)
                .inspect_err(|e| unresolved(&prefix, Some(e)))
                .ok(),
            None => {
                unresolved(&prefix, None);
                None
            }
        };
        Memoizer {
            repository,
            prefix,
            version: None,
            expiry: None,
            options: None,
            share_errors: None,
        }
    }

    /// The memoizer in `cell`, or, until one resolves, a fresh one from `resolve` each call:
    /// what `#[cached]` uses, so that the manager expression runs once while a memoizer
    /// that found no store (no global manager yet) is retried on the next call.
    pub fn resolve_once(
        cell: &'static OnceLock<Memoizer>,
        resolve: fn() -> Memoizer,
    ) -> std::borrow::Cow<'static, Memoizer> {
        if let Some(memoizer) = cell.get() {
            return std::borrow::Cow::Borrowed(memoizer);
        }
        let memoizer = resolve();
        if memoizer.repository.is_none() {
            return std::borrow::Cow::Owned(memoizer);
        }
        std::borrow::Cow::Borrowed(cell.get_or_init(|| memoizer))
    }

    /// Keep the values of version `version` apart from every other version's (`#[cached(version
    /// = 2)]`): raise it when the function's return type changes, so that during a rolling
    /// deploy the old code and the new never read each other's values. See
    /// [`RememberOptions::version`].
    pub fn version(mut self, version: u64) -> Self {
        self.version = Some(version);
        self
    }

    /// Keep values this many minutes (default: the repository's default cache time, 60).
    pub fn minutes(self, minutes: i64) -> Self {
        self.expiry(Expiry::Minutes(minutes))
    }

    /// Keep values for `expiry`: a `Duration`, or whole minutes (default: the repository's
    /// default cache time, 60 minutes).
    pub fn expiry(mut self, expiry: impl Into<Expiry>) -> Self {
        self.expiry = Some(expiry.into());
        self
    }

    /// Memoize with `options`' fail-safe, timeouts, eager refresh and jitter (their
    /// lifetime is replaced by this memoizer's: [`minutes`](Self::minutes),
    /// [`expiry`](Self::expiry), or the store's default cache time). Calls then go through
    /// [`Repository::remember_with`]: use the `*_resilient` methods, whose function must be
    /// `Send + 'static`. A function that cannot fail has nothing to fall back from, so a hard
    /// timeout applies only to [`call_result_resilient`](Self::call_result_resilient).
    pub fn with_options(mut self, options: RememberOptions) -> Self {
        self.options = Some(options);
        self
    }

    /// When a call fails, the calls that waited for it get a copy of its error, when that
    /// error is an `E` (see [`RememberOptions::share_errors`]). `#[cached]` does this for every
    /// function whose error type is `Clone + Send + Sync`.
    pub fn share_errors<E: Clone + Send + Sync + 'static>(self) -> Self {
        self.sharing_errors(Some(ShareErrors::of::<E>()))
    }

    /// What `#[cached]` calls with the sharing its function's error type allows.
    #[doc(hidden)]
    pub fn sharing_errors(mut self, share: Option<ShareErrors>) -> Self {
        self.share_errors = share;
        self
    }

    /// The options of a resilient call, with this memoizer's lifetime; `None` when that
    /// lifetime keeps nothing.
    fn resilient_options(&self, repository: &Repository) -> Option<RememberOptions> {
        let options = self.options.clone()?;
        let ttl = match self.expiry.unwrap_or_else(|| repository.default_expiry()) {
            // Kept to the millisecond: the envelope of resilient values is that precise.
            Expiry::After(duration) => Some(duration).filter(|d| !d.is_zero())?,
            _ => std::time::Duration::from_secs(self.ttl(repository)??),
        };
        Some(RememberOptions {
            ttl,
            share_errors: self.share_errors.or(options.share_errors),
            // In the key already (see `key`).
            version: None,
            ..options
        })
    }

    fn ttl(&self, repository: &Repository) -> Option<Ttl> {
        self.expiry
            .unwrap_or_else(|| repository.default_expiry())
            .ttl()
    }

    /// The cache key of a call with `args` (all of them, e.g. as a tuple); `None` if they
    /// cannot be serialized, and the call then runs uncached.
    pub fn key<A: Serialize + ?Sized>(&self, args: &A) -> Option<String> {
        let arguments = serde_json::to_vec(args).ok()?;
        let mut hasher = Sha1::new();
        hasher.update(self.prefix.as_bytes());
        hasher.update([0]);
        hasher.update(&arguments);
        let key = format!("{}:{}", self.prefix, hex::encode(hasher.finalize()));
        let version = self
            .version
            .or_else(|| self.options.as_ref().and_then(|o| o.version));
        Some(match version {
            Some(version) => crate::repository::remember::versioned_key(&key, version),
            None => key,
        })
    }

    /// The value of `compute` for the call whose [`key`](Self::key) is `key`, from the cache
    /// when it is there.
    pub async fn call<T, F, Fut>(&self, key: Option<String>, compute: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        let infallible = || async { Ok::<_, std::convert::Infallible>(compute().await) };
        let (Some(repository), Some(key)) = (&self.repository, key) else {
            return uncached(infallible).await;
        };
        let remembered = async {
            let Some(stored) = stored_key(repository, &key).await else {
                return Ok((uncached(infallible).await, Outcome::Miss));
            };
            let remembered = repository
                .remember_in_process(
                    &stored,
                    self.ttl(repository),
                    CacheErrors::Bypass,
                    None,
                    infallible,
                )
                .await;
            Ok::<_, std::convert::Infallible>(match remembered {
                Ok(found) => found,
                Err(Remembered::Cache(_, compute) | Remembered::Elsewhere(_, compute)) => {
                    (uncached(compute).await, Outcome::Miss)
                }
                Err(Remembered::Store(_, value)) => (value, Outcome::Miss),
                Err(Remembered::Computed(never)) => match never {},
            })
        };
        match repository
            .observed(Operation::Remember, Some(&key), |(_, o)| *o, remembered)
            .await
        {
            Ok((value, _)) => value,
            Err(never) => match never {},
        }
    }

    /// Like [`call`](Self::call) for a fallible `compute`: only `Ok` values are cached. When
    /// another caller computing the same key fails, this one gets a copy of its error if
    /// [`share_errors`](Self::share_errors) allows, else that failure as an
    /// [`ErrorKind::Remember`] error.
    pub async fn call_result<T, E, F, Fut>(&self, key: Option<String>, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let (Some(repository), Some(key)) = (&self.repository, key) else {
            return compute().await;
        };
        let remembered = async {
            let Some(stored) = stored_key(repository, &key).await else {
                return compute()
                    .await
                    .map(|value| (value, Outcome::Miss))
                    .map_err(Failed::Factory);
            };
            let remembered = repository
                .remember_in_process(
                    &stored,
                    self.ttl(repository),
                    CacheErrors::Bypass,
                    self.share_errors,
                    compute,
                )
                .await;
            match remembered {
                Ok(found) => Ok(found),
                // Memoization never breaks the function: the cache failed, run it.
                Err(Remembered::Cache(_, compute)) => match compute().await {
                    Ok(value) => Ok((value, Outcome::Miss)),
                    Err(e) => Err(Failed::Factory(e)),
                },
                Err(Remembered::Store(_, value)) => Ok((value, Outcome::Miss)),
                Err(failed) => Err(failed.into_failed(repository.context(&stored))),
            }
        };
        let report = |result: Result<&(T, Outcome), &Failed<E>>, record: &mut Record<'_>| {
            record(Some(&key), result.map_or_else(Failed::outcome, |(_, o)| *o));
        };
        let observed =
            repository.observed_each(Operation::Remember, Some(&key), remembered, report);
        observed
            .await
            .map(|(value, _)| value)
            .map_err(Failed::into_error)
    }

    /// [`call`](Self::call) from synchronous code, driving the async core on the blocking
    /// API's runtime where the [blocking API](crate::blocking) may block; on a current-thread
    /// runtime (where it may not) it runs `compute` uncached.
    pub fn call_blocking<T, F>(&self, key: Option<String>, compute: F) -> T
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        drive(compute, |compute| {
            self.call(key, || async move { compute() })
        })
    }

    /// [`call_result`](Self::call_result) from synchronous code (see
    /// [`call_blocking`](Self::call_blocking)).
    pub fn call_result_blocking<T, E, F>(&self, key: Option<String>, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display + 'static,
        F: FnOnce() -> Result<T, E>,
    {
        drive(compute, |compute| {
            self.call_result(key, || async move { compute() })
        })
    }
}

/// The value of a sync `compute`, through `memoized` (the async memoized call) on the blocking
/// API's runtime where this thread may block; uncached where it may not (a current-thread
/// runtime) or when that runtime cannot start.
fn drive<T, F, Fut>(compute: F, memoized: impl FnOnce(F) -> Fut) -> T
where
    F: FnOnce() -> T,
    Fut: Future<Output = T>,
{
    let Some(driver) = crate::runtime::shared_driver() else {
        return compute();
    };
    match Blocking::here() {
        Blocking::Free => driver.run(memoized(compute)),
        Blocking::InPlace => tokio::task::block_in_place(|| driver.run(memoized(compute))),
        Blocking::Refused => compute(),
    }
}

/// The store key of the caller's `key` in `repository`: in its tags' namespace (the key
/// itself without tags). `None` when the tags' ids cannot be read (the failure observed):
/// nothing can be cached, and the call runs uncached.
async fn stored_key<'k>(repository: &Repository, key: &'k str) -> Option<Cow<'k, str>> {
    match repository.store_key(key).await {
        Ok(stored) => Some(stored),
        Err(e) => {
            let e = repository.given_context(key)(e);
            repository.survived_given(Operation::Get, Some(key), &e);
            None
        }
    }
}

async fn uncached<T, F, Fut>(compute: F) -> T
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, std::convert::Infallible>>,
{
    match compute().await {
        Ok(value) => value,
        Err(never) => match never {},
    }
}
