//! The reference the benchmark measures the gateway against, in the same run on the same cores:
//! the least a server can do to hand one alert to N WebSocket subscribers. A process of its own
//! (the benchmark binary run with `--reference-server`; a descriptor per subscriber on each side
//! would not fit one process's limit) accepts the subscribers' upgrades (answering 101 without
//! checking anything) and, per alert, writes one ready-made `next` frame to every socket from two
//! threads: no GraphQL, no task per connection, no queue. What is left is the kernel's work (the
//! loopback `send`, which also runs the receiver's TCP path and wakes it, and the subscribers'
//! reads) and the pipe that tells it to send.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{ChildStdin, Command, Stdio};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;

use crate::support::Process;

pub const FLAG: &str = "--reference-server";

/// The reference broadcaster's process.
pub struct Reference {
    pub addr: SocketAddr,
    alerts: ChildStdin,
    _process: Process,
}

impl Reference {
    pub fn start() -> Self {
        let exe = std::env::current_exe().expect("the benchmark's path");
        let mut child = Command::new(exe)
            .arg(FLAG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the reference");
        let alerts = child.stdin.take().expect("its stdin");
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().expect("its stdout"))
            .read_line(&mut port)
            .expect("its port");
        let port: u16 = port.trim().parse().expect("a port");
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            alerts,
            _process: Process(child),
        }
    }

    /// Raises an alert; returns when it was raised (the reference sends as soon as it reads it).
    pub fn raise(&mut self, timestamp: i64) -> Instant {
        let at = Instant::now();
        writeln!(self.alerts, "{timestamp}").expect("the reference");
        at
    }
}

/// The reference process: prints its port, then broadcasts each timestamp read from stdin.
pub fn serve() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        // A backlog as deep as the subscribers connecting at once (std's 128 is not).
        let socket = TcpSocket::new_v4().expect("a socket");
        socket
            .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("a port");
        let listener: TcpListener = socket.listen(4096).expect("listening");
        println!("{}", listener.local_addr().expect("an address").port());
        let (accepted, mut subscribers) = mpsc::unbounded_channel::<TcpStream>();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let accepted = accepted.clone();
                tokio::spawn(async move {
                    if let Some(stream) = upgrade(stream).await {
                        let _ = accepted.send(stream);
                    }
                });
            }
        });
        let (raised, mut alerts) = mpsc::unbounded_channel::<i64>();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Some(timestamp) = line.ok().and_then(|l| l.trim().parse().ok()) else {
                    break;
                };
                if raised.send(timestamp).is_err() {
                    break;
                }
            }
        });
        let mut sockets: Vec<TcpStream> = Vec::new();
        while let Some(timestamp) = alerts.recv().await {
            while let Ok(stream) = subscribers.try_recv() {
                sockets.push(stream);
            }
            let frame = next_frame(timestamp);
            // Two threads, one per core (as many as the gateway's workers here), each writing to
            // half of the sockets; a frame this small always fits a socket's buffer.
            let (first, second) = sockets.split_at(sockets.len() / 2);
            std::thread::scope(|scope| {
                for half in [first, second] {
                    let frame = &frame;
                    scope.spawn(move || {
                        for socket in half {
                            let _ = socket.try_write(frame);
                        }
                    });
                }
            });
        }
    });
}

/// Reads the upgrade request and answers 101 (the benchmark's subscribers check nothing more).
async fn upgrade(mut stream: TcpStream) -> Option<TcpStream> {
    stream.set_nodelay(true).ok()?;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(stream.read_u8().await.ok()?);
    }
    stream
        .write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n",
        )
        .await
        .ok()?;
    Some(stream)
}

/// The gateway's `next` message for the benchmark's subscription, as one server frame.
fn next_frame(timestamp: i64) -> Vec<u8> {
    let text = format!(
        r#"{{"id":"1","type":"next","payload":{{"data":{{"anomalies":{{"timestamp":{timestamp}}}}}}}}}"#
    );
    let mut frame = vec![0x81, text.len() as u8];
    frame.extend_from_slice(text.as_bytes());
    frame
}
