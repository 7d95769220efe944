//! The built-in load generator: keep-alive HTTP/1.1 connections that each send a request, read
//! its whole answer and send the next, for a fixed time or until a sweep over every series is done;
//! what a run measured (rate, latencies, the servers' CPU). `wrk.rs` drives the same loads with
//! wrk, an independent generator.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::cpu_time;

/// What each connection sends.
#[derive(Clone)]
pub enum Load {
    /// The same `POST path` with `body` over and over.
    Same { path: Arc<str>, body: Arc<str> },
    /// `POST /predict/{prefix}{n}` with `body`, `n` uniform in `0..series` (a generator per
    /// connection).
    Spread {
        prefix: &'static str,
        series: u64,
        body: Arc<str>,
    },
    /// Every series once, in turn (connections share the counter): the run ends when all are sent.
    Sweep {
        prefix: &'static str,
        series: u64,
        body: Arc<str>,
        next: Arc<AtomicU64>,
    },
}

impl Load {
    /// Writes the next request into `request`; false when a sweep is done.
    fn next(&self, request: &mut Vec<u8>, random: &mut u64) -> bool {
        let (prefix, n, body) = match self {
            Self::Same { path, body } => {
                request.clear();
                request.extend_from_slice(&post(path, body));
                return true;
            }
            Self::Spread {
                prefix,
                series,
                body,
            } => {
                // xorshift64*: cheap, and good enough to spread over the series.
                *random ^= *random >> 12;
                *random ^= *random << 25;
                *random ^= *random >> 27;
                let n = random.wrapping_mul(0x2545_f491_4f6c_dd1d) % series;
                (prefix, n, body)
            }
            Self::Sweep {
                prefix,
                series,
                body,
                next,
            } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= *series {
                    return false;
                }
                (prefix, n, body)
            }
        };
        request.clear();
        request.extend_from_slice(&post(&format!("/predict/{prefix}{n}"), body));
        true
    }
}

/// A POST of a JSON `body` to `path`.
pub fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// What one run measured.
pub struct Run {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu: Duration,
    /// What the whole machine did meanwhile.
    pub machine: MachineUse,
}

/// The machine's CPU over a run, from /proc/stat: how many cores were busy (every process,
/// the load generator's too) and the share of time the hypervisor gave to other guests (steal).
#[derive(Clone, Copy, Default)]
pub struct MachineUse {
    pub busy_cores: f64,
    pub steal: f64,
}

/// The machine's CPU counters (clock ticks: user, nice, system, idle, iowait, irq, softirq,
/// steal), read at one moment.
#[derive(Clone, Copy)]
pub struct MachineTicks {
    ticks: [u64; 8],
}

impl MachineTicks {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let mut ticks = [0; 8];
        let first = stat.lines().next().unwrap_or_default();
        for (slot, field) in ticks.iter_mut().zip(first.split_whitespace().skip(1)) {
            *slot = field.parse().unwrap_or(0);
        }
        Self { ticks }
    }

    /// What the machine did from `self` until now.
    pub fn since(self) -> MachineUse {
        let now = Self::now();
        let delta: Vec<f64> = now
            .ticks
            .iter()
            .zip(self.ticks)
            .map(|(after, before)| after.saturating_sub(before) as f64)
            .collect();
        let total: f64 = delta.iter().sum();
        if total == 0.0 {
            return MachineUse::default();
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let idle = delta[3] + delta[4];
        MachineUse {
            busy_cores: (total - idle - delta[7]) / total * cores,
            steal: delta[7] / total,
        }
    }
}

/// The `p` quantile of sorted latencies (µs), in ms.
fn percentile_ms(latencies_us: &[u32], p: f64) -> f64 {
    if latencies_us.is_empty() {
        return 0.0;
    }
    let at = ((latencies_us.len() - 1) as f64 * p).round() as usize;
    f64::from(latencies_us[at]) / 1000.0
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    pub fn cpu_us_per_request(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
}

/// Sends requests from `load` on one keep-alive connection until `stop` (or the load is done);
/// returns the latencies (µs) and how many answers were not 200.
async fn connection(port: u16, load: Load, seed: u64, stop: Arc<AtomicBool>) -> (Vec<u32>, u64) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let _ = stream.set_nodelay(true);
    let mut buffer = vec![0u8; 64 * 1024];
    let mut request = Vec::with_capacity(512);
    let mut random = seed | 1;
    let mut latencies = Vec::new();
    let mut errors = 0;
    while !stop.load(Ordering::Relaxed) && load.next(&mut request, &mut random) {
        let sent = Instant::now();
        stream.write_all(&request).await.expect("write");
        // Read one answer: headers, then Content-Length bytes.
        let mut filled = 0;
        let (head_end, length) = loop {
            let n = stream.read(&mut buffer[filled..]).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            filled += n;
            if let Some(end) = find(&buffer[..filled], b"\r\n\r\n") {
                let head = std::str::from_utf8(&buffer[..end]).unwrap_or_default();
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .expect("a content-length");
                if !head.starts_with("HTTP/1.1 200") {
                    errors += 1;
                }
                break (end + 4, length);
            }
        };
        while filled < head_end + length {
            let n = stream.read(&mut buffer[filled..]).await.expect("read");
            assert!(n > 0, "the server closed the connection");
            filled += n;
        }
        latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    (latencies, errors)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `connections` connections to `port` sending `load` for `seconds` (or until a sweep is done),
/// with the CPU the processes `pids` used meanwhile.
pub async fn drive(connections: usize, seconds: u64, port: u16, pids: &[u32], load: Load) -> Run {
    let stop = Arc::new(AtomicBool::new(false));
    let cpu_of = || -> Duration { pids.iter().map(|pid| cpu_time(&pid.to_string())).sum() };
    let cpu = cpu_of();
    let machine = MachineTicks::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..connections as u64 {
        let seed = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(n + 1);
        tasks.spawn(connection(port, load.clone(), seed, stop.clone()));
    }
    let deadline = tokio::time::sleep(Duration::from_secs(seconds));
    tokio::pin!(deadline);
    let mut latencies = Vec::new();
    let mut errors = 0;
    loop {
        tokio::select! {
            () = &mut deadline, if !stop.load(Ordering::Relaxed) => stop.store(true, Ordering::Relaxed),
            next = tasks.join_next() => match next {
                Some(outcome) => {
                    let (mut l, e) = outcome.expect("a connection");
                    latencies.append(&mut l);
                    errors += e;
                }
                None => break,
            },
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Run {
        requests: latencies.len() as u64,
        errors,
        seconds,
        p50_ms: percentile_ms(&latencies, 0.5),
        p99_ms: percentile_ms(&latencies, 0.99),
        cpu: cpu_of().saturating_sub(cpu),
        machine: machine.since(),
    }
}
