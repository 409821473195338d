//! What a key is made of: a method's `self` (left out unless asked), skipped arguments, and
//! a manager taken from the instance.

use super::*;

#[derive(serde::Serialize)]
struct Service {
    region: String,
}

static METHOD_CALLS: AtomicUsize = AtomicUsize::new(0);

impl Service {
    #[cached(manager = manager())]
    async fn lookup(&self, id: u32) -> String {
        METHOD_CALLS.fetch_add(1, Ordering::SeqCst);
        format!("{}:{id}", self.region)
    }

    #[cached(manager = manager(), include_self)]
    async fn lookup_per_region(&self, id: u32) -> String {
        format!("{}:{id}", self.region)
    }
}

#[tokio::test]
async fn methods_leave_self_out_of_the_key_unless_asked() {
    let eu = Service {
        region: "eu".into(),
    };
    let us = Service {
        region: "us".into(),
    };
    assert_eq!(eu.lookup(1).await, "eu:1");
    assert_eq!(us.lookup(1).await, "eu:1", "self is not part of the key");
    assert_eq!(METHOD_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(eu.lookup_per_region(1).await, "eu:1");
    assert_eq!(
        us.lookup_per_region(1).await,
        "us:1",
        "include_self puts self in the key"
    );
}

/// Not `Serialize`: a connection pool or a client, say.
struct Pool {
    base: i64,
}

static SKIPPED_CALLS: AtomicUsize = AtomicUsize::new(0);

#[cached(manager = manager(), skip(pool))]
async fn with_a_skipped_argument(pool: &Pool, x: i64) -> i64 {
    SKIPPED_CALLS.fetch_add(1, Ordering::SeqCst);
    pool.base + x
}

#[tokio::test]
async fn skipped_arguments_are_left_out_of_the_key() {
    let pool = Pool { base: 100 };
    assert_eq!(with_a_skipped_argument(&pool, 1).await, 101);
    let other = Pool { base: 0 };
    assert_eq!(
        with_a_skipped_argument(&other, 1).await,
        101,
        "the pool is not part of the key"
    );
    assert_eq!(with_a_skipped_argument(&pool, 2).await, 102);
    assert_eq!(SKIPPED_CALLS.load(Ordering::SeqCst), 2);
}

struct Cached {
    cache: CacheManager,
}

static PER_INSTANCE_CALLS: AtomicUsize = AtomicUsize::new(0);

impl Cached {
    #[cached(manager = &self.cache)]
    async fn per_instance(&self, x: i64) -> i64 {
        PER_INSTANCE_CALLS.fetch_add(1, Ordering::SeqCst);
        x
    }
}

#[tokio::test]
async fn a_manager_expression_using_self_is_the_instance_s() {
    let one = Cached {
        cache: fresh_manager(),
    };
    let two = Cached {
        cache: fresh_manager(),
    };
    assert_eq!(one.per_instance(1).await, 1);
    assert_eq!(one.per_instance(1).await, 1);
    assert_eq!(two.per_instance(1).await, 1);
    assert_eq!(
        PER_INSTANCE_CALLS.load(Ordering::SeqCst),
        2,
        "one computation per manager"
    );
}
