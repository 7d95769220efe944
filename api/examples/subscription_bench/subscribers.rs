//! The benchmark's subscribers: N raw `graphql-transport-ws` clients on one thread of their own.
//! They share the machine with the gateway, so each costs as little as a WebSocket client can: a
//! task on a single-threaded runtime, the handshake and frames written by hand, and a received
//! result read for its `timestamp` only (no JSON parse). Each records when every alert arrived.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

/// Handshakes in flight at once.
const CONNECTING_AT_ONCE: usize = 200;

/// The subscribers, running on their own thread until `stop`.
pub struct Subscribers {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<Vec<(i64, Instant)>>,
}

impl Subscribers {
    /// Opens `count` subscribers running `query`; each adds one to `live` at its first result.
    pub fn start(addr: SocketAddr, query: &str, count: usize, live: Arc<AtomicUsize>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let mut greeting = frame(0x1, br#"{"type":"connection_init"}"#);
        let subscribe =
            serde_json::json!({ "id": "1", "type": "subscribe", "payload": { "query": query } });
        greeting.extend(frame(0x1, subscribe.to_string().as_bytes()));
        let greeting: Arc<[u8]> = greeting.into();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
                let mut tasks = Vec::with_capacity(count);
                for _ in 0..count {
                    let permit = gate.clone().acquire_owned().await.expect("gate");
                    let (greeting, live, stopped) =
                        (greeting.clone(), live.clone(), stopped.clone());
                    tasks.push(tokio::spawn(async move {
                        let stream = connect(addr, &greeting).await;
                        drop(permit);
                        receive(stream, live, stopped).await
                    }));
                }
                let mut received = Vec::new();
                for task in tasks {
                    received.extend(task.await.expect("a subscriber"));
                }
                received
            })
        });
        Self { stop, thread }
    }

    /// Stops every subscriber and returns every `(alert timestamp, arrival)` they recorded.
    pub fn stop(self) -> Vec<(i64, Instant)> {
        let _ = self.stop.send(true);
        self.thread.join().expect("the subscribers' thread")
    }
}

/// Opens a WebSocket (`graphql-transport-ws`) and sends `greeting` (init and subscribe).
async fn connect(addr: SocketAddr, greeting: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let request = format!(
        "GET /graphql/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let byte = stream.read_u8().await.expect("the upgrade answer");
        head.push(byte);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "upgrade refused: {}",
        String::from_utf8_lossy(&head)
    );
    stream.write_all(greeting).await.expect("subscribe");
    stream
}

/// Reads frames until `stop` or the connection ends, recording each alert's arrival.
async fn receive(
    mut stream: TcpStream,
    live: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> Vec<(i64, Instant)> {
    let mut received = Vec::new();
    let mut buffer: Vec<u8> = Vec::with_capacity(512);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            read = stream.read_buf(&mut buffer) => {
                if !matches!(read, Ok(n) if n > 0) {
                    break;
                }
            }
        }
        let at = Instant::now();
        let mut replies = Vec::new();
        let mut used = 0;
        while let Some((opcode, payload, length)) = next_frame(&buffer[used..]) {
            match opcode {
                0x1 if payload.starts_with(br#"{"type":"ping""#) => {
                    replies.extend(frame(0x1, br#"{"type":"pong"}"#));
                }
                0x1 => {
                    if let Some(ts) = timestamp_in(payload) {
                        if received.is_empty() {
                            live.fetch_add(1, Ordering::Relaxed);
                        }
                        received.push((ts, at));
                    }
                }
                0x9 => replies.extend(frame(0xA, payload)),
                0x8 => return received,
                _ => {}
            }
            used += length;
        }
        buffer.drain(..used);
        if !replies.is_empty() && stream.write_all(&replies).await.is_err() {
            break;
        }
    }
    received
}

/// A client frame (masked, as clients must; the zero key leaves the payload as it is).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    out.extend([0, 0, 0, 0]);
    out.extend_from_slice(payload);
    out
}

/// The first whole server frame in `bytes`: its opcode, payload and length in bytes.
fn next_frame(bytes: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (&first, &second) = (bytes.first()?, bytes.get(1)?);
    let (length, header) = match second & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let payload = bytes.get(header..header + length)?;
    Some((first & 0x0f, payload, header + length))
}

/// The number after `"timestamp":` in a subscription result.
fn timestamp_in(text: &[u8]) -> Option<i64> {
    let key = br#""timestamp":"#;
    let start = text.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = text[start..]
        .iter()
        .take_while(|c| c.is_ascii_digit() || **c == b'-')
        .count();
    std::str::from_utf8(&text[start..start + digits])
        .ok()?
        .parse()
        .ok()
}
