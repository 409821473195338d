//! `remember_many`: many keys, one batch read, one call of the loader with exactly the
//! misses, one batch write per lifetime.

use std::collections::HashMap;
use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Failed;
use super::cached::Fallback;
use super::lead::usable;
use super::options::RememberOptions;
use super::resilient::{jittered, store_ttl, within_cache_timeout, within_hard_timeout};
use crate::codec::{decode, encode};
use crate::envelope::{self, Millis};
use crate::error::{Error, ErrorKind, Result};
use crate::flight::{self, Failure, Handoff, Leader, Role};
use crate::observe::{Operation, Outcome};
use crate::repository::Repository;

impl Repository {
    /// The values under `keys`, in order: one batch read of all of them, one call of `load`
    /// with exactly the keys that are missing or expired (and not being computed by another
    /// caller in this process), and one batch write of what it returns, per lifetime in whole
    /// seconds (one with no jitter). A key `load` leaves out is `None` and is not cached.
    ///
    /// Of the options, the lifetime, jitter, fail-safe (a key whose load failed gets its
    /// fallback; the call fails if a key has none) and the hard timeout (on `load`) apply.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> cachy::Result<()> {
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use cachy::RememberOptions;
    ///
    /// let cache = cachy::CacheManager::from_value(serde_json::json!({
    ///     "stores": { "dict": { "driver": "dict" } }
    /// }))?;
    /// let options = RememberOptions::new(Duration::from_secs(60));
    /// cache.put("user:1", &"ann", 10).await?;
    /// let names: Vec<Option<String>> = cache
    ///     .remember_many(&["user:1", "user:2", "user:3"], &options, |missing| async move {
    ///         assert_eq!(missing, ["user:2", "user:3"]); // only the misses
    ///         Ok::<_, cachy::Error>(HashMap::from([("user:2".to_owned(), "bob".to_owned())]))
    ///     })
    ///     .await?;
    /// assert_eq!(names, [Some("ann".into()), Some("bob".into()), None]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn remember_many<T, E, F, Fut>(
        &self,
        keys: &[impl AsRef<str>],
        options: &RememberOptions,
        load: F,
    ) -> std::result::Result<Vec<Option<T>>, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display + 'static,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = std::result::Result<HashMap<String, T>, E>>,
    {
        let work = self.remember_many_unobserved(keys, options, load);
        self.observed_each(
            Operation::Remember,
            None,
            work,
            |result, record| match result {
                Ok((_, outcomes)) => {
                    for (key, outcome) in keys.iter().zip(outcomes) {
                        record(Some(key.as_ref()), *outcome);
                    }
                }
                Err(failed) => record(None, failed.outcome()),
            },
        )
        .await
        .map(|(values, _)| values)
        .map_err(Failed::into_error)
    }

    /// `remember_many`, with each key's outcome.
    async fn remember_many_unobserved<T, E, F, Fut>(
        &self,
        keys: &[impl AsRef<str>],
        options: &RememberOptions,
        load: F,
    ) -> std::result::Result<(Vec<Option<T>>, Vec<Outcome>), Failed<E>>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display + 'static,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = std::result::Result<HashMap<String, T>, E>>,
    {
        options.check().map_err(|e| e.with_store(self.name()))?;
        // One namespace for the whole batch: the tag ids are read once.
        let scope = match self.scope(None).await {
            Ok(scope) => scope,
            Err(e) if options.propagate_cache_errors => return Err(e.into()),
            // The tags' namespace cannot be read: nothing can be cached, every key is loaded.
            Err(e) => {
                self.survived(Operation::Many, None, &e);
                return load_uncached(keys, options, load).await;
            }
        };
        let stored_keys: Vec<String> = keys
            .iter()
            .map(|key| scope.key(&options.versioned(key.as_ref())).into_owned())
            .collect();
        let mut values: Vec<Option<T>> = Vec::with_capacity(keys.len());
        let mut fallbacks: HashMap<usize, Fallback> = HashMap::new();
        let mut missing: Vec<usize> = Vec::new();
        let read = self.read_batch(&stored_keys, options).await?;
        for (i, (key, bytes)) in stored_keys.iter().zip(read).enumerate() {
            match self.open_fresh::<T>(key, bytes, options)? {
                Ok(value) => values.push(Some(value)),
                Err(fallback) => {
                    values.push(None);
                    missing.push(i);
                    if let Some(fallback) = fallback {
                        fallbacks.insert(i, fallback);
                    }
                }
            }
        }
        let mut outcomes: Vec<Outcome> = values
            .iter()
            .map(|value| match value {
                Some(_) => Outcome::Hit,
                None => Outcome::Miss,
            })
            .collect();
        let mut leaders: Vec<(usize, Leader)> = Vec::new();
        let mut waiters = Vec::new();
        for i in missing {
            let key = &stored_keys[i];
            if self.flights().is_computing(key) {
                return Err(self.context(key)(super::reentrant()).into());
            }
            match self.flights().join(key) {
                Role::Leader(leader) => leaders.push((i, leader)),
                Role::Waiter(slot) => waiters.push((i, slot)),
            }
        }
        // Another caller may have stored some of them between our read and our lead.
        if !leaders.is_empty() {
            let led: Vec<String> = leaders
                .iter()
                .map(|(i, _)| stored_keys[*i].clone())
                .collect();
            let reread = self.read_batch(&led, options).await?;
            let mut still_missing = Vec::with_capacity(leaders.len());
            for ((i, leader), bytes) in leaders.into_iter().zip(reread) {
                match self.open_fresh::<T>(&stored_keys[i], bytes, options)? {
                    Ok(value) => {
                        values[i] = Some(value);
                        outcomes[i] = Outcome::Hit;
                    }
                    Err(_) => still_missing.push((i, leader)),
                }
            }
            leaders = still_missing;
        }
        if !leaders.is_empty() {
            self.load_for(
                keys,
                &stored_keys,
                options,
                load,
                leaders,
                &mut fallbacks,
                (&mut values, &mut outcomes),
            )
            .await?;
        }
        for (i, slot) in waiters {
            let key = &stored_keys[i];
            values[i] = match flight::wait(slot).await {
                Some(Handoff::Value(payload) | Handoff::Stale(payload)) => {
                    Some(decode(self.serializer(), &payload).map_err(self.context(key))?)
                }
                Some(Handoff::Failed(failure)) => match fallbacks.remove(&i) {
                    Some(fallback) if now_before(fallback.header.fail_safe_until) => Some(
                        decode(self.serializer(), &fallback.payload).map_err(self.context(key))?,
                    ),
                    _ => return Err(Failed::Factory(failure.error(self.context(key)))),
                },
                // Loaded without a value: nothing to cache, `None`.
                Some(Handoff::Absent) => None,
                // The loading caller went away without an outcome: what the store holds now is
                // the answer if it holds anything; otherwise this call cannot tell.
                None => match self.get_stored(key).await? {
                    Some(value) => Some(value),
                    None => {
                        return Err(self.context(key)(Error::new(
                            ErrorKind::Remember,
                            "the caller loading this key went away before it was loaded; try again",
                        ))
                        .into());
                    }
                },
            };
        }
        Ok((values, outcomes))
    }

    /// The bytes under `keys`, one per key whatever the store answers; none at all when the
    /// store fails (observed), unless the options propagate cache errors.
    async fn read_batch(
        &self,
        keys: &[String],
        options: &RememberOptions,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let read = within_cache_timeout(options.cache_timeout, self.store().get_many(&refs));
        let mut read = match read.await {
            Ok(read) => read,
            Err(e) if options.propagate_cache_errors => return Err(e.with_store(self.name())),
            Err(e) => {
                let e = e.with_store(self.name());
                self.survived(Operation::Many, None, &e);
                if e.is_temporary() || keys.len() == 1 {
                    Vec::new()
                } else {
                    self.read_each(&refs, options).await
                }
            }
        };
        read.resize(keys.len(), None);
        Ok(read)
    }

    /// `keys` read one by one, after their batch read failed for a reason that may be one
    /// key's (a file another user wrote, a row of another type): the others are still found,
    /// and only the unreadable keys are loaded, each time. Within one cache timeout; a key
    /// that fails is a miss (observed).
    async fn read_each(&self, keys: &[&str], options: &RememberOptions) -> Vec<Option<Vec<u8>>> {
        let mut read = Vec::with_capacity(keys.len());
        let each = async {
            for key in keys {
                read.push(match self.store().get(key).await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        self.survived(Operation::Get, Some(key), &self.context(key)(e));
                        None
                    }
                });
            }
            Ok(())
        };
        if let Err(e) = within_cache_timeout(options.cache_timeout, each).await {
            self.survived(Operation::Many, None, &e.with_store(self.name()));
        }
        read
    }

    /// A fresh value from stored `bytes`, or why there is none: the fallback, if any, as a
    /// reader with `options` may use it. Bytes that do not decode are a miss (observed),
    /// unless the options propagate cache errors.
    #[allow(clippy::type_complexity)]
    fn open_fresh<T: DeserializeOwned>(
        &self,
        key: &str,
        bytes: Option<Vec<u8>>,
        options: &RememberOptions,
    ) -> Result<std::result::Result<T, Option<Fallback>>> {
        let Some(bytes) = bytes else {
            return Ok(Err(None));
        };
        let cached = match self.open_cached::<T>(key, bytes, options) {
            Ok(cached) => cached,
            Err(e) if options.propagate_cache_errors => return Err(e),
            Err(e) => {
                self.survived(Operation::Many, Some(key), &e);
                return Ok(Err(None));
            }
        };
        if cached.is_fresh(envelope::now()) {
            return Ok(Ok(cached.into_value()));
        }
        Ok(Err(
            usable(Some(cached)).and_then(|cached| cached.fallback())
        ))
    }

    /// Call `load` once for the keys `leaders` lead, store what it returns (one batch per
    /// lifetime in whole seconds) and hand each key's outcome to its waiters; the only error
    /// it returns is the loader's.
    #[allow(clippy::too_many_arguments)]
    async fn load_for<T, E, F, Fut>(
        &self,
        keys: &[impl AsRef<str>],
        stored_keys: &[String],
        options: &RememberOptions,
        load: F,
        leaders: Vec<(usize, Leader)>,
        fallbacks: &mut HashMap<usize, Fallback>,
        (values, outcomes): (&mut [Option<T>], &mut [Outcome]),
    ) -> std::result::Result<(), Failed<E>>
    where
        T: Serialize + DeserializeOwned,
        E: From<Error> + std::fmt::Display + 'static,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = std::result::Result<HashMap<String, T>, E>>,
    {
        let missing: Vec<String> = leaders
            .iter()
            .map(|(i, _)| keys[*i].as_ref().to_owned())
            .collect();
        let (indexes, leaders): (Vec<usize>, Vec<Leader>) = leaders.into_iter().unzip();
        let loading = async { within_hard_timeout(options, load(missing)).await };
        // Marked as computing these keys: a `remember` of one of them inside `load` is an error,
        // not a wait for itself.
        let loaded = flight::computing(&leaders, loading).await;
        match loaded {
            Ok(mut loaded) => {
                // Per lifetime: the keys' indexes, and the items to store.
                #[allow(clippy::type_complexity)]
                let mut batches: HashMap<u64, (Vec<usize>, Vec<(&str, Vec<u8>)>)> = HashMap::new();
                for (i, leader) in indexes.into_iter().zip(leaders) {
                    let Some(value) = loaded.remove(keys[i].as_ref()) else {
                        leader.finish(Handoff::Absent);
                        continue;
                    };
                    let key = &stored_keys[i];
                    let payload = match encode(self.serializer(), &value) {
                        Ok(payload) => payload,
                        // The caller has its value; the waiters compute their own.
                        Err(e) => {
                            self.survived(Operation::PutMany, Some(key), &self.context(key)(e));
                            drop(leader);
                            values[i] = Some(value);
                            continue;
                        }
                    };
                    let ttl = jittered(options.ttl, options.jitter);
                    let (bytes, lifetime) = self.stored_form(options, &payload, ttl, None);
                    let batch = batches.entry(store_ttl(lifetime)).or_default();
                    batch.0.push(i);
                    batch.1.push((key.as_str(), bytes));
                    leader.finish(Handoff::Value(payload.into()));
                    values[i] = Some(value);
                }
                for (seconds, (indexes, items)) in batches {
                    // The callers have their values whether or not the cache keeps them.
                    let put = self.store().put_many(&items, Some(seconds));
                    match within_cache_timeout(options.cache_timeout, put).await {
                        Ok(()) => {
                            for i in indexes {
                                outcomes[i] = Outcome::Computed;
                            }
                        }
                        Err(e) => {
                            self.survived(Operation::PutMany, None, &e.with_store(self.name()));
                            for (key, bytes) in &items {
                                self.store().keep_after_failed_write(
                                    key,
                                    bytes,
                                    Some(std::time::Duration::from_secs(seconds)),
                                );
                            }
                        }
                    }
                }
                Ok(())
            }
            Err(e) => {
                let mut unserved = false;
                for (i, leader) in indexes.into_iter().zip(leaders) {
                    let fallback = fallbacks.remove(&i).filter(|fallback| {
                        options.fail_safe_max.is_some()
                            && now_before(fallback.header.fail_safe_until)
                    });
                    match fallback {
                        Some(fallback) => {
                            self.keep_fallback(&stored_keys[i], options, &fallback)
                                .await;
                            values[i] = Some(
                                decode(self.serializer(), &fallback.payload)
                                    .map_err(self.context(&stored_keys[i]))?,
                            );
                            leader.finish(Handoff::Stale(fallback.payload.into()));
                            outcomes[i] = Outcome::Stale;
                        }
                        None => {
                            unserved = true;
                            leader.finish(Handoff::Failed(Failure::of(&e, options.share_errors)));
                        }
                    }
                }
                if unserved {
                    Err(Failed::Factory(e))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Whether now is before `deadline`.
fn now_before(deadline: Millis) -> bool {
    envelope::now() < deadline
}

/// Every key of `keys` loaded and none cached: a value per key, in order (`None` for a key
/// the loader left out), each a miss.
async fn load_uncached<T, E, F, Fut>(
    keys: &[impl AsRef<str>],
    options: &RememberOptions,
    load: F,
) -> std::result::Result<(Vec<Option<T>>, Vec<Outcome>), Failed<E>>
where
    E: From<Error>,
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = std::result::Result<HashMap<String, T>, E>>,
{
    let all = keys.iter().map(|key| key.as_ref().to_owned()).collect();
    let mut loaded = within_hard_timeout(options, load(all))
        .await
        .map_err(Failed::Factory)?;
    let values = keys.iter().map(|key| loaded.remove(key.as_ref())).collect();
    Ok((values, vec![Outcome::Miss; keys.len()]))
}
