//! A WebSocket's TCP socket with two writers: the connection's own task (tungstenite, for every
//! protocol message) and the live feed's follower, which writes subscription results straight
//! to the socket (`Outbox::try_send`) with no task woken and no GraphQL run per subscriber.
//! Every write is whole frames under one lock, so frames never interleave; what the socket does
//! not take at once waits in the outbox (up to a budget for the follower's frames) and the
//! connection's task drains it.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

use axum::body::Bytes;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::OwnedSemaphorePermit;

use crate::listen::Counted;

/// The upgraded connection, as tungstenite reads and writes it.
pub enum SocketIo {
    /// A socket of this server's listener: writable from the follower too (`Outbox`).
    Direct {
        read: OwnedReadHalf,
        /// What hyper had read past the upgrade request.
        unread: Bytes,
        outbox: Arc<Outbox>,
        /// The connection's place under `HTTP_MAX_CONNECTIONS`.
        _slot: OwnedSemaphorePermit,
    },
    /// Any other (a server other than `listen::serve`): the connection's task writes alone.
    Plain(TokioIo<Upgraded>),
}

impl SocketIo {
    /// The upgraded connection, and its outbox when the follower may write to it.
    /// `budget`: bytes of the follower's frames the connection may have waiting (a client that
    /// stops reading costs at most this much; past it, its subscriptions miss results).
    pub async fn accept(
        on_upgrade: OnUpgrade,
        budget: usize,
    ) -> hyper::Result<(Self, Option<Arc<Outbox>>)> {
        let upgraded = on_upgrade.await?;
        Ok(match upgraded.downcast::<TokioIo<Counted>>() {
            Ok(parts) => {
                let (stream, not_served, slot) = parts.io.into_inner().into_parts();
                let (read, write) = stream.into_split();
                let outbox = Arc::new(Outbox::new(write, budget));
                // The leftover is a slice of hyper's read buffer: kept, it would keep all of it.
                // (hyper read the whole upgrade request, so what the listener read first to
                // tell the protocol apart has been served: `not_served` is empty.)
                let unread = [&not_served[..], &parts.read_buf[..]].concat().into();
                let io = Self::Direct {
                    read,
                    unread,
                    outbox: outbox.clone(),
                    _slot: slot,
                };
                (io, Some(outbox))
            }
            Err(upgraded) => (Self::Plain(TokioIo::new(upgraded)), None),
        })
    }
}

