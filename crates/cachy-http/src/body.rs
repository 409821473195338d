//! The body of every response the layer returns, and reading a handler's body within a
//! limit without losing it when it is over.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;

/// An error of a handler's body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The body of a response from [`ResponseCache`](crate::ResponseCache): one the cache kept,
/// or the handler's own, streamed through.
pub struct CacheBody(UnsyncBoxBody<Bytes, BoxError>);

impl CacheBody {
    pub(crate) fn full(bytes: Bytes) -> Self {
        CacheBody::new(http_body_util::Full::new(bytes))
    }

    pub(crate) fn empty() -> Self {
        CacheBody::new(http_body_util::Empty::new())
    }

    /// A body that fails with `error` at once: a handler's body that failed while read.
    pub(crate) fn failed(error: BoxError) -> Self {
        CacheBody::new(Failing(Some(error)))
    }

    pub(crate) fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        CacheBody(body.map_err(Into::into).boxed_unsync())
    }
}

impl std::fmt::Debug for CacheBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheBody").finish_non_exhaustive()
    }
}

impl Body for CacheBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// A body read whole, or, when it was longer than the limit (or had trailers), what was
/// read with the rest still to come.
pub(crate) enum Read {
    Whole(Bytes),
    Over(CacheBody),
    Failed(BoxError),
}

/// Read `body` up to `limit` bytes.
pub(crate) async fn read<B>(body: B, limit: usize) -> Read
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let mut body = Box::pin(body);
    let mut whole = BytesMut::new();
    loop {
        match body.frame().await {
            None => return Read::Whole(whole.freeze()),
            Some(Err(e)) => return Read::Failed(e.into()),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if whole.len() + data.len() <= limit => whole.extend_from_slice(&data),
                Ok(data) => {
                    let frames = VecDeque::from([Frame::data(whole.freeze()), Frame::data(data)]);
                    return Read::Over(CacheBody::new(Prefixed { frames, rest: body }));
                }
                Err(frame) => {
                    let frames = VecDeque::from([Frame::data(whole.freeze()), frame]);
                    return Read::Over(CacheBody::new(Prefixed { frames, rest: body }));
                }
            },
        }
    }
}

/// Frames already read, then the rest of the body.
struct Prefixed<B> {
    frames: VecDeque<Frame<Bytes>>,
    rest: B,
}

impl<B> Body for Prefixed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(frame) = self.frames.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        Pin::new(&mut self.rest).poll_frame(cx)
    }
}

/// A body whose only frame is an error.
struct Failing(Option<BoxError>);

impl Body for Failing {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(self.0.take().map(Err))
    }
}
