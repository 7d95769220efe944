//! The distributed scenarios' processes: a trainer, `predictors` predictors and a gateway that
//! calls them over HTTP, on the given PostgreSQL, Kafka and Redis (fresh topic and key prefixes
//! per deployment). The gateway is given no predictor URL: it routes each series to the
//! predictor whose group member holds its partition of `points`, as the predictors announce.
//!
//! With a CPU budget, each predictor runs in a cgroup (v1 `cpu` controller) of its own limited to
//! that many cores, so one predictor's throughput and two's can be compared as if each had its
//! own machine, on a machine that has two cores for everything.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Process, free_port};
use crate::wait_ready;

/// Where the distributed roles find their backends.
#[derive(Clone)]
pub struct Backends {
    pub binary: String,
    pub database: String,
    pub kafka: String,
    pub redis: String,
    /// Cores each predictor may use (None: no limit).
    pub predictor_cpus: Option<f64>,
    /// Settings every predictor gets besides the common ones (`NAME=VALUE`).
    pub predictor_env: Vec<(String, String)>,
    /// librdkafka's mock cluster, run by the benchmark, when `kafka` is its address.
    pub mock: Option<&'static MockCluster>,
}

pub type MockCluster =
    rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>;

/// Starts librdkafka's in-memory mock cluster (the Kafka protocol over TCP, no disk) for the
/// benchmark's lifetime: a broker whose acknowledgements take microseconds, to tell our costs
/// from a slow broker's.
pub fn mock_cluster() -> &'static MockCluster {
    Box::leak(Box::new(MockCluster::new(1).expect("the mock cluster")))
}

/// Partitions of `points` (the roles' default `KAFKA_PARTITIONS`).
const PARTITIONS: i32 = 3;

pub struct Roles {
    pub gateway_port: u16,
    /// From the gateway's start until it routed every partition, each predictor holding some.
    pub settled_in: Duration,
    backends: Backends,
    run: String,
    gateway: Process,
    predictors: Vec<Predictor>,
    _trainer: Process,
}

/// A predictor process and the cgroup that bounds its CPU.
pub struct Predictor {
    pub port: u16,
    process: Process,
    _budget: Option<CpuBudget>,
}

impl Roles {
    pub async fn start(backends: &Backends, predictors: usize) -> Self {
        let run = format!("bench-{}-{predictors}-", std::process::id());
        if let Some(cluster) = backends.mock {
            for topic in anomaly_workers::events::Topic::ALL {
                cluster
                    .create_topic(&format!("{run}{}", topic.name()), PARTITIONS, 1)
                    .expect("a topic on the mock cluster");
            }
        }
        let trainer_port = free_port();
        let trainer = start_role(backends, &run, "trainer", trainer_port, &[]);
        wait_ready(trainer_port, "/readyz").await;
        let mut started = Vec::new();
        for _ in 0..predictors {
            started.push(start_predictor(backends, &run).await);
        }
        let gateway_port = free_port();
        let gateway = start_role(
            backends,
            &run,
            "gateway",
            gateway_port,
            &[("TRAINER_URL", format!("http://127.0.0.1:{trainer_port}"))],
        );
        let settling = Instant::now();
        wait_ready(gateway_port, "/readyz").await;
        let mut roles = Self {
            gateway_port,
            settled_in: Duration::ZERO,
            backends: backends.clone(),
            run,
            gateway,
            predictors: started,
            _trainer: trainer,
        };
        roles.settle(Duration::from_secs(90)).await;
        roles.settled_in = settling.elapsed();
        roles
    }

    pub fn predictors(&self) -> usize {
        self.predictors.len()
    }

