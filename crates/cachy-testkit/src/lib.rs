//! The behaviour suite every cachy store must pass, written once.
//!
//! A store's test file provides an async function that returns a fresh [`Fixture`] (a
//! repository over an empty store, plus whatever must stay alive: a temp folder, a server),
//! and invokes [`behaviour_suite!`] with it. The macro expands into one `#[tokio::test]` per
//! behaviour, so a failure names the behaviour and the store.
//!
//! ```ignore
//! async fn memory() -> cachy_testkit::Fixture {
//!     cachy_testkit::Fixture::new(repository, ())
//! }
//! cachy_testkit::behaviour_suite!(memory);
//! ```

#![warn(missing_docs)]

pub mod behaviour;
pub mod bench;
pub mod servers;

use std::any::Any;

use std::time::{Duration, Instant};

use cachy::Repository;

/// Increment a counter in a loop for `length` on a task of its own, counting the calls that
/// succeeded and failed: the load that fault tests kill a server under.
pub fn spawn_increment_load(
    repository: Repository,
    length: Duration,
) -> tokio::task::JoinHandle<(u64, u64)> {
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0, 0);
        let until = Instant::now() + length;
        while Instant::now() < until {
            match repository.increment("load").await {
                Ok(_) => ok += 1,
                Err(_) => failed += 1,
            }
        }
        (ok, failed)
    })
}

/// A repository over an empty store, and what keeps that store alive for the test.
pub struct Fixture {
    /// The repository under test.
    pub repository: Repository,
    _guard: Box<dyn Any + Send>,
}

impl Fixture {
    /// A fixture over `repository`; `guard` is dropped when the test ends.
    pub fn new(repository: Repository, guard: impl Any + Send) -> Self {
        Fixture {
            repository,
            _guard: Box::new(guard),
        }
    }
}

/// Expands into one test per behaviour in [`behaviour`], each run on a fresh fixture from
/// `$fixture().await`, which returns a [`Fixture`] or an `Option<Fixture>` (`None` skips: a
/// server that is not installed outside CI).
#[macro_export]
macro_rules! behaviour_suite {
    ($fixture:path) => {
        $crate::behaviour_suite!(@tests $fixture;
            get_returns_none_for_a_missing_key,
            put_then_get_returns_the_value,
            put_replaces_the_previous_value,
            values_of_many_types_round_trip,
            integers_round_trip_at_the_edges,
            integer_like_strings_stay_strings,
            get_or_returns_the_default_only_on_a_miss,
            has_reports_whether_a_key_is_stored,
            pull_returns_the_value_and_removes_it,
            put_with_minutes_keeps_the_value,
            put_with_a_duration_expires_after_it,
            put_with_zero_or_negative_ttl_stores_nothing_and_removes,
            put_with_a_past_time_stores_nothing_and_removes,
            put_with_a_future_time_keeps_the_value,
            a_very_long_lifetime_keeps_the_value,
            add_stores_only_when_the_key_is_missing,
            add_succeeds_after_the_previous_value_expired,
            add_with_zero_ttl_adds_nothing,
            concurrent_adds_have_exactly_one_winner,
            forever_keeps_the_value_without_expiry,
            forget_reports_whether_something_was_removed,
            increment_starts_a_missing_counter_at_zero,
            increment_and_decrement_by_amounts_go_below_zero,
            increment_works_on_an_integer_stored_with_put,
            increment_keeps_the_existing_ttl,
            an_expiring_counter_is_created_once_with_its_lifetime,
            increment_of_a_non_integer_is_an_error_and_keeps_the_value,
            an_overflowing_increment_is_an_error_and_keeps_the_counter,
            concurrent_increments_lose_nothing,
            remember_computes_on_a_miss_and_caches,
            remember_does_not_cache_an_error,
            remember_forever_caches_without_expiry,
            concurrent_remembers_compute_once,
            concurrent_remembers_share_an_error_and_cache_nothing,
            many_returns_values_in_key_order,
            put_many_stores_every_item,
            flush_removes_every_item,
            odd_keys_are_distinct_and_round_trip,
            a_one_mebibyte_value_round_trips,
            a_write_given_up_on_never_lands_after_a_later_one,
            reading_the_wrong_type_is_an_error_and_keeps_the_value,
            get_shared_answers_what_get_does,
            tags_flushing_people_and_authors_removes_john_and_anne,
            tags_flushing_authors_keeps_john,
            tagged_items_are_apart_from_untagged_and_other_tags,
            every_method_works_under_tags,
            an_error_under_tags_names_the_key_as_given,
            fail_safe_serves_the_last_value_while_the_factory_fails,
            without_a_fallback_a_failing_factory_is_an_error_and_caches_nothing,
            a_soft_timeout_serves_the_stale_value_and_the_factory_finishes,
            a_hard_timeout_abandons_the_factory,
            eager_refresh_refreshes_once_in_the_background,
            a_thousand_callers_of_an_expired_key_run_the_factory_once,
            jitter_spreads_lifetimes_within_bounds,
            the_factory_chooses_the_lifetime_or_no_caching,
            remember_many_loads_exactly_the_misses,
            touch_extends_a_live_item,
            exactly_one_of_a_hundred_lock_tries_wins,
            only_the_owner_releases_a_lock,
            an_expired_lock_can_be_taken,
            acquire_waits_for_the_holder_or_times_out,
            fencing_tokens_grow_across_a_flush_and_a_lost_counter,
            lock_state_never_collides_with_keys_or_other_locks,
            lock_operations_are_observed,
            observability_counts_a_known_sequence_exactly,
            a_store_that_is_down_never_fails_a_resilient_remember,
            a_store_and_a_source_both_down_give_the_source_error,
            a_cache_failure_is_counted_as_one_whatever_the_error_type,
            a_value_that_no_longer_decodes_is_recomputed_and_overwritten,
            a_value_that_cannot_be_encoded_is_a_failure_observed,
            a_fallback_is_never_fresh_to_get_has_many_or_remember,
            a_fallback_is_served_only_within_the_readers_window,
            a_fallback_keeps_the_window_of_its_own_lifetime,
            compressed_values_read_back_across_a_setting_change,
            encrypted_values_rotate_and_refuse_tampering_and_other_keys,
            values_and_keys_over_the_limits_are_refused_before_they_are_sent,
            versions_and_namespaces_keep_their_items_apart,
        );
    };
    (@tests $fixture:path; $($behaviour:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $behaviour() {
                let Some(fixture) = Option::<$crate::Fixture>::from($fixture().await) else {
                    return;
                };
                $crate::behaviour::$behaviour(&fixture.repository).await;
            }
        )*
    };
}
