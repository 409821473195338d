//! Single flight: while one caller computes the value of a missing key, the others in this
//! process wait for its outcome instead of computing it again (no cache stampede).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// What the computing caller hands to the waiting ones.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// The value, as the serializer wrote it (waiters decode it into their own copy).
    Value(Arc<[u8]>),
    /// The computation failed and this fail-safe fallback, as the serializer wrote it,
    /// stands in for its value.
    Stale(Arc<[u8]>),
    /// The computation found no value for the key (a batch loader left it out); waiters
    /// look for it themselves.
    Absent,
    /// The computation (or storing its value) failed with this message.
    Failed(Arc<str>),
}

type Slot = watch::Receiver<Option<Outcome>>;

type InProgress = Mutex<HashMap<String, Slot>>;

/// The computations in progress, by key.
#[derive(Default)]
pub(crate) struct Flights {
    in_progress: Arc<InProgress>,
}

/// Which part a caller plays for one key.
pub(crate) enum Role {
    /// This caller computes; it must [`finish`](Leader::finish) (dropping it lets waiters
    /// retry, e.g. when the caller is cancelled). It may move to a task of its own.
    Leader(Leader),
    /// Another caller computes; await [`wait`].
    Waiter(Slot),
}

pub(crate) struct Leader {
    in_progress: Arc<InProgress>,
    key: String,
    sender: watch::Sender<Option<Outcome>>,
    /// The keys the joining task was computing, so that a computation moved to a task of its
    /// own still knows what it is nested in.
    enclosing: Vec<(usize, String)>,
}

impl Flights {
    /// Lead the computation of `key`, or wait for the caller already leading it.
    pub(crate) fn join(&self, key: &str) -> Role {
        let mut in_progress = self
            .in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = in_progress.get(key) {
            return Role::Waiter(slot.clone());
        }
        let (sender, slot) = watch::channel(None);
        in_progress.insert(key.to_owned(), slot);
        Role::Leader(Leader {
            in_progress: Arc::clone(&self.in_progress),
            key: key.to_owned(),
            sender,
            enclosing: COMPUTING.try_with(Clone::clone).unwrap_or_default(),
        })
    }
}

impl Leader {
    /// Hand `outcome` to every waiter and end this flight.
    pub(crate) fn finish(self, outcome: Outcome) {
        self.sender.send_replace(Some(outcome));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.in_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

tokio::task_local! {
    /// The keys this task is computing as a leader, by their flights' address: a `remember`
    /// of one of them from inside its own computation would wait for itself forever.
    static COMPUTING: Vec<(usize, String)>;
}

impl Flights {
    /// Whether the current task is computing `key` of these flights, further up its stack (or
    /// up the stack of the task that started its computation).
    pub(crate) fn is_computing(&self, key: &str) -> bool {
        let flights = Arc::as_ptr(&self.in_progress) as usize;
        COMPUTING
            .try_with(|keys| keys.iter().any(|(f, k)| *f == flights && k == key))
            .unwrap_or(false)
    }
}

impl Leader {
    /// Run the leader's computation, marked as computing this flight's key (within the keys
    /// the joining task was computing), wherever it runs.
    pub(crate) async fn compute<F: Future>(&self, work: F) -> F::Output {
        computing(std::slice::from_ref(self), work).await
    }

    fn marker(&self) -> (usize, String) {
        (Arc::as_ptr(&self.in_progress) as usize, self.key.clone())
    }
}

/// Run `work` marked as computing the keys of every one of `leaders` (a batch load).
pub(crate) async fn computing<F: Future>(leaders: &[Leader], work: F) -> F::Output {
    let mut keys = leaders
        .first()
        .map(|leader| leader.enclosing.clone())
        .unwrap_or_default();
    keys.extend(leaders.iter().map(Leader::marker));
    COMPUTING.scope(keys, work).await
}

/// The leader's outcome, or `None` if it went away without one (then try again).
pub(crate) async fn wait(mut slot: Slot) -> Option<Outcome> {
    slot.wait_for(Option::is_some).await.ok()?.clone()
}
