//! The same loads driven by wrk (an independent load generator, Debian's `wrk`), so the figures
//! are what a user measures with their own tool: a Lua script per load, wrk's own counts and
//! latency percentiles, and the servers' CPU over the run.

use std::process::Command;
use std::time::Duration;

use crate::load::{Load, MachineTicks, MachineUse, Run};
use crate::support::cpu_time;

/// Threads wrk runs (it shares the machine's cores with the servers).
const WRK_THREADS: usize = 2;

/// The Lua script that makes wrk send `load`.
fn script(load: &Load) -> String {
    let common = |body: &str| {
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.body = [==[{body}]==]\n"
        )
    };
    match load {
        Load::Same { path, body } => format!("{}wrk.path = [==[{path}]==]\n", common(body)),
        Load::Spread {
            prefix,
            series,
            body,
        } => format!(
            "{}local counter = 0\n\
             function setup(thread) counter = counter + 1; thread:set(\"id\", counter) end\n\
             function init(args) math.randomseed(os.time() * 1000 + (id or 0)) end\n\
             function request() return wrk.format(nil, \"/predict/{prefix}\" .. math.random(0, {last})) end\n",
            common(body),
            last = series - 1
        ),
        Load::Sweep { .. } => panic!("a sweep is a setup step: the built-in generator runs it"),
    }
}

/// A wrk duration ("345.12us", "1.23ms", "2.00s") in ms.
fn duration_ms(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// Reads wrk's report: requests and seconds from "N requests in Xs", the 50% and 99% lines of
/// `--latency`, non-2xx answers and socket errors.
fn parse(report: &str, cpu: Duration, machine: MachineUse) -> Run {
    let mut run = Run {
        requests: 0,
        errors: 0,
        seconds: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        cpu,
        machine,
    };
    for line in report.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [count, "requests", "in", took, ..] => {
                run.requests = count.parse().unwrap_or(0);
                run.seconds = duration_ms(took.trim_end_matches(',')).unwrap_or(0.0) / 1000.0;
            }
            ["50%", value] => run.p50_ms = duration_ms(value).unwrap_or(0.0),
            ["99%", value] => run.p99_ms = duration_ms(value).unwrap_or(0.0),
            ["Non-2xx", "or", "3xx", "responses:", n] => run.errors += n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                run.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    assert!(run.requests > 0, "wrk sent nothing:\n{report}");
    run
}

/// wrk with `connections` connections to `port` sending `load` for `seconds`, with the CPU the
/// processes `pids` used meanwhile.
pub async fn drive(connections: usize, seconds: u64, port: u16, pids: &[u32], load: Load) -> Run {
    let dir = tempfile::tempdir().expect("a temp dir");
    let script_path = dir.path().join("load.lua");
    std::fs::write(&script_path, script(&load)).expect("the wrk script");
    let pids = pids.to_vec();
    tokio::task::spawn_blocking(move || {
        let cpu_of = || -> Duration { pids.iter().map(|pid| cpu_time(&pid.to_string())).sum() };
        let cpu = cpu_of();
        let machine = MachineTicks::now();
        let output = Command::new("wrk")
            .arg(format!("-t{}", WRK_THREADS.min(connections)))
            .arg(format!("-c{connections}"))
            .arg(format!("-d{seconds}s"))
            .arg("--latency")
            .arg("-s")
            .arg(&script_path)
            .arg(format!("http://127.0.0.1:{port}"))
            .output()
            .expect("wrk (apt-get install wrk; or --generator builtin)");
        let cpu = cpu_of().saturating_sub(cpu);
        let machine = machine.since();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "wrk failed: {report}");
        parse(&report, cpu, machine)
    })
    .await
    .expect("the wrk run")
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_wrk_report() {
        let report = "Running 5s test @ http://127.0.0.1:1\n  2 threads and 50 connections\n\
            Latency Distribution\n     50%  345.00us\n     75%  1.00ms\n     99%    2.50ms\n\
            493210 requests in 5.00s, 80.00MB read\n  Non-2xx or 3xx responses: 3\n\
            Socket errors: connect 0, read 1, write 0, timeout 2\nRequests/sec:  98642.00\n";
        let run = super::parse(report, std::time::Duration::ZERO, Default::default());
        assert_eq!((run.requests, run.errors), (493_210, 6));
        assert!((run.seconds - 5.0).abs() < 1e-9);
        assert!((run.p50_ms - 0.345).abs() < 1e-9 && (run.p99_ms - 2.5).abs() < 1e-9);
    }
}
