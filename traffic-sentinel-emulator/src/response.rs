//! Response bodies: a whole text answer, or part of one and then a dropped
//! connection ([`Fault::DropMidBody`](crate::Fault::DropMidBody)).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// How long a [`Fault::DropMidBody`] answer waits after its partial body
/// before closing, so the partial body reaches the client first.
const DROP_PAUSE: Duration = Duration::from_millis(50);

pub(crate) fn text_response(status: StatusCode, mut text: String) -> Response<AnswerBody> {
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let mut response = Response::new(AnswerBody::full(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A response whose `Content-Length` announces `text` but whose connection
/// closes after the first half of it.
pub(crate) fn dropped_mid_body(status: StatusCode, text: String) -> Response<AnswerBody> {
    let announced = text.len().max(1);
    let sent = Bytes::from(text).slice(..announced / 2);
    let mut response = Response::new(AnswerBody::broken(sent));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    response
}

/// A response body: either all of it at once, or part of it followed by a
/// failure that makes the server close the connection.
pub(crate) struct AnswerBody {
    kind: BodyKind,
}

enum BodyKind {
    Full(Option<Bytes>),
    Broken {
        chunk: Option<Bytes>,
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
}

impl AnswerBody {
    fn full(bytes: Bytes) -> AnswerBody {
        AnswerBody {
            kind: BodyKind::Full(Some(bytes)),
        }
    }

    fn broken(chunk: Bytes) -> AnswerBody {
        AnswerBody {
            kind: BodyKind::Broken {
                chunk: Some(chunk),
                pause: None,
            },
        }
    }
}

/// The failure that ends a [`Fault::DropMidBody`] body.
#[derive(Debug)]
pub(crate) struct ConnectionDropped;

impl fmt::Display for ConnectionDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped mid-body by fault injection")
    }
}

impl std::error::Error for ConnectionDropped {}

impl Body for AnswerBody {
    type Data = Bytes;
    type Error = ConnectionDropped;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ConnectionDropped>>> {
        match &mut self.kind {
            BodyKind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            BodyKind::Broken { chunk, pause } => {
                if let Some(chunk) = chunk.take() {
                    return Poll::Ready(Some(Ok(Frame::data(chunk))));
                }
                let sleep = pause.get_or_insert_with(|| Box::pin(tokio::time::sleep(DROP_PAUSE)));
                ready!(sleep.as_mut().poll(cx));
                Poll::Ready(Some(Err(ConnectionDropped)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, BodyKind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            BodyKind::Full(Some(data)) => SizeHint::with_exact(data.len() as u64),
            BodyKind::Full(None) => SizeHint::with_exact(0),
            BodyKind::Broken { .. } => SizeHint::default(),
        }
    }
}
