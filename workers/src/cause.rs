//! Why a port failed, kept as a real error chain: the backend's own error (a `DbErr`, a
//! `KafkaError`, a `RedisError`, a serde error) is the `source` of ours, with what we were doing
//! when it happened in front of it. Its text holds every level, so a log of it is whole; clients
//! never see it (the edge maps a port error to a status and a fixed text). Where there is no
//! error value to keep (a timeout we decided, a failure reported by another role over HTTP), the
//! cause is a message.

use std::fmt;
use std::sync::Arc;

type Inner = Arc<dyn std::error::Error + Send + Sync>;

/// The cause of a port error (cheap to clone: port errors are shared by a batch's callers).
#[derive(Clone)]
pub struct Cause(Inner);

impl Cause {
    /// `err`, as it came from the backend.
    pub fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(err))
    }

    /// `err`, behind what we were doing: "encoding an event: <err>".
    pub fn context(
        doing: impl Into<String>,
        err: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(Context {
            doing: doing.into(),
            source: Box::new(err),
        }))
    }

    /// A cause with no error value behind it.
    pub fn message(text: impl Into<String>) -> Self {
        Self(Arc::new(Message(text.into())))
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{doing}: {source}")]
struct Context {
    doing: String,
    source: Box<dyn std::error::Error + Send + Sync>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error;

    #[test]
    fn the_backend_error_stays_the_source_and_the_text_reads_as_before() {
        let io = std::io::Error::other("connection refused");
        let cause = Cause::context("reading topic metadata", io);
        assert_eq!(
            cause.to_string(),
            "reading topic metadata: connection refused"
        );
        let source = cause.source().expect("the backend's error");
        assert_eq!(source.to_string(), "connection refused");
        assert_eq!(Cause::message("no answer").to_string(), "no answer");
    }
}
