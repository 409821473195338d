//! The one place every repository operation is observed: its span, its counts, its hooks
//! and, with metrics on, its duration.

use std::future::Future;

use crate::observe::{Operation, Outcome, Record, metrics_enabled, reporting};

impl crate::Repository {
    /// Run `work`, the operation `operation` on `key`, observed: in a span, counted, handed
    /// to the hooks and, with metrics on, timed. `outcome` tells how a success ended; an
    /// error that is a cache [`Error`](crate::Error) is a failure of its kind, any other (a `remember`
    /// factory's own) a miss.
    pub(crate) async fn observed<T, E: 'static>(
        &self,
        operation: Operation,
        key: Option<&str>,
        outcome: impl FnOnce(&T) -> Outcome,
        work: impl Future<Output = std::result::Result<T, E>>,
    ) -> std::result::Result<T, E> {
        self.observed_each(operation, key, work, reporting(key, outcome))
            .await
    }

    /// [`observed`](Self::observed) for an operation on several keys: `report` records one
    /// outcome per key (or one for the whole call).
    pub(crate) async fn observed_each<T, E: 'static>(
        &self,
        operation: Operation,
        key: Option<&str>,
        work: impl Future<Output = std::result::Result<T, E>>,
        report: impl FnOnce(std::result::Result<&T, &E>, &mut Record<'_>),
    ) -> std::result::Result<T, E> {
        let observation = self.start_observation(operation, key);
        self.observe_until(observation, work, report).await
    }

    /// The rest of an observation begun with [`start_observation`](Self::start_observation):
    /// `work`, in its span, then its outcome.
    pub(crate) async fn observe_until<T, E>(
        &self,
        observation: Observation,
        work: impl Future<Output = std::result::Result<T, E>>,
        report: impl FnOnce(std::result::Result<&T, &E>, &mut Record<'_>),
    ) -> std::result::Result<T, E> {
        #[cfg(feature = "tracing")]
        let result = match &observation.span {
            Some(span) => tracing::Instrument::instrument(work, span.clone()).await,
            None => work.await,
        };
        #[cfg(not(feature = "tracing"))]
        let result = work.await;
        self.finish_observation(observation, result, report)
    }

    /// Begin observing `operation` on `key`: its span (if a subscriber wants one) and, with
    /// metrics on, its start time.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn start_observation(&self, operation: Operation, key: Option<&str>) -> Observation {
        Observation {
            operation,
            started: metrics_enabled().then(std::time::Instant::now),
            // Without a subscriber that wants `DEBUG` (one atomic load), no span is made at all.
            #[cfg(feature = "tracing")]
            span: tracing::level_enabled!(tracing::Level::DEBUG)
                .then(|| crate::observe::span(self.name(), operation, key)),
        }
    }

    /// Record the outcome of an observed operation, as `report` reads it from `result`.
    pub(crate) fn finish_observation<T, E>(
        &self,
        observation: Observation,
        result: std::result::Result<T, E>,
        report: impl FnOnce(std::result::Result<&T, &E>, &mut Record<'_>),
    ) -> std::result::Result<T, E> {
        let (name, operation) = (self.name(), observation.operation);
        #[cfg(feature = "tracing")]
        let mut last = None;
        report(result.as_ref(), &mut |key, outcome| {
            self.observer().record(name, operation, key, outcome);
            #[cfg(feature = "tracing")]
            {
                last = Some(outcome);
            }
        });
        #[cfg(feature = "tracing")]
        if let (Some(span), Some(outcome)) = (&observation.span, last) {
            span.record("outcome", outcome.name());
        }
        if let Some(started) = observation.started {
            let seconds = started.elapsed().as_secs_f64();
            self.observer().timed(name, operation, seconds);
        }
        result
    }
}

/// One operation being observed, between its start and its outcome.
pub(crate) struct Observation {
    operation: Operation,
    /// When it started, if metrics are on.
    started: Option<std::time::Instant>,
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
}

impl Observation {
    /// Run `work` inside this observation's span, if it has one.
    pub(crate) fn in_scope<R>(&self, work: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tracing")]
        if let Some(span) = &self.span {
            return span.in_scope(work);
        }
        work()
    }
}
