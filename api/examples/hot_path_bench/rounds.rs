//! Interleaved rounds: in every round each scenario's run sits between two runs of the
//! reference, and its ratio is to their mean. The machine is shared and its speed drifts within
//! seconds; a reference on both sides moves with a drift either way, where one run before it
//! read a slowdown as the product's. Scenarios measured together form a group, and a group's
//! processes are the only ones up while it runs (the bench starts the next group's after).

use crate::load::{Load, Run, drive};
use crate::wrk;

/// A scenario: the load it sends, to which port, and whose CPU counts.
pub struct Scenario {
    pub name: String,
    pub port: u16,
    pub pids: Vec<u32>,
    pub load: Load,
}

/// One scenario's run in one round.
pub struct Measured {
    pub round: usize,
    pub scenario: String,
    pub rate: f64,
    /// To the mean of the reference runs either side of it.
    pub ratio: f64,
    pub cpu_us: f64,
}

/// How every run is driven, and the reference each is compared with.
pub struct Driver {
    pub connections: usize,
    pub seconds: u64,
    /// wrk (an independent generator) rather than the built-in one.
    pub wrk: bool,
    pub reference_port: u16,
    pub reference_pid: u32,
}

impl Driver {
    async fn run(&self, port: u16, pids: &[u32], load: Load) -> Run {
        if self.wrk {
            wrk::drive(self.connections, self.seconds, port, pids, load).await
        } else {
            drive(self.connections, self.seconds, port, pids, load).await
        }
    }

    async fn reference(&self, load: &Load) -> Run {
        self.run(self.reference_port, &[self.reference_pid], load.clone())
            .await
    }

    /// `rounds` rounds of `scenarios`, the reference sent `reference_load` (the same paths and
    /// body as theirs): reference, scenario 1, reference, scenario 2, ..., reference. Prints
    /// every run as it ends.
    pub async fn rounds(
        &self,
        rounds: usize,
        reference_load: &Load,
        scenarios: &[Scenario],
    ) -> Vec<Measured> {
        let mut measured = Vec::new();
        for round in 1..=rounds {
            let mut before = self.reference(reference_load).await;
            report(round, "reference axum handler", &before, None);
            for scenario in scenarios {
                let run = self
                    .run(scenario.port, &scenario.pids, scenario.load.clone())
                    .await;
                let after = self.reference(reference_load).await;
                let baseline = (before.rate() + after.rate()) / 2.0;
                report(round, &scenario.name, &run, Some(baseline));
                report(round, "reference axum handler", &after, None);
                measured.push(Measured {
                    round,
                    scenario: scenario.name.clone(),
                    rate: run.rate(),
                    ratio: run.rate() / baseline,
                    cpu_us: run.cpu_us_per_request(),
                });
                before = after;
            }
        }
        measured
    }
}

/// The table's header, printed once before the first round.
pub fn header(driver: &Driver, rounds: usize) {
    println!(
        "{} connections, {} s a run, {rounds} rounds, load by {}; each figure beside the mean of the reference runs either side of it",
        driver.connections,
        driver.seconds,
        if driver.wrk {
            "wrk (2 threads)"
        } else {
            "the built-in generator"
        }
    );
    println!(
        "| round | scenario | requests/s | ratio to reference | p50 | p99 | server CPU per request | machine: busy cores, steal | errors |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
}

/// One table row: a run and, for a scenario, its ratio to the reference's rate `baseline`.
fn report(round: usize, name: &str, run: &Run, baseline: Option<f64>) {
    let ratio = baseline.map_or(1.0, |b| run.rate() / b);
    println!(
        "| {round} | {name} | {:.0} | {ratio:.2} | {:.2} ms | {:.2} ms | {:.1} µs | {:.2}, {:.0}% | {} |",
        run.rate(),
        run.p50_ms,
        run.p99_ms,
        run.cpu_us_per_request(),
        run.machine.busy_cores,
        run.machine.steal * 100.0,
        run.errors
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 0 => (values[mid - 1] + values[mid]) / 2.0,
        _ => values[mid],
    }
}

/// Each scenario's median over the rounds, scenarios in the order they were first measured: the
/// figure the README gives, steadier from run to run than any one round. `bench/run.sh` reads
/// this table.
pub fn summarise(measured: &[Measured]) {
    println!(
        "\n| scenario | median ratio to reference | rounds' range | median server CPU per request |"
    );
    println!("|---|---|---|---|");
    let mut names: Vec<&String> = Vec::new();
    for m in measured {
        if !names.contains(&&m.scenario) {
            names.push(&m.scenario);
        }
    }
    for name in names {
        let mine: Vec<&Measured> = measured.iter().filter(|m| &m.scenario == name).collect();
        let ratio: Vec<f64> = mine.iter().map(|m| m.ratio).collect();
        let (low, high) = ratio
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), r| (l.min(*r), h.max(*r)));
        println!(
            "| {name} | {:.2} | {low:.2}–{high:.2} | {:.1} µs |",
            median(ratio),
            median(mine.iter().map(|m| m.cpu_us).collect())
        );
    }
}
