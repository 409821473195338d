//! The backplane: invalidation messages between the processes sharing a hybrid store, on a
//! Redis channel. Two background tasks per store, on the blocking API's runtime (which lives
//! as long as the process, whichever runtime the store is used from): one publishes what
//! this process changed, one listens for what the others changed.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use super::levels::{Levels, cannot_start};
use crate::error::{Error, ErrorKind, Result};
use crate::store::PubSub;

/// The first pause after a failed publish or subscription; it doubles up to `MAX_PAUSE`.
const MIN_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// How often a subscribed process checks that its subscription still delivers: it sends a
/// marker and must hear it back within `HEARTBEAT_LIMIT`. A server (or a cluster node) that
/// stalls keeps its connection open, so the stream alone would never end, and invalidations
/// would silently stop.
const HEARTBEAT: Duration = Duration::from_secs(1);
const HEARTBEAT_LIMIT: Duration = Duration::from_secs(2);
/// Keys per message, so that one message stays small.
const KEYS_PER_MESSAGE: usize = 500;
/// Distinct keys queued at most while Redis is unreachable; one more and the queue becomes a
/// single flush, so that an outage costs bounded memory and a bounded burst of messages when
/// Redis is back. A flush costs the receivers their whole L1, which past this many changed
/// keys is little more than the keys would have cost: it is the default L1 size
/// (`l1.max_entries`). At this size the queue is about a megabyte, and is sent in 20 messages.
const MAX_QUEUED_KEYS: usize = 10_000;

pub(super) struct Backplane {
    pubsub: Arc<dyn PubSub>,
    channel: String,
    /// This store's id in messages, so that it ignores its own.
    instance: String,
    /// Changes not yet announced: one entry per key, however often it changed.
    pending: Mutex<Pending>,
    /// Something was queued. Only an idle publisher waits for it: one that is pausing after a
    /// failure must not retry on every write, or each write would cost a failed send.
    wake: Notify,
    /// The subscription started: Redis answers again, so a pausing publisher retries now.
    resubscribed: Notify,
    subscribed: AtomicBool,
    /// Held while changes taken from `pending` are being sent, so that a caller who must know
    /// every change was sent ([`Backplane::publish_now`]) waits for a send under way.
    sending: tokio::sync::Mutex<()>,
    /// The last marker this process sent, and the last one it heard back (see
    /// [`Backplane::catch_up`]).
    markers_sent: AtomicU64,
    markers_heard: watch::Sender<u64>,
}

/// Changes not yet announced. Once `flush` is set, `keys` stays empty: the flush goes out after
/// the changes to those keys were made, and drops them from every L1 as well.
#[derive(Default)]
struct Pending {
    flush: bool,
    keys: HashSet<String>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.flush && self.keys.is_empty()
    }

    /// The number of messages' worth of entries: one per key, one for a flush.
    fn len(&self) -> usize {
        self.keys.len() + usize::from(self.flush)
    }

    /// Queue `key`. Returns the keys this made redundant, to be freed outside the lock.
    fn insert(&mut self, key: &str) -> HashSet<String> {
        if !self.flush {
            self.keys.insert(key.to_owned());
        }
        self.bound()
    }

    /// Queue a flush. Returns the keys this made redundant, to be freed outside the lock.
    fn insert_flush(&mut self) -> HashSet<String> {
        self.flush = true;
        self.bound()
    }

    /// Queue `other` too. The smaller key set goes into the larger, so that putting back a
    /// large queue that failed to send costs what was queued meanwhile, not the queue's size.
    /// Returns the keys this made redundant, to be freed outside the lock.
    fn merge(&mut self, mut other: Pending) -> HashSet<String> {
        if other.keys.len() > self.keys.len() {
            std::mem::swap(&mut self.keys, &mut other.keys);
        }
        self.flush |= other.flush;
        if !self.flush {
            self.keys.extend(other.keys);
        }
        self.bound()
    }

    /// Collapse to a flush past `MAX_QUEUED_KEYS`, and keep no key beside a flush.
    fn bound(&mut self) -> HashSet<String> {
        if self.keys.len() > MAX_QUEUED_KEYS {
            self.flush = true;
        }
        if self.flush {
            std::mem::take(&mut self.keys)
        } else {
            HashSet::new()
        }
    }
}

/// An invalidation: keys that changed, or everything (a flush). Never a value. Borrowed when
/// sent, so that sending does not copy the queued keys.
#[derive(Serialize, Deserialize)]
struct Message<'a> {
    from: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    flush: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<Cow<'a, str>>,
    /// A marker its sender waits to hear back: every message sent before it has then
    /// reached the sender too. Other processes ignore it (as versions before it do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marker: Option<u64>,
}

impl Backplane {
    pub(super) fn new(pubsub: Arc<dyn PubSub>, channel: String) -> Self {
        Backplane {
            pubsub,
            channel,
            instance: crate::repository::lock::new_owner(),
            pending: Mutex::default(),
            wake: Notify::new(),
            resubscribed: Notify::new(),
            subscribed: AtomicBool::new(false),
            sending: tokio::sync::Mutex::new(()),
            markers_sent: AtomicU64::new(0),
            markers_heard: watch::Sender::new(0),
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
        let redundant = self.pending().insert(key);
        #[cfg(feature = "tracing")]
        if !redundant.is_empty() {
            tracing::warn!(
                channel = %self.channel,
                "hybrid store: more than {MAX_QUEUED_KEYS} invalidations queued; they become \
                 one flush, which drops all of L1 in the other processes"
            );
        }
        drop(redundant);
        self.wake.notify_one();
    }

    /// Tell the other processes that everything changed.
    pub(super) fn announce_flush(&self) {
        let redundant = self.pending().insert_flush();
        drop(redundant);
        self.wake.notify_one();
    }

    pub(super) fn unsent(&self) -> usize {
        self.pending().len()
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.pending())
    }

