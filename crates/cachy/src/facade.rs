//! The repository's operations on the faces that forward to a repository: the async
//! [`CacheManager`](crate::CacheManager) (on its default store) and the three blocking types.
//!
//! [`Repository`](crate::Repository) implements each operation once. The list below is the
//! one place that names them for the other faces: a face invokes
//! `repository_operations!(async, resolve)` or `repository_operations!(blocking, resolve)`,
//! where `resolve` is a macro of its own, `resolve!(self, repository => call)`, that finds
//! the repository and runs the call on it (awaiting it, or blocking on it). An operation added
//! here reaches every face, and `tests/it/api_parity.rs` calls every operation on every face.

/// Every data operation of [`Repository`](crate::Repository), forwarded by a face.
macro_rules! repository_operations {
    (async, $resolve:ident) => {
        $crate::facade::repository_operations!(@shared [async] $resolve);

        /// [`Repository::get_or_else_async`](crate::Repository::get_or_else_async): the value
        /// under `key`, or what the async `default` resolves to if there is none.
        pub async fn get_or_else_async<T, F, Fut>(
            &self,
            key: &str,
            default: F,
        ) -> $crate::Result<T>
        where
            T: ::serde::de::DeserializeOwned,
            F: FnOnce() -> Fut,
            Fut: ::std::future::Future<Output = T>,
        {
            $resolve!(self, repository => repository.get_or_else_async(key, default))
        }

        /// [`Repository::remember`](crate::Repository::remember): the value under `key`; on
        /// a miss, run `compute` once (stampede-safe in this process), store its `Ok` value
        /// until `expiry` and return it.
        pub async fn remember<T, E, F, Fut>(
            &self,
            key: &str,
            expiry: impl Into<$crate::Expiry>,
            compute: F,
        ) -> ::std::result::Result<T, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned,
            E: From<$crate::Error> + ::std::fmt::Display + 'static,
            F: FnOnce() -> Fut,
            Fut: ::std::future::Future<Output = ::std::result::Result<T, E>>,
        {
            $resolve!(self, repository => repository.remember(key, expiry, compute))
        }

        /// [`Repository::remember_forever`](crate::Repository::remember_forever): like
        /// `remember`, storing the computed value forever.
        pub async fn remember_forever<T, E, F, Fut>(
            &self,
            key: &str,
            compute: F,
        ) -> ::std::result::Result<T, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned,
            E: From<$crate::Error> + ::std::fmt::Display + 'static,
            F: FnOnce() -> Fut,
            Fut: ::std::future::Future<Output = ::std::result::Result<T, E>>,
        {
            $resolve!(self, repository => repository.remember_forever(key, compute))
        }

        /// [`Repository::remember_with`](crate::Repository::remember_with): `remember` with
        /// fail-safe, timeouts, eager refresh and jitter.
        pub async fn remember_with<T, E, F, Fut>(
            &self,
            key: &str,
            options: &$crate::RememberOptions,
            compute: F,
        ) -> ::std::result::Result<T, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned + Send + 'static,
            E: From<$crate::Error> + ::std::fmt::Display + Send + 'static,
            F: FnOnce() -> Fut + Send + 'static,
            Fut: ::std::future::Future<Output = ::std::result::Result<T, E>> + Send + 'static,
        {
            $resolve!(self, repository => repository.remember_with(key, options, compute))
        }

        /// [`Repository::remember_entry`](crate::Repository::remember_entry): `remember_with`
        /// whose factory may choose the lifetime, returning where the value came from.
        pub async fn remember_entry<T, E, F, Fut>(
            &self,
            key: &str,
            options: &$crate::RememberOptions,
            compute: F,
        ) -> ::std::result::Result<$crate::Entry<T>, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned + Send + 'static,
            E: From<$crate::Error> + ::std::fmt::Display + Send + 'static,
            F: FnOnce() -> Fut + Send + 'static,
            Fut: ::std::future::Future<Output = ::std::result::Result<$crate::Computed<T>, E>>
                + Send
                + 'static,
        {
            $resolve!(self, repository => repository.remember_entry(key, options, compute))
        }

        /// [`Repository::remember_many`](crate::Repository::remember_many): many keys, one
        /// batch read, one call of `load` with exactly the misses, one batch write.
        pub async fn remember_many<T, E, F, Fut>(
            &self,
            keys: &[impl AsRef<str>],
            options: &$crate::RememberOptions,
            load: F,
        ) -> ::std::result::Result<Vec<Option<T>>, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned,
            E: From<$crate::Error> + ::std::fmt::Display + 'static,
            F: FnOnce(Vec<String>) -> Fut,
            Fut: ::std::future::Future<
                Output = ::std::result::Result<::std::collections::HashMap<String, T>, E>,
            >,
        {
            $resolve!(self, repository => repository.remember_many(keys, options, load))
        }
    };

    (blocking, $resolve:ident) => {
        $crate::facade::repository_operations!(@shared [] $resolve);

        /// [`Repository::remember`](crate::Repository::remember), with a plain closure: the
        /// value under `key`; on a miss, run `compute` once (stampede-safe in this process),
        /// store its `Ok` value until `expiry` and return it.
        pub fn remember<T, E, F>(
            &self,
            key: &str,
            expiry: impl Into<$crate::Expiry>,
            compute: F,
        ) -> ::std::result::Result<T, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned,
            E: From<$crate::Error> + ::std::fmt::Display + 'static,
            F: FnOnce() -> ::std::result::Result<T, E>,
        {
            $resolve!(self, repository => repository.remember(key, expiry, || async move { compute() }))
        }

        /// [`Repository::remember_forever`](crate::Repository::remember_forever), with a plain
        /// closure: like `remember`, storing the computed value forever.
        pub fn remember_forever<T, E, F>(&self, key: &str, compute: F) -> ::std::result::Result<T, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned,
            E: From<$crate::Error> + ::std::fmt::Display + 'static,
            F: FnOnce() -> ::std::result::Result<T, E>,
        {
            $resolve!(self, repository => repository.remember_forever(key, || async move { compute() }))
        }

        /// [`Repository::remember_with`](crate::Repository::remember_with), with a plain
        /// closure (run on tokio's blocking pool, so a slow one does not hold up timeouts).
        pub fn remember_with<T, E, F>(
            &self,
            key: &str,
            options: &$crate::RememberOptions,
            compute: F,
        ) -> ::std::result::Result<T, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned + Send + 'static,
            E: From<$crate::Error> + ::std::fmt::Display + Send + 'static,
            F: FnOnce() -> ::std::result::Result<T, E> + Send + 'static,
        {
            $resolve!(self, repository => repository.remember_with(key, options, move || {
                $crate::runtime::off_the_runtime(compute)
            }))
        }

        /// [`Repository::remember_entry`](crate::Repository::remember_entry), with a plain
        /// closure (run on tokio's blocking pool).
        pub fn remember_entry<T, E, F>(
            &self,
            key: &str,
            options: &$crate::RememberOptions,
            compute: F,
        ) -> ::std::result::Result<$crate::Entry<T>, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned + Send + 'static,
            E: From<$crate::Error> + ::std::fmt::Display + Send + 'static,
            F: FnOnce() -> ::std::result::Result<$crate::Computed<T>, E> + Send + 'static,
        {
            $resolve!(self, repository => repository.remember_entry(key, options, move || {
                $crate::runtime::off_the_runtime(compute)
            }))
        }

        /// [`Repository::remember_many`](crate::Repository::remember_many), with a plain
        /// closure.
        pub fn remember_many<T, E, F>(
            &self,
            keys: &[impl AsRef<str>],
            options: &$crate::RememberOptions,
            load: F,
        ) -> ::std::result::Result<Vec<Option<T>>, E>
        where
            T: ::serde::Serialize + ::serde::de::DeserializeOwned,
            E: From<$crate::Error> + ::std::fmt::Display + 'static,
            F: FnOnce(Vec<String>) -> ::std::result::Result<::std::collections::HashMap<String, T>, E>,
        {
            $resolve!(self, repository => repository.remember_many(keys, options, move |missing| async move { load(missing) }))
        }
    };

    (@shared [$($asyncness:tt)?] $resolve:ident) => {
        /// [`Repository::get`](crate::Repository::get): the value under `key`, or `None` if
        /// there is none.
        pub $($asyncness)? fn get<T: ::serde::de::DeserializeOwned>(
            &self,
            key: &str,
        ) -> $crate::Result<Option<T>> {
            $resolve!(self, repository => repository.get(key))
        }

        /// [`Repository::get_shared`](crate::Repository::get_shared): the value under `key`,
        /// shared, which an in-process store answers without decoding it again.
        pub $($asyncness)? fn get_shared<T>(
            &self,
            key: &str,
        ) -> $crate::Result<Option<::std::sync::Arc<T>>>
        where
            T: ::serde::de::DeserializeOwned + Send + Sync + 'static,
        {
            $resolve!(self, repository => repository.get_shared(key))
        }

        /// [`Repository::get_or`](crate::Repository::get_or): the value under `key`, or
        /// `default` if there is none.
        pub $($asyncness)? fn get_or<T: ::serde::de::DeserializeOwned>(
            &self,
            key: &str,
            default: T,
        ) -> $crate::Result<T> {
            $resolve!(self, repository => repository.get_or(key, default))
        }

        /// [`Repository::get_or_else`](crate::Repository::get_or_else): the value under
        /// `key`, or what `default` returns if there is none.
        pub $($asyncness)? fn get_or_else<T: ::serde::de::DeserializeOwned>(
            &self,
            key: &str,
            default: impl FnOnce() -> T,
        ) -> $crate::Result<T> {
            $resolve!(self, repository => repository.get_or_else(key, default))
        }

        /// [`Repository::has`](crate::Repository::has): whether a live item is stored under
        /// `key`.
        pub $($asyncness)? fn has(&self, key: &str) -> $crate::Result<bool> {
            $resolve!(self, repository => repository.has(key))
        }

        /// [`Repository::pull`](crate::Repository::pull): the value under `key`, removed
        /// from the cache.
        pub $($asyncness)? fn pull<T: ::serde::de::DeserializeOwned>(
            &self,
            key: &str,
        ) -> $crate::Result<Option<T>> {
            $resolve!(self, repository => repository.pull(key))
        }

        /// [`Repository::put`](crate::Repository::put): store `value` under `key` until
        /// `expiry`.
        pub $($asyncness)? fn put<T: ::serde::Serialize + ?Sized>(
            &self,
            key: &str,
            value: &T,
            expiry: impl Into<$crate::Expiry>,
        ) -> $crate::Result<()> {
            $resolve!(self, repository => repository.put(key, value, expiry))
        }

        /// [`Repository::add`](crate::Repository::add): store `value` only if `key` holds
        /// nothing; `true` if it was stored.
        pub $($asyncness)? fn add<T: ::serde::Serialize + ?Sized>(
            &self,
            key: &str,
            value: &T,
            expiry: impl Into<$crate::Expiry>,
        ) -> $crate::Result<bool> {
            $resolve!(self, repository => repository.add(key, value, expiry))
        }

        /// [`Repository::forever`](crate::Repository::forever): store `value` under `key`
        /// with no expiry.
        pub $($asyncness)? fn forever<T: ::serde::Serialize + ?Sized>(
            &self,
            key: &str,
            value: &T,
        ) -> $crate::Result<()> {
            $resolve!(self, repository => repository.forever(key, value))
        }

        /// [`Repository::touch`](crate::Repository::touch): give the live item under `key`
        /// the lifetime `expiry` from now; `true` if there was one.
        pub $($asyncness)? fn touch(
            &self,
            key: &str,
            expiry: impl Into<$crate::Expiry>,
        ) -> $crate::Result<bool> {
            $resolve!(self, repository => repository.touch(key, expiry))
        }

        /// [`Repository::forget`](crate::Repository::forget): remove `key`; `true` if
        /// something was removed.
        pub $($asyncness)? fn forget(&self, key: &str) -> $crate::Result<bool> {
            $resolve!(self, repository => repository.forget(key))
        }

        /// [`Repository::increment`](crate::Repository::increment): add one to the counter
        /// under `key` and return the new value.
        pub $($asyncness)? fn increment(&self, key: &str) -> $crate::Result<i64> {
            $resolve!(self, repository => repository.increment(key))
        }

        /// [`Repository::increment_by`](crate::Repository::increment_by): add `amount` to the
        /// counter under `key`.
        pub $($asyncness)? fn increment_by(&self, key: &str, amount: i64) -> $crate::Result<i64> {
            $resolve!(self, repository => repository.increment_by(key, amount))
        }

        /// [`Repository::increment_expiring`](crate::Repository::increment_expiring): add
        /// `amount` to the counter under `key`, creating a missing one that lives until
        /// `expiry`.
        pub $($asyncness)? fn increment_expiring(
            &self,
            key: &str,
            amount: i64,
            expiry: impl Into<$crate::Expiry>,
        ) -> $crate::Result<i64> {
            $resolve!(self, repository => repository.increment_expiring(key, amount, expiry))
        }

        /// [`Repository::decrement`](crate::Repository::decrement): subtract one from the
        /// counter under `key`.
        pub $($asyncness)? fn decrement(&self, key: &str) -> $crate::Result<i64> {
            $resolve!(self, repository => repository.decrement(key))
        }

        /// [`Repository::decrement_by`](crate::Repository::decrement_by): subtract `amount`
        /// from the counter under `key`.
        pub $($asyncness)? fn decrement_by(&self, key: &str, amount: i64) -> $crate::Result<i64> {
            $resolve!(self, repository => repository.decrement_by(key, amount))
        }

        /// [`Repository::many`](crate::Repository::many): the values under `keys`, in order,
        /// `None` for each miss.
        pub $($asyncness)? fn many<T: ::serde::de::DeserializeOwned>(
            &self,
            keys: &[impl AsRef<str>],
        ) -> $crate::Result<Vec<Option<T>>> {
            $resolve!(self, repository => repository.many(keys))
        }

        /// [`Repository::put_many`](crate::Repository::put_many): store every `(key, value)`
        /// pair until `expiry`.
        pub $($asyncness)? fn put_many<K, T>(
            &self,
            items: &[(K, T)],
            expiry: impl Into<$crate::Expiry>,
        ) -> $crate::Result<()>
        where
            K: AsRef<str>,
            T: ::serde::Serialize,
        {
            $resolve!(self, repository => repository.put_many(items, expiry))
        }

        /// [`Repository::flush`](crate::Repository::flush): remove every item of the store
        /// (under tags: invalidate the tags).
        pub $($asyncness)? fn flush(&self) -> $crate::Result<()> {
            $resolve!(self, repository => repository.flush())
        }
    };
}

pub(crate) use repository_operations;
