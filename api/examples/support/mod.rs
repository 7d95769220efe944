//! What the benchmarks share: the product binary beside them, child processes that die with the
//! benchmark, free ports, a process's CPU time and memory.

use std::process::Child;
use std::time::Duration;

/// `target/release/anomaly` beside `target/release/examples/<benchmark>`.
pub fn default_binary() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("anomaly")))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "target/release/anomaly".into())
}

/// A child process, killed when the benchmark ends (a panic included).
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// CPU time (user + system) process `pid` (or `self`) has used, from /proc: utime and stime
/// are the 14th and 15th fields, in clock ticks of 10 ms.
pub fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (2nd field) may hold spaces: count from its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|t| t.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A process's thread count and resident memory (KiB), from /proc.
pub fn threads_and_rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("Threads:"), field("VmRSS:"))
}