    /// The processes on the predict path: the gateway and the predictors.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(&self.gateway)
            .chain(self.predictors.iter().map(|p| &p.process))
            .map(|p| p.0.id())
            .collect()
    }

    /// SIGKILLs the last predictor; returns its URL.
    pub fn kill_last_predictor(&mut self) -> String {
        let mut killed = self.predictors.pop().expect("a predictor to kill");
        let _ = killed.process.0.kill();
        let _ = killed.process.0.wait();
        format!("http://127.0.0.1:{}", killed.port)
    }

    /// Starts one more predictor (it joins the group: a rebalance).
    pub async fn add_predictor(&mut self) {
        let predictor = start_predictor(&self.backends, &self.run).await;
        self.predictors.push(predictor);
    }

    /// Partitions of `points` each predictor holds, as the gateway routes them.
    pub async fn partitions_held(&self) -> Vec<(String, f64)> {
        let url = format!("http://127.0.0.1:{}/metrics", self.gateway_port);
        let text = match reqwest::get(url).await {
            Ok(answer) => answer.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter_map(|l| l.strip_prefix("anomaly_predictor_partitions{predictor=\""))
            .filter_map(|l| {
                let (url, rest) = l.split_once('"')?;
                Some((url.to_owned(), rest.rsplit(' ').next()?.parse().ok()?))
            })
            .filter(|(_, held)| *held > 0.0)
            .collect()
    }

    /// Waits until the gateway routes every partition of `points` to the running predictors and
    /// each of them holds some; returns how long that took.
    pub async fn settle(&self, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let held = self.partitions_held().await;
            let running: Vec<String> = self
                .predictors
                .iter()
                .map(|p| format!("http://127.0.0.1:{}", p.port))
                .collect();
            let routed: f64 = held.iter().map(|(_, n)| n).sum();
            if held.len() == running.len()
                && held.iter().all(|(url, _)| running.contains(url))
                && routed == f64::from(PARTITIONS)
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "the {} predictors never all held partitions: {held:?}",
                running.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn start_role(
    backends: &Backends,
    run: &str,
    role: &str,
    port: u16,
    extra: &[(&str, String)],
) -> Process {
    let mut command = Command::new(&backends.binary);
    command
        .arg(role)
        .env("DATABASE_URL", &backends.database)
        .env("KAFKA_BROKERS", &backends.kafka)
        .env("KAFKA_TOPIC_PREFIX", run)
        .env("REDIS_URL", &backends.redis)
        .env("REDIS_PREFIX", run)
        .env("APP_HOST", "127.0.0.1")
        .env("APP_PORT", port.to_string())
        .env("HEARTBEAT_INTERVAL_SECS", "1")
        .stdout(Stdio::null());
    if backends.mock.is_some() {
        // The benchmark made the topics: the mock cluster answers no admin requests.
        command.env("KAFKA_CREATE_TOPICS", "false");
    }
    for (name, value) in extra {
        command.env(name, value);
    }
    Process(command.spawn().expect("starting a role"))
}

async fn start_predictor(backends: &Backends, run: &str) -> Predictor {
    let port = free_port();
    let extra: Vec<(&str, String)> = backends
        .predictor_env
        .iter()
        .map(|(name, value)| (name.as_str(), value.clone()))
        .collect();
    let process = start_role(backends, run, "predictor", port, &extra);
    let budget = backends
        .predictor_cpus
        .map(|cpus| CpuBudget::limit(process.0.id(), cpus));
    wait_ready(port, "/readyz").await;
    Predictor {
        port,
        process,
        _budget: budget,
    }
}

/// A cgroup (v1 `cpu` controller) of one process, limited to `cpus` cores; removed on drop.
struct CpuBudget {
    path: std::path::PathBuf,
}

impl CpuBudget {
    const ROOT: &'static str = "/sys/fs/cgroup/cpu";

    fn limit(pid: u32, cpus: f64) -> Self {
        let path = std::path::Path::new(Self::ROOT).join(format!("anomaly-bench-{pid}"));
        let write = |file: &str, value: String| {
            std::fs::write(path.join(file), value).unwrap_or_else(|e| {
                panic!(
                    "--predictor-cpus needs a writable cgroup v1 cpu controller at {}: {e}",
                    Self::ROOT
                )
            })
        };
        std::fs::create_dir_all(&path).unwrap_or_else(|e| {
            panic!(
                "--predictor-cpus needs a writable cgroup at {}: {e}",
                Self::ROOT
            )
        });
        // A short period: throttled threads wait at most a few ms, not most of 100 ms.
        let period = 10_000;
        write("cpu.cfs_period_us", period.to_string());
        write(
            "cpu.cfs_quota_us",
            ((cpus * f64::from(period)) as u64).to_string(),
        );
        // Every thread of the process (librdkafka starts its own).
        write("cgroup.procs", pid.to_string());
        Self { path }
    }
}

impl Drop for CpuBudget {
    fn drop(&mut self) {
        // The process is gone by now (killed before its budget): the empty group can go.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.path).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
