use super::*;
use crate::config::StoreConfig;
use crate::stores::RedisStore;

fn keys(range: std::ops::Range<usize>) -> impl Iterator<Item = String> {
    range.map(|i| format!("key {i}"))
}

/// A backplane whose tasks never start: what it queues stays queued.
fn idle_backplane() -> Backplane {
    // Nothing connects until a call, and none is made.
    let config = StoreConfig::new("redis").with("url", "redis://127.0.0.1:1");
    let redis = RedisStore::from_config(&config).unwrap();
    Backplane::new(Arc::new(redis), "test".to_owned())
}

#[test]
fn the_queue_collapses_to_a_flush_past_the_bound() {
    let mut pending = Pending::default();
    for key in keys(0..MAX_QUEUED_KEYS) {
        assert!(pending.insert(&key).is_empty());
    }
    // Keys already queued do not count twice.
    for key in keys(0..MAX_QUEUED_KEYS) {
        assert!(pending.insert(&key).is_empty());
    }
    assert_eq!(pending.len(), MAX_QUEUED_KEYS);
    assert!(!pending.flush);

    let mut collapsed = 0;
    for key in keys(MAX_QUEUED_KEYS..4 * MAX_QUEUED_KEYS) {
        if !pending.insert(&key).is_empty() {
            collapsed += 1;
        }
        assert!(pending.len() <= MAX_QUEUED_KEYS + 1, "{}", pending.len());
    }
    assert_eq!(collapsed, 1);
    assert!(pending.flush);
    assert!(pending.keys.is_empty());
    assert_eq!(pending.len(), 1);
}

#[test]
fn a_flush_makes_queued_keys_redundant() {
    let mut pending = Pending::default();
    pending.insert("a");
    assert_eq!(pending.insert_flush().len(), 1);
    pending.insert("b");
    assert!(pending.flush);
    assert!(pending.keys.is_empty());
}

#[test]
fn putting_back_keeps_the_bound() {
    let mut taken = Pending::default();
    for key in keys(0..MAX_QUEUED_KEYS) {
        taken.insert(&key);
    }
    // Queued meanwhile: a key already in the taken queue, which keeps it at the bound...
    let mut meanwhile = Pending::default();
    meanwhile.insert("key 0");
    meanwhile.merge(std::mem::take(&mut taken));
    assert_eq!(meanwhile.len(), MAX_QUEUED_KEYS);
    assert!(!meanwhile.flush);
    for key in keys(0..MAX_QUEUED_KEYS) {
        taken.insert(&key);
    }
    // ...then one that is not, which tips it over.
    let mut meanwhile = Pending::default();
    meanwhile.insert("new");
    assert_eq!(meanwhile.merge(taken).len(), MAX_QUEUED_KEYS + 1);
    assert!(meanwhile.flush);
    assert_eq!(meanwhile.len(), 1);

    // A flush put back drops what was queued meanwhile, and the other way round.
    let mut meanwhile = Pending::default();
    meanwhile.insert("a");
    let mut flush = Pending::default();
    flush.insert_flush();
    meanwhile.merge(flush);
    assert_eq!((meanwhile.flush, meanwhile.keys.len()), (true, 0));
    let mut taken = Pending::default();
    taken.insert("a");
    meanwhile.merge(taken);
    assert_eq!((meanwhile.flush, meanwhile.keys.len()), (true, 0));
}

#[test]
fn unsent_counts_one_after_the_collapse() {
    let backplane = idle_backplane();
    for key in keys(0..MAX_QUEUED_KEYS) {
        backplane.announce(&key);
    }
    assert_eq!(backplane.unsent(), MAX_QUEUED_KEYS);
    for key in keys(MAX_QUEUED_KEYS..3 * MAX_QUEUED_KEYS) {
        backplane.announce(&key);
        assert!(backplane.unsent() <= MAX_QUEUED_KEYS + 1);
    }
    assert_eq!(backplane.unsent(), 1);

    // As the publisher does when a send fails.
    let taken = backplane.take();
    backplane.announce("meanwhile");
    backplane.put_back(taken);
    assert_eq!(backplane.unsent(), 1);
}

#[test]
fn messages_keep_their_wire_format() {
    let keys = Message {
        from: Cow::Borrowed("me"),
        flush: false,
        keys: vec![Cow::Borrowed("a"), Cow::Borrowed("b")],
        marker: None,
    };
    assert_eq!(
        serde_json::to_string(&keys).unwrap(),
        r#"{"from":"me","keys":["a","b"]}"#
    );
    let flush = Message {
        from: Cow::Borrowed("me"),
        flush: true,
        keys: Vec::new(),
        marker: None,
    };
    assert_eq!(
        serde_json::to_string(&flush).unwrap(),
        r#"{"from":"me","flush":true}"#
    );
    let read: Message = serde_json::from_str(r#"{"from":"you","keys":["a"]}"#).unwrap();
    assert_eq!(
        (&*read.from, read.flush, read.keys.len()),
        ("you", false, 1)
    );
}
