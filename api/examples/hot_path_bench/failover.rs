//! Failover and rebalance, measured under load: clients predict over every series of a
//! distributed deployment of two predictors while one is SIGKILLed, and again while a new one
//! joins. Prints what the clients saw (answers that were not 200, the last of them, throughput
//! before and after) and how long the group took to hand the partitions over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::distributed::Roles;

/// Clients predicting at once.
const CLIENTS: usize = 16;

/// Every answer of a run: (ms since the run started, HTTP status or 0 for no answer).
type Timeline = Arc<Mutex<Vec<(u64, u16)>>>;

/// Clients predicting uniformly over `series` series named `{prefix}{n}` until `stop`.
fn clients(
    port: u16,
    prefix: &'static str,
    series: u64,
    timeline: Timeline,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..CLIENTS as u64)
        .map(|client| {
            let (timeline, stop) = (timeline.clone(), stop.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut n = client;
                while !stop.load(Ordering::Relaxed) {
                    let url = format!("http://127.0.0.1:{port}/predict/{prefix}{}", n % series);
                    let status = match http
                        .post(url)
                        .header("content-type", "application/json")
                        .body(crate::POINT)
                        .send()
                        .await
                    {
                        Ok(answer) => {
                            let status = answer.status().as_u16();
                            let _ = answer.bytes().await;
                            status
                        }
                        Err(_) => 0,
                    };
                    timeline
                        .lock()
                        .await
                        .push((started.elapsed().as_millis() as u64, status));
                    n += CLIENTS as u64 * 7 + 1;
                }
            })
        })
        .collect()
}

/// Answers per second in `[from, to)` ms, and how many were not 200.
async fn window(timeline: &Timeline, from: u64, to: u64) -> (f64, usize) {
    let timeline = timeline.lock().await;
    let inside: Vec<_> = timeline
        .iter()
        .filter(|(at, _)| (from..to).contains(at))
        .collect();
    let failed = inside.iter().filter(|(_, status)| *status != 200).count();
    (inside.len() as f64 * 1000.0 / (to - from) as f64, failed)
}

/// What the clients saw after `event_ms`: non-200 answers by status, and the last one's time.
async fn failures_after(timeline: &Timeline, event_ms: u64) -> (String, Option<u64>) {
    let timeline = timeline.lock().await;
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    let mut last = None;
    for &(at, status) in timeline.iter().filter(|(at, _)| *at >= event_ms) {
        if status != 200 {
            *by_status.entry(status).or_default() += 1;
            last = Some(at - event_ms);
        }
    }
    let text = if by_status.is_empty() {
        "none".to_owned()
    } else {
        by_status
            .iter()
            .map(|(status, n)| {
                format!(
                    "{n} × {}",
                    if *status == 0 {
                        "no answer".to_owned()
                    } else {
                        status.to_string()
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    (text, last)
}

/// SIGKILLs the last predictor of `roles` under load, then starts a new one, and prints what
/// each cost.
pub async fn measure(roles: &mut Roles, prefix: &'static str, series: u64) {
    const STEADY: Duration = Duration::from_secs(5);
    let timeline = Timeline::default();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let ms = || started.elapsed().as_millis() as u64;
    let load = clients(
        roles.gateway_port,
        prefix,
        series,
        timeline.clone(),
        stop.clone(),
        started,
    );
    tokio::time::sleep(STEADY).await;

    let killed_ms = ms();
    let killed = roles.kill_last_predictor();
    let handed_over = roles.settle(Duration::from_secs(120)).await;
    tokio::time::sleep(STEADY).await;
    let (before, _) = window(&timeline, killed_ms - 4_000, killed_ms).await;
    let (after, _) = window(&timeline, ms() - 4_000, ms()).await;
    let (failures, last) = failures_after(&timeline, killed_ms).await;
    println!(
        "failover: SIGKILL of {killed} under {CLIENTS} clients over {series} series: \
         answers that were not 200 from then on: {failures}; the last {}; \
         the survivor held every partition {:.1} s after the kill; \
         {before:.0} predicts/s before, {after:.0}/s after",
        last.map_or("—".to_owned(), |ms| format!(
            "{:.2} s after the kill",
            ms as f64 / 1000.0
        )),
        handed_over.as_secs_f64(),
    );

    let joined_ms = ms();
    roles.add_predictor().await;
    let rebalanced = roles.settle(Duration::from_secs(120)).await;
    let settled_ms = ms();
    tokio::time::sleep(STEADY).await;
    let (before, _) = window(&timeline, joined_ms - 4_000, joined_ms).await;
    let (during, _) = window(&timeline, joined_ms, settled_ms.max(joined_ms + 1)).await;
    let (after, _) = window(&timeline, ms() - 4_000, ms()).await;
    let (failures, last) = failures_after(&timeline, joined_ms).await;
    println!(
        "rebalance: a predictor joined under load: it held partitions {:.1} s after it started \
         (started to ready included); answers that were not 200 from its start on: {failures}; \
         the last {}; {before:.0} predicts/s before, {during:.0}/s while the group rebalanced, \
         {after:.0}/s after",
        (settled_ms - joined_ms) as f64 / 1000.0,
        last.map_or("—".to_owned(), |ms| format!(
            "{:.2} s after its start",
            ms as f64 / 1000.0
        )),
    );
    let _ = rebalanced;
    stop.store(true, Ordering::Relaxed);
    for client in load {
        let _ = client.await;
    }
}