    /// Queue `unsent` again, merged with what was queued meanwhile.
    fn put_back(&self, unsent: Pending) {
        let redundant = self.pending().merge(unsent);
        drop(redundant);
    }

    /// Send every change queued so far, and every change being sent, before returning.
    pub(super) async fn publish_now(&self) -> Result<()> {
        let _sending = self.sending.lock().await;
        let changes = self.take();
        if changes.is_empty() {
            return Ok(());
        }
        let sent = self.send(&changes).await;
        if sent.is_err() {
            self.put_back(changes);
        }
        sent
    }

    /// Wait until every message sent on the channel before this call has reached this
    /// process (and been applied), by sending a marker and waiting to hear it back, up to
    /// `limit`. Messages of one channel reach a subscriber in the order Redis took them.
    pub(super) async fn catch_up(&self, limit: Duration) -> Result<()> {
        let unheard = || {
            Error::new(
                ErrorKind::Unavailable,
                "the hybrid store's backplane did not echo its marker: changes made elsewhere \
                 may not have arrived",
            )
        };
        if !self.is_subscribed() {
            return Err(unheard());
        }
        let marker = self.markers_sent.fetch_add(1, Ordering::AcqRel) + 1;
        let mut heard = self.markers_heard.subscribe();
        self.publish_one(&Message {
            from: Cow::Borrowed(&self.instance),
            flush: false,
            keys: Vec::new(),
            marker: Some(marker),
        })
        .await?;
        tokio::time::timeout(limit, heard.wait_for(|heard| *heard >= marker))
            .await
            .map_err(|_| unheard())?
            .map_err(|_| unheard())?;
        Ok(())
    }

    /// Publish `changes`, the flush first. Each message is built only when its turn comes, so
    /// that a send failing at once (Redis marked down) costs one message, not the queue.
    async fn send(&self, changes: &Pending) -> Result<()> {
        if changes.flush {
            self.publish_one(&Message {
                from: Cow::Borrowed(&self.instance),
                flush: true,
                keys: Vec::new(),
                marker: None,
            })
            .await?;
        }
        let mut keys = changes.keys.iter();
        loop {
            let batch: Vec<Cow<'_, str>> = keys
                .by_ref()
                .take(KEYS_PER_MESSAGE)
                .map(|key| Cow::Borrowed(key.as_str()))
                .collect();
            if batch.is_empty() {
                return Ok(());
            }
            self.publish_one(&Message {
                from: Cow::Borrowed(&self.instance),
                flush: false,
                keys: batch,
                marker: None,
            })
            .await?;
        }
    }

    async fn publish_one(&self, message: &Message<'_>) -> Result<()> {
        let payload = serde_json::to_vec(message).expect("a message serializes");
        self.pubsub.publish(&self.channel, &payload).await
    }

    /// Act on a message from the channel. Anything on it is untrusted: a payload that is not
    /// a message this version reads may still announce a change, so it drops all of L1.
    fn apply(&self, payload: &[u8], levels: &Levels) {
        match serde_json::from_slice::<Message>(payload) {
            Ok(message) if message.from == self.instance => {
                if let Some(marker) = message.marker {
                    self.markers_heard.send_if_modified(|heard| {
                        let later = marker > *heard;
                        *heard = (*heard).max(marker);
                        later
                    });
                }
            }
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
    let runtime = crate::runtime::background().map_err(cannot_start)?;
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
        let sending = backplane.sending.lock().await;
        let changes = backplane.take();
        if changes.is_empty() {
            drop(sending);
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
        drop(sending);
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
            // Not `wake`: changes queued meanwhile wait for the next try.
            () = backplane.resubscribed.notified() => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Resolves once the subscription stops delivering: a marker sent every `HEARTBEAT` did not
/// come back within `HEARTBEAT_LIMIT`.
async fn heartbeat(backplane: &Backplane) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        if backplane.catch_up(HEARTBEAT_LIMIT).await.is_err() {
            return;
        }
    }
}

/// Listen for the other processes' changes, subscribing again whenever the connection
/// drops or stops delivering. Each subscription, the first included, drops all of L1: messages sent while this
/// process was not listening are lost, so any copy may be stale. Before the first one too: a
/// copy read from L2 before it (or a read under way) may predate a change whose message
/// went out before this process listened, and nothing else would ever drop it.
async fn listen(backplane: Arc<Backplane>, levels: Weak<Levels>, mut running: watch::Receiver<()>) {
    let mut pause = MIN_PAUSE;
    loop {
        let subscription = tokio::select! {
            () = stopped(&mut running) => return,
            subscription = backplane.pubsub.subscribe(&backplane.channel) => subscription,
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
            backplane.resubscribed.notify_one();
            pause = MIN_PAUSE;
            let mut alive = std::pin::pin!(heartbeat(&backplane));
            loop {
                let payload = tokio::select! {
                    () = stopped(&mut running) => return,
                    () = &mut alive => None,
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

#[cfg(test)]
mod tests;
