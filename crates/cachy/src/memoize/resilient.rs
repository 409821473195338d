//! A [`Memoizer`]'s resilient calls: with the options given to `with_options` (fail-safe,
//! timeouts, eager refresh), through the repository's `remember_with`.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Memoizer, drive};
use crate::error::{Error, ErrorKind};

impl Memoizer {
    /// [`call`](Self::call) with the options given to [`with_options`](Self::with_options)
    /// (without them, or without a store, the call is as `call`'s).
    pub async fn call_resilient<T, F, Fut>(&self, key: Option<String>, compute: F) -> T
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let infallible = move || async move { Ok::<_, Error>(compute().await) };
        match self
            .call_result_resilient_with(key, infallible, false)
            .await
        {
            Ok(value) => value,
            // The function ran and its task ended without a value: it panicked.
            Err(e) => panic!("{e}"),
        }
    }

    /// [`call_result`](Self::call_result) with the options given to
    /// [`with_options`](Self::with_options).
    pub async fn call_result_resilient<T, E, F, Fut>(
        &self,
        key: Option<String>,
        compute: F,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        self.call_result_resilient_with(key, compute, true).await
    }

    async fn call_result_resilient_with<T, E, F, Fut>(
        &self,
        key: Option<String>,
        compute: F,
        may_time_out: bool,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, E>> + Send + 'static,
    {
        let (Some(repository), Some(key)) = (&self.repository, key) else {
            return compute().await;
        };
        let Some(mut options) = self.resilient_options(repository) else {
            return compute().await;
        };
        if !may_time_out {
            options.hard_timeout = None;
        }
        // Handed to the cache, and taken back if the cache fails before running it.
        let shared = std::sync::Arc::new(std::sync::Mutex::new(Some(compute)));
        let lent = std::sync::Arc::clone(&shared);
        let take = move || {
            lent.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        };
        let report = crate::repository::remember::Report::default();
        let remembered = repository
            .remember_entry_reporting(
                &key,
                &options,
                move || async move {
                    match take() {
                        Some(compute) => compute().await.map(crate::Computed::new),
                        None => {
                            Err(Error::new(ErrorKind::Remember, "the function already ran").into())
                        }
                    }
                },
                &report,
            )
            .await;
        match remembered {
            Ok(entry) => Ok(entry.value),
            // Another call of the function with these arguments failed: its error, as
            // `call_result` gives it, rather than another call of a failing source.
            Err(e) if report.factory_failed.into_inner() => Err(e),
            Err(e) => {
                let unused = shared
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                match unused {
                    // Memoization never breaks the function: the cache failed, run it.
                    Some(compute) => compute().await,
                    None => Err(e),
                }
            }
        }
    }

    /// [`call_resilient`](Self::call_resilient) from synchronous code (see
    /// [`call_blocking`](Self::call_blocking)); the function runs on tokio's blocking pool.
    pub fn call_resilient_blocking<T, F>(&self, key: Option<String>, compute: F) -> T
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        drive(compute, |compute| {
            self.call_resilient(key, move || async move {
                tokio::task::spawn_blocking(crate::flight::carry_computing(compute))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        })
    }

    /// [`call_result_resilient`](Self::call_result_resilient) from synchronous code.
    pub fn call_result_resilient_blocking<T, E, F>(
        &self,
        key: Option<String>,
        compute: F,
    ) -> std::result::Result<T, E>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        E: From<Error> + std::fmt::Display + Send + 'static,
        F: FnOnce() -> std::result::Result<T, E> + Send + 'static,
    {
        drive(compute, |compute| {
            self.call_result_resilient(key, move || crate::runtime::off_the_runtime(compute))
        })
    }
}
