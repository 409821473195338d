//! The integration tests, in one binary so that CI links the store clients once: a module
//! per store or concern. Tests that install process-wide state (a metrics recorder, a
//! tracing subscriber, the global memoizer) stay in binaries of their own
//! (`tests/prometheus.rs`, `tests/observability.rs`, `tests/cached.rs`).

mod api_parity;
mod blocking;
mod custom_store;
mod database_store;
mod distributed;
mod docs;
mod examples;
mod file_store;
mod hardening;
mod hostile_bytes;
mod hostile_payloads;
mod hybrid_locks;
mod hybrid_store;
mod interop_python;
mod manager;
mod memcached_hostile;
mod memcached_store;
mod memory_store;
mod redis_store;
mod resilient;
mod runtimes;
mod serializers;
mod testing_kit;
