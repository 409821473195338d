//! Single flight: while one caller computes the value of a missing key, the others in this
//! process wait for its outcome instead of computing it again (no cache stampede).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::error::{Error, ErrorKind};

/// What the computing caller hands to the waiting ones.
#[derive(Clone)]
pub(crate) enum Handoff {
    /// The value, as the serializer wrote it (waiters decode it into their own copy).
    Value(Arc<[u8]>),
    /// The computation failed and this fail-safe fallback, as the serializer wrote it,
    /// stands in for its value.
    Stale(Arc<[u8]>),
    /// The computation found no value for the key (a batch loader left it out); waiters
    /// look for it themselves.
    Absent,
    /// The computation (or storing its value) failed.
    Failed(Failure),
}

/// Makes one more copy of the leader's error, as `Box<E>`.
type ErrorCopier = Arc<dyn Fn() -> Box<dyn Any + Send> + Send + Sync>;

/// A failed computation, as the callers that waited for it see it.
#[derive(Clone)]
pub(crate) struct Failure {
    message: Arc<str>,
    kind: ErrorKind,
    /// Copies of the leader's error itself, when its type can be copied: a cache [`Error`]
    /// always, another type when sharing it was asked for ([`ShareErrors`]).
    copy: Option<ErrorCopier>,
}

impl Failure {
    /// The failure the leader's `error` is, shared with the waiters as `share` allows.
    pub(crate) fn of<E: fmt::Display + 'static>(error: &E, share: Option<ShareErrors>) -> Self {
        let any: &dyn Any = error;
        let (kind, copy) = match any.downcast_ref::<Error>() {
            Some(error) => {
                let kind = error.kind();
                let error = error.copy();
                let copy: ErrorCopier = Arc::new(move || Box::new(error.copy()));
                (kind, Some(copy))
            }
            None => (
                ErrorKind::Remember,
                share.and_then(|share| (share.copier)(any)),
            ),
        };
        Failure {
            message: error.to_string().into(),
            kind,
            copy,
        }
    }

    /// The leader's error itself when it is an `E` that could be copied, else an
    /// [`ErrorKind::Remember`] error (or, when the leader's error was a cache error, one of
    /// its kind) with the leader's message, which `context` names the store and key of.
    pub(crate) fn error<E: From<Error> + 'static>(
        &self,
        context: impl FnOnce(Error) -> Error,
    ) -> E {
        if let Some(copy) = &self.copy {
            match copy().downcast::<E>() {
                Ok(error) => return *error,
                Err(copy) => {
                    if let Ok(error) = copy.downcast::<Error>() {
                        return E::from(*error);
                    }
                }
            }
        }
        context(Error::new(
            self.kind,
            format!(
                "computing the value failed in the caller that ran it: {}",
                self.message
            ),
        ))
        .into()
    }
}

/// Whether the callers waiting for a failed computation get copies of its error (of one
/// type, which must be `Clone`): see [`RememberOptions::share_errors`](crate::RememberOptions::share_errors).
#[derive(Clone, Copy)]
pub struct ShareErrors {
    type_id: TypeId,
    type_name: &'static str,
    copier: fn(&dyn Any) -> Option<ErrorCopier>,
}

impl ShareErrors {
    /// Share errors of type `E`.
    pub(crate) fn of<E: Clone + Send + Sync + 'static>() -> Self {
        ShareErrors {
            type_id: TypeId::of::<E>(),
            type_name: std::any::type_name::<E>(),
            copier: |error| {
                let error = error.downcast_ref::<E>()?.clone();
                Some(Arc::new(move || Box::new(error.clone())))
            },
        }
    }
}

impl PartialEq for ShareErrors {
    fn eq(&self, other: &Self) -> bool {
        self.type_id == other.type_id
    }
}

impl fmt::Debug for ShareErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareErrors<{}>", self.type_name)
    }
}

type Slot = watch::Receiver<Option<Handoff>>;

type InProgress = Mutex<HashMap<String, Slot>>;

/// The computations in progress, by key.
pub(crate) struct Flights {
    in_progress: Arc<InProgress>,
    /// The store's gauge of computations in progress, once metrics are on.
    #[cfg(feature = "metrics")]
    gauge: std::sync::OnceLock<metrics::Gauge>,
    #[cfg(feature = "metrics")]
    store: String,
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
    sender: watch::Sender<Option<Handoff>>,
    /// The keys the joining task was computing, so that a computation moved to a task of its
    /// own still knows what it is nested in.
    enclosing: Vec<(usize, String)>,
    /// The gauge this flight counts in while it runs.
    #[cfg(feature = "metrics")]
    gauge: Option<metrics::Gauge>,
}

impl Flights {
    /// The flights of the store `store`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(crate) fn new(store: &str) -> Self {
        Flights {
            in_progress: Arc::default(),
            #[cfg(feature = "metrics")]
            gauge: std::sync::OnceLock::new(),
            #[cfg(feature = "metrics")]
            store: store.to_owned(),
        }
    }

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
        #[cfg(feature = "metrics")]
        let gauge = crate::observe::metrics_enabled().then(|| {
            let gauge = self.gauge.get_or_init(
                || metrics::gauge!("cachy.single_flights", "store" => self.store.clone()),
            );
            gauge.increment(1.0);
            gauge.clone()
        });
        Role::Leader(Leader {
            in_progress: Arc::clone(&self.in_progress),
            key: key.to_owned(),
            sender,
            enclosing: COMPUTING.try_with(Clone::clone).unwrap_or_default(),
            #[cfg(feature = "metrics")]
            gauge,
        })
    }
}

impl Leader {
    /// Hand `outcome` to every waiter and end this flight.
    pub(crate) fn finish(self, outcome: Handoff) {
        self.sender.send_replace(Some(outcome));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        if let Some(gauge) = &self.gauge {
            gauge.decrement(1.0);
        }
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

/// Run the sync `compute` marked as computing what the task calling this computes: for a
/// blocking factory moved to a thread of its own, so that a `remember` of its own key from
/// inside it is still an error rather than a wait for itself.
pub(crate) fn carry_computing<T>(compute: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let keys = COMPUTING.try_with(Vec::clone).unwrap_or_default();
    move || COMPUTING.sync_scope(keys, compute)
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
pub(crate) async fn wait(mut slot: Slot) -> Option<Handoff> {
    slot.wait_for(Option::is_some).await.ok()?.clone()
}