impl AsyncRead for SocketIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Direct { read, unread, .. } => {
                if !unread.is_empty() {
                    let n = unread.len().min(buf.remaining());
                    buf.put_slice(&unread.split_to(n));
                    if unread.is_empty() {
                        *unread = Bytes::new();
                    }
                    return Poll::Ready(Ok(()));
                }
                Pin::new(read).poll_read(cx, buf)
            }
            Self::Plain(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SocketIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Direct { outbox, .. } => Poll::Ready(outbox.write(buf).map(|()| buf.len())),
            Self::Plain(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Direct { outbox, .. } => outbox.poll_drain(cx, false),
            Self::Plain(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Direct { outbox, .. } => outbox.poll_shutdown(cx),
            Self::Plain(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

/// Something owed to a client once its connection has room again (a lagged notice).
pub trait Owed: Send + Sync {
    fn settle(&self);
}

/// What happened to frames offered with `Outbox::try_send`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Written, or queued behind what is waiting.
    Taken,
    /// Not taken: the connection already holds its budget of unsent bytes.
    Full,
    /// The connection is closing or gone: nothing more is sent.
    Closed,
}

/// The write side of a WebSocket's socket, shared by its writers.
pub struct Outbox {
    state: Mutex<OutboxState>,
    /// Bytes of the follower's frames that may wait.
    budget: usize,
}

struct OutboxState {
    socket: OwnedWriteHalf,
    /// Bytes not yet taken by the socket, from `sent` on.
    pending: Vec<u8>,
    sent: usize,
    /// The connection's task, waiting (in `poll_drain`) for bytes to drain.
    drainer: Option<Waker>,
    closed: bool,
    owed: Vec<Weak<dyn Owed>>,
}

impl OutboxState {
    fn waiting(&self) -> usize {
        self.pending.len() - self.sent
    }

    /// Writes `parts` (whole frames) after whatever is waiting; what the socket does not take
    /// now waits too, and the connection's task is woken to drain it.
    fn write(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let mut taken = 0;
        if self.waiting() == 0 {
            match write_now(&self.socket, parts) {
                Ok(n) => taken = n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => {
                    self.closed = true;
                    return Err(err);
                }
            }
        }
        let was_empty = self.waiting() == 0;
        for part in parts {
            let skip = taken.min(part.len());
            taken -= skip;
            self.pending.extend_from_slice(&part[skip..]);
        }
        if was_empty
            && self.waiting() > 0
            && let Some(drainer) = self.drainer.take()
        {
            drainer.wake();
        }
        Ok(())
    }

    /// Writes what is waiting until the socket takes no more (`Pending`, the task registered
    /// to be woken when it can) or nothing waits.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.waiting() > 0 {
            std::task::ready!(self.socket.as_ref().poll_write_ready(cx))?;
            match self.socket.try_write(&self.pending[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => {
                    self.closed = true;
                    return Poll::Ready(Err(err));
                }
            }
        }
        self.pending.clear();
        self.sent = 0;
        // A burst's buffer is not kept for good.
        if self.pending.capacity() > 64 * 1024 {
            self.pending = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl Outbox {
    pub(super) fn new(socket: OwnedWriteHalf, budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::new(OutboxState {
                socket,
                pending: Vec::new(),
                sent: 0,
                drainer: None,
                closed: false,
                owed: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, OutboxState> {
        // The state is bytes and flags: a panic elsewhere cannot leave it half-updated.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers whole frames from the follower: written now, queued, or refused when the
    /// connection holds its budget of unsent bytes (or is closing).
    pub fn try_send(&self, parts: &[&[u8]]) -> Sent {
        let mut state = self.lock();
        if state.closed {
            return Sent::Closed;
        }
        let size: usize = parts.iter().map(|p| p.len()).sum();
        if state.waiting() + size > self.budget {
            return Sent::Full;
        }
        match state.write(parts) {
            Ok(()) => Sent::Taken,
            Err(_) => Sent::Closed,
        }
    }

    /// Remembers `owed` until the connection has drained what waits.
    pub fn owe(&self, owed: Weak<dyn Owed>) {
        self.lock().owed.push(owed);
    }

    /// Stops the follower's writes: the connection is closing.
    pub fn close(&self) {
        self.lock().closed = true;
    }

    /// Waits until something waits to be sent and the socket has taken all of it, then settles
    /// what is owed. The connection's task polls this beside its other work.
    pub async fn drained(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_drain(cx, true)).await?;
        let owed = std::mem::take(&mut self.lock().owed);
        for owed in owed.iter().filter_map(Weak::upgrade) {
            owed.settle();
        }
        Ok(())
    }

    /// The connection's task's own writes: always taken (the task waits in `poll_flush` for
    /// them to drain, so a client that does not read holds back only itself).
    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        self.lock().write(&[bytes])
    }

    /// Drains what waits; with `only_after_work`, first waits until something does.
    fn poll_drain(&self, cx: &mut Context<'_>, only_after_work: bool) -> Poll<io::Result<()>> {
        let mut state = self.lock();
        if only_after_work && state.waiting() == 0 {
            state.drainer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        state.poll_drain(cx)
    }

    fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.lock();
        std::task::ready!(state.poll_drain(cx))?;
        state.closed = true;
        Pin::new(&mut state.socket).poll_shutdown(cx)
    }
}

/// Writes `parts` to `socket` as far as it takes them without waiting: a small message is
/// copied into one buffer (one plain `send`), a large one goes as it is (`sendmsg`).
fn write_now(socket: &OwnedWriteHalf, parts: &[&[u8]]) -> io::Result<usize> {
    const SMALL: usize = 2048;
    let size: usize = parts.iter().map(|p| p.len()).sum();
    if size <= SMALL {
        let mut buffer = [0u8; SMALL];
        let mut at = 0;
        for part in parts {
            buffer[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        return socket.try_write(&buffer[..size]);
    }
    let slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
    socket.try_write_vectored(&slices)
}

/// A server-to-client text frame's header for a payload of `len` bytes (unmasked), and how many
/// of its bytes are used.
pub fn text_frame_header(len: usize) -> ([u8; 10], usize) {
    let mut header = [0u8; 10];
    header[0] = 0x81; // FIN, text
    let used = if len < 126 {
        header[1] = len as u8;
        2
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        4
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (header, used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_follow_rfc_6455_lengths() {
        assert_eq!(text_frame_header(5).0[..2], [0x81, 5]);
        assert_eq!(text_frame_header(125).1, 2);
        let (header, used) = text_frame_header(300);
        assert_eq!(&header[..used], &[0x81, 126, 1, 44]);
        let (header, used) = text_frame_header(70_000);
        assert_eq!(used, 10);
        assert_eq!(&header[..used], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }
}
