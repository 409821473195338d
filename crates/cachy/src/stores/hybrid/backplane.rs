//! The backplane: invalidation messages between the processes sharing a hybrid store, on a
//! Redis channel. Two background tasks per store, on the blocking API's runtime (which lives
//! as long as the process, whichever runtime the store is used from): one publishes what
//! this process changed, one listens for what the others changed.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::{Levels, cannot_start};
use crate::error::Result;
use crate::stores::RedisStore;

/// The first pause after a failed publish or subscription; it doubles up to `MAX_PAUSE`.
const MIN_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// Keys per message, so that one message stays small.
const KEYS_PER_MESSAGE: usize = 500;

pub(super) struct Backplane {
    redis: Arc<RedisStore>,
    channel: String,
    /// This store's id in messages, so that it ignores its own.
    instance: String,
    /// Changes not yet announced: one entry per key, however often it changed.
    pending: Mutex<Pending>,
    wake: Notify,
    subscribed: AtomicBool,
}

#[derive(Default)]
struct Pending {
    flush: bool,
    keys: HashSet<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.flush && self.keys.is_empty()
    }
}

/// An invalidation: keys that changed, or everything (a flush). Never a value.
#[derive(Serialize, Deserialize)]
struct Message {
    from: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    flush: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
}

impl Backplane {
    pub(super) fn new(redis: Arc<RedisStore>, channel: String) -> Self {
        Backplane {
            redis,
            channel,
            instance: crate::lock::new_owner(),
            pending: Mutex::default(),
            wake: Notify::new(),
            subscribed: AtomicBool::new(false),
        }
    }

    pub(super) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Acquire)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tell the other processes that `key` changed.
    pub(super) fn announce(&self, key: &str) {
        self.pending().keys.insert(key.to_owned());
        self.wake.notify_one();
    }

    /// Tell the other processes that everything changed.
    pub(super) fn announce_flush(&self) {
        self.pending().flush = true;
        self.wake.notify_one();
    }

    pub(super) fn unsent(&self) -> usize {
        let pending = self.pending();
        pending.keys.len() + usize::from(pending.flush)
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending())
    }

    /// Queue `unsent` again, merged with what was queued meanwhile.
    fn put_back(&self, unsent: Pending) {
        let mut pending = self.pending();
        pending.flush |= unsent.flush;
        pending.keys.extend(unsent.keys);
    }

    async fn send(&self, changes: &Pending) -> Result<()> {
        let keys: Vec<&String> = changes.keys.iter().collect();
        let mut batches: Vec<Message> = keys
            .chunks(KEYS_PER_MESSAGE)
            .map(|keys| Message {
                from: self.instance.clone(),
                flush: false,
                keys: keys.iter().map(|key| (*key).clone()).collect(),
            })
            .collect();
        if changes.flush {
            batches.insert(
                0,
                Message {
                    from: self.instance.clone(),
                    flush: true,
                    keys: Vec::new(),
                },
            );
        }
        for message in batches {
            let payload = serde_json::to_vec(&message).expect("a message serializes");
            let _: i64 = self
                .redis
                .query(redis::cmd("PUBLISH").arg(&self.channel).arg(payload))
                .await?;
        }
        Ok(())
    }

    /// Act on a message from the channel. Anything on it is untrusted: a payload that is not
    /// a message this version reads may still announce a change, so it drops all of L1.
    fn apply(&self, payload: &[u8], levels: &Levels) {
        match serde_json::from_slice::<Message>(payload) {
            Ok(message) if message.from == self.instance => {}
            Ok(message) => {
                if message.flush {
                    levels.changed_all();
                }
                for key in &message.keys {
                    levels.changed(key);
                }
            }
            Err(_) => {
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    channel = %self.channel,
                    "hybrid store: a message it cannot read; dropping all of L1"
                );
                levels.changed_all();
            }
        }
    }
}

impl std::fmt::Debug for Backplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backplane")
            .field("channel", &self.channel)
            .field("subscribed", &self.is_subscribed())
            .finish_non_exhaustive()
    }
}

/// Start the store's publishing and listening tasks; they end when `running` is dropped.
pub(super) fn start(
    backplane: &Arc<Backplane>,
    levels: &Arc<Levels>,
    running: watch::Receiver<()>,
) -> Result<()> {
    let runtime = crate::blocking::background().map_err(cannot_start)?;
    runtime.spawn(publish(Arc::clone(backplane), running.clone()));
    runtime.spawn(listen(
        Arc::clone(backplane),
        Arc::downgrade(levels),
        running,
    ));
    Ok(())
}

/// Resolves once the store is dropped.
async fn stopped(running: &mut watch::Receiver<()>) {
    while running.changed().await.is_ok() {}
}

/// Publish queued changes as they come; after a failure, keep them queued and try again,
/// pausing longer each time (up to a second).
async fn publish(backplane: Arc<Backplane>, mut running: watch::Receiver<()>) {
    let mut pause = MIN_PAUSE;
    loop {
        let changes = backplane.take();
        if changes.is_empty() {
            tokio::select! {
                () = stopped(&mut running) => return,
                () = backplane.wake.notified() => continue,
            }
        }
        if backplane.send(&changes).await.is_ok() {
            pause = MIN_PAUSE;
            continue;
        }
        backplane.put_back(changes);
        #[cfg(feature = "tracing")]
        tracing::debug!(
            channel = %backplane.channel,
            queued = backplane.unsent(),
            "hybrid store: invalidations queued until Redis answers"
        );
        tokio::select! {
            () = stopped(&mut running) => {
                // The store is gone: one last try for what it changed.
                let _ = backplane.send(&backplane.take()).await;
                return;
            }
            () = tokio::time::sleep(pause) => {}
            // A new subscription means Redis answers again.
            () = backplane.wake.notified() => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Listen for the other processes' changes, subscribing again whenever the connection
/// drops. Each (re)subscription drops all of L1: messages sent while this process was not
/// listening are lost, so any copy may be stale.
async fn listen(backplane: Arc<Backplane>, levels: Weak<Levels>, mut running: watch::Receiver<()>) {
    let mut pause = MIN_PAUSE;
    loop {
        let subscription = tokio::select! {
            () = stopped(&mut running) => return,
            subscription = backplane.redis.subscribe(&backplane.channel) => subscription,
        };
        if let Ok(messages) = subscription {
            let mut messages = std::pin::pin!(messages);
            let Some(current) = levels.upgrade() else {
                return;
            };
            current.changed_all();
            drop(current);
            #[cfg(feature = "tracing")]
            tracing::info!(channel = %backplane.channel, "hybrid store: subscribed; L1 emptied");
            backplane.subscribed.store(true, Ordering::Release);
            backplane.wake.notify_one();
            pause = MIN_PAUSE;
            loop {
                let payload = tokio::select! {
                    () = stopped(&mut running) => return,
                    payload = messages.next() => payload,
                };
                let Some(payload) = payload else {
                    break;
                };
                let Some(current) = levels.upgrade() else {
                    return;
                };
                backplane.apply(&payload, &current);
            }
            backplane.subscribed.store(false, Ordering::Release);
            #[cfg(feature = "tracing")]
            tracing::warn!(
                channel = %backplane.channel,
                "hybrid store: subscription lost; L1 serves copies of at most `l1_ttl` until it is back"
            );
        }
        tokio::select! {
            () = stopped(&mut running) => return,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}
