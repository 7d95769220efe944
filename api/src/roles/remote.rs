//! The gateway's HTTP clients for a distributed trainer and predictor, behind the same traits as
//! the in-process calls. Predictors keep a series' online state, so a series goes to the same
//! predictor as long as that one is up: `PREDICTOR_URL` lists the instances, and rendezvous
//! hashing (the highest `hash(series, predictor)` wins) ranks them per series. A predictor that
//! refuses connections (it died, or is restarting) is left alone for a while (1 s, doubling up to
//! 30 s while it keeps refusing); its series go to the next predictor of their ranking, which loads
//! each from its last checkpoint, and come back once it answers again. A point whose call could
//! not even be connected was never scored, so it is sent to the next predictor at once. Only the
//! dead predictor's series move; adding a predictor moves only the series it now ranks first for.
//!
//! Points for a predictor travel in batches (`PredictorLink`): while `BATCHES_IN_FLIGHT` calls
//! are out, the points that arrive wait and go together in the next call, up to
//! `MAX_PREDICT_BATCH`. An idle gateway sends each point at once; a loaded one pays one HTTP
//! exchange per batch instead of one per point. A call still out after `SLOW_CALL` (a point
//! whose model the predictor is loading from a slow database, say) gives its place up, so it
//! never holds back the points behind it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use reqwest::StatusCode;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use anomaly_workers::bus::{BusError, Subscription};
use anomaly_workers::cause::Cause;
use anomaly_workers::events::{Event, Heartbeat, Serving};
use anomaly_workers::partitioner::partition_of;

use anomaly_workers::detector::ModelSpec;
use anomaly_workers::domain::{Point, SeriesId, TrainingSet};
use anomaly_workers::predictor::{PredictError, Prediction, Scoring};
use anomaly_workers::trainer::{FitOutcome, TrainError, Training};

use super::internal::{
    BatchAnswer, BatchItem, FIT_PATH, Failure, FitRequest, MAX_PREDICT_BATCH, PREDICT_BATCH_PATH,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("an HTTP client without TLS always builds")
}

/// What an internal call came back with: the answer, a failure by kind, nothing usable, or no
/// connection at all (the request never reached the role).
enum Answer<T> {
    Ok(T),
    Failed(Failure),
    Unreachable(String),
    Refused(String),
}

async fn call<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: String,
    body: &impl serde::Serialize,
) -> Answer<T> {
    let request = client
        .post(&url)
        .headers(crate::telemetry::trace_headers())
        .json(body);
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) if err.is_connect() => return Answer::Refused(format!("{url}: {err}")),
        Err(err) => return Answer::Unreachable(format!("{url}: {err}")),
    };
    let status = response.status();
    if status == StatusCode::OK {
        return match response.json::<T>().await {
            Ok(answer) => Answer::Ok(answer),
            Err(err) => Answer::Unreachable(format!("{url}: unreadable answer: {err}")),
        };
    }
    match response.json::<Failure>().await {
        Ok(failure) => Answer::Failed(failure),
        Err(_) => Answer::Unreachable(format!("{url} answered {status}")),
    }
}

fn base(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

pub struct RemoteTrainer {
    client: reqwest::Client,
    url: String,
}

impl RemoteTrainer {
    pub fn new(url: &str) -> Self {
        Self {
            client: client(),
            url: base(url),
        }
    }
}

#[async_trait]
impl Training for RemoteTrainer {
    async fn fit(
        &self,
        series: SeriesId,
        training: TrainingSet,
        spec: ModelSpec,
    ) -> Result<FitOutcome, TrainError> {
        let url = format!("{}{FIT_PATH}/{series}", self.url);
        let request = FitRequest {
            points: training.into_points(),
            spec,
        };
        match call(&self.client, url, &request).await {
            Answer::Ok(outcome) => Ok(outcome),
            Answer::Failed(failure) => Err(failure.into_train_error()),
            Answer::Unreachable(cause) | Answer::Refused(cause) => {
                Err(TrainError::Unreachable(Cause::message(cause)))
            }
        }
    }
}

/// The predictors as the gateway knows them: the links it calls (`PREDICTOR_URL`, and every
/// predictor that announced itself) and, from the predictors' heartbeats, which one holds each
/// partition of `points`: the owner of a series is the holder of its partition.
pub struct RemotePredictors {
    client: reqwest::Client,
    routes: RwLock<Arc<Routes>>,
    /// The newest claim of each predictor (by URL) and when it arrived (gateway clock, ms).
    claims: Mutex<HashMap<String, (Serving, u64)>>,
    /// How long a claim holds without a heartbeat renewing it.
    claim_ttl: Duration,
}

/// What a predict reads: replaced whole when a claim arrives or expires.
#[derive(Default)]
struct Routes {
    links: Vec<Arc<PredictorLink>>,
    /// The link holding each partition of `points` (index into `links`); empty while no
    /// predictor has claimed any.
    owners: Vec<Option<usize>>,
}

/// Predictors a gateway keeps links to at most (each announced one adds one).
const MAX_LINKS: usize = 1024;
/// Partitions of `points` a claim may describe at most.
const MAX_PARTITIONS: i32 = 100_000;
/// How long a claim holds by default: three heartbeats at the default interval.
const DEFAULT_CLAIM_TTL: Duration = Duration::from_secs(15);

impl RemotePredictors {
    /// A gateway calling the predictors at `urls` (more may announce themselves).
    pub fn new(urls: &[String]) -> Self {
        Self::with_claim_ttl(urls, DEFAULT_CLAIM_TTL)
    }

    /// As `new`, a claim holding `claim_ttl` without a heartbeat (three heartbeat intervals).
    pub fn with_claim_ttl(urls: &[String], claim_ttl: Duration) -> Self {
        let client = client();
        let mut links: Vec<Arc<PredictorLink>> = Vec::new();
        for url in urls {
            let url = base(url);
            if !links.iter().any(|l| l.url == url) {
                links.push(Arc::new(PredictorLink::new(client.clone(), url)));
            }
        }
        Self {
            client,
            routes: RwLock::new(Arc::new(Routes {
                links,
                owners: Vec::new(),
            })),
            claims: Mutex::default(),
            claim_ttl,
        }
    }

    fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The predictor that owns `series` now: the holder of its partition if it is up, else the
    /// first of its rendezvous ranking that is up. None while no predictor is known.
    pub fn owner(&self, series: &SeriesId) -> Option<String> {
        let routes = self.routes();
        routes
            .first_choice(series, now_ms())
            .map(|link| link.url.clone())
    }

    /// Takes a predictor's claim (from its heartbeat) into the routes.
    pub fn learn(&self, serving: &Serving) {
        let url = base(&serving.url);
        if !(url.starts_with("http://") || url.starts_with("https://"))
            || !(0..=MAX_PARTITIONS).contains(&serving.partition_count)
        {
            tracing::warn!(url = %serving.url, "ignoring a predictor's claim: bad URL or partition count");
            return;
        }
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        let unchanged = claims.get(&url).is_some_and(|(known, _)| {
            known.partitions == serving.partitions
                && known.partition_count == serving.partition_count
        });
        claims.insert(url, (serving.clone(), now_ms()));
        if !unchanged {
            self.rebuild(&mut claims);
        }
    }

    /// Drops the claims no heartbeat renewed within the claim TTL.
    pub fn forget_stale(&self) {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = now_ms().saturating_sub(self.claim_ttl.as_millis() as u64);
        let before = claims.len();
        claims.retain(|_, (_, at)| *at >= oldest);
        if claims.len() != before {
            self.rebuild(&mut claims);
        }
    }

    /// New routes from the claims: every link kept (with its queue and health), claimed URLs
    /// added, and each partition given to its newest claimant.
    fn rebuild(&self, claims: &mut HashMap<String, (Serving, u64)>) {
        let old = self.routes();
        let mut links = old.links.clone();
        let mut ordered: Vec<(&String, &(Serving, u64))> = claims.iter().collect();
        ordered.sort_by_key(|(url, (_, at))| (*at, (*url).clone()));
        let count = ordered
            .iter()
            .map(|(_, (serving, _))| serving.partition_count)
            .max()
            .unwrap_or(0);
        let mut owners = vec![None; usize::try_from(count).unwrap_or(0)];
        for (url, (serving, _)) in ordered {
            let at = match links.iter().position(|l| &l.url == url) {
                Some(at) => at,
                None if links.len() < MAX_LINKS => {
                    links.push(Arc::new(PredictorLink::new(
                        self.client.clone(),
                        url.clone(),
                    )));
                    links.len() - 1
                }
                None => continue,
            };
            if serving.partition_count != count {
                continue; // a claim on a topic of another size: stale, about to be renewed
            }
            for &partition in &serving.partitions {
                if let Some(slot) = usize::try_from(partition)
                    .ok()
                    .and_then(|p| owners.get_mut(p))
                {
                    *slot = Some(at);
                }
            }
        }
        for (at, link) in links.iter().enumerate() {
            let held = owners.iter().filter(|o| **o == Some(at)).count();
            ::metrics::gauge!("anomaly_predictor_partitions", "predictor" => link.url.clone())
                .set(held as f64);
        }
        *self.routes.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(Routes { links, owners });
    }

    /// Keeps the routes current from the predictors' heartbeats until `stop` fires.
    pub async fn follow_claims(
        self: Arc<Self>,
        mut heartbeats: Box<dyn Subscription>,
        stop: CancellationToken,
    ) {
        let mut expiry = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = expiry.tick() => self.forget_stale(),
                next = heartbeats.next() => match next {
                    Ok(Some(delivery)) => {
                        if let Event::Heartbeat(Heartbeat { serves: Some(serving), .. }) = &delivery.event {
                            self.learn(serving);
                        }
                    }
                    Ok(None) => return,
                    Err(BusError::Lagged(_)) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "reading predictors' heartbeats; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
        }
    }
}

impl Routes {
    /// The predictor `series` goes to first (found without allocating: this is on every predict):
    /// the holder of its partition if it is up, else the highest ranked that is up, else the
    /// highest ranked (it may be back).
    fn first_choice(&self, series: &SeriesId, now_ms: u64) -> Option<&Arc<PredictorLink>> {
        if !self.owners.is_empty() {
            let partition = partition_of(series.as_str(), self.owners.len() as i32);
            if let Some(link) = self.owners[partition as usize].map(|at| &self.links[at])
                && link.health.is_up(now_ms)
            {
                return Some(link);
            }
        }
        let weight = |link: &&Arc<PredictorLink>| link.weight(series);
        self.links
            .iter()
            .filter(|link| link.health.is_up(now_ms))
            .max_by_key(weight)
            .or_else(|| self.links.iter().max_by_key(weight))
    }

    /// Every predictor in the order `series` tries them (rendezvous hashing): those up first, in
    /// rank order, then those resting.
    fn call_order(&self, series: &SeriesId, now_ms: u64) -> Vec<&Arc<PredictorLink>> {
        let mut order: Vec<&Arc<PredictorLink>> = self.links.iter().collect();
        order.sort_by_key(|link| {
            (
                !link.health.is_up(now_ms),
                std::cmp::Reverse(link.weight(series)),
            )
        });
        order
    }
}

/// FNV-1a: the same on every machine and in every release, unlike std's hasher.
fn stable_hash(text: &str) -> u64 {
    fold_hash(0xcbf2_9ce4_8422_2325, text)
}

fn fold_hash(start: u64, text: &str) -> u64 {
    text.bytes().fold(start, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Spreads the bits of an FNV hash (the finaliser of SplitMix64), so that rendezvous weights of
/// similar names do not rank alike.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[async_trait]
impl Scoring for RemotePredictors {
    async fn predict(&self, series: &SeriesId, point: Point) -> Result<Prediction, PredictError> {
        let (traceparent, tracestate) = crate::telemetry::trace_context();
        let item = BatchItem {
            series_id: series.clone(),
            point,
            traceparent,
            tracestate,
        };
        let routes = self.routes();
        let Some(first) = routes.first_choice(series, now_ms()) else {
            return Err(PredictError::Unreachable(Cause::message(
                "no predictor is known yet: none is in PREDICTOR_URL and none has announced itself",
            )));
        };
        let mut refused = match first.score(item).await {
            Ok(answer) => return answer,
            Err(not_delivered) => not_delivered,
        };
        // Never connected, so never scored: the next predictors take it, in their order.
        for link in routes.call_order(series, now_ms()) {
            if Arc::ptr_eq(link, first) {
                continue;
            }
            refused = match link.score(refused.item).await {
                Ok(answer) => return answer,
                Err(not_delivered) => not_delivered,
            };
        }
        Err(PredictError::Unreachable(Cause::message(format!(
            "no predictor is reachable; last: {}",
            refused.cause
        ))))
    }
}

/// A point that never reached its predictor (the connection was refused), handed back.
struct NotDelivered {
    cause: String,
    item: BatchItem,
}

/// Whether a predictor is up, as its connections say: one that refused a connection rests (is
/// skipped by the series it owns) for a while that doubles while it keeps refusing.
#[derive(Default)]
struct Health {
    /// When it may be tried again, in ms since the Unix epoch; 0 while up.
    rest_until_ms: AtomicU64,
    /// How long its next rest lasts, in ms; 0 while up.
    next_rest_ms: AtomicU64,
}

/// A predictor's first rest after it refused a connection, and the longest.
const FIRST_REST: Duration = Duration::from_secs(1);
const LONGEST_REST: Duration = Duration::from_secs(30);

impl Health {
    fn is_up(&self, now_ms: u64) -> bool {
        self.rest_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    fn refused(&self) {
        let rest = self
            .next_rest_ms
            .load(Ordering::Relaxed)
            .max(FIRST_REST.as_millis() as u64);
        self.rest_until_ms.store(now_ms() + rest, Ordering::Relaxed);
        self.next_rest_ms.store(
            (rest * 2).min(LONGEST_REST.as_millis() as u64),
            Ordering::Relaxed,
        );
    }

    /// It answered: up again (written only when it was resting, to keep the hot path read-only).
    fn answered(&self) {
        if self.next_rest_ms.load(Ordering::Relaxed) != 0 {
            self.next_rest_ms.store(0, Ordering::Relaxed);
            self.rest_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

/// Batch calls to one predictor that may be out at once; more points wait for the next call.
const BATCHES_IN_FLIGHT: usize = 4;
/// How long a call holds its place among the `BATCHES_IN_FLIGHT`.
const SLOW_CALL: Duration = Duration::from_millis(50);
/// Points waiting for a call to one predictor before callers wait to hand theirs over.
const WAITING_POINTS: usize = 4096;

/// A point's answer, or that it never reached the predictor.
type Reply = oneshot::Sender<Result<Result<Prediction, PredictError>, NotDelivered>>;

/// The way to one predictor: a queue of points and the task that sends them in batches (started
/// on first use, on the caller's runtime).
struct PredictorLink {
    client: reqwest::Client,
    url: String,
    /// The hash of `url`, from which its rendezvous weight for each series is made.
    url_hash: u64,
    health: Arc<Health>,
    queue: OnceLock<mpsc::Sender<(BatchItem, Reply)>>,
}

impl PredictorLink {
    fn new(client: reqwest::Client, url: String) -> Self {
        Self {
            client,
            url_hash: stable_hash(&url),
            url,
            health: Arc::default(),
            queue: OnceLock::new(),
        }
    }

    /// Its rendezvous weight for `series`: the series goes to the predictor weighing most.
    fn weight(&self, series: &SeriesId) -> u64 {
        mix(fold_hash(self.url_hash, series.as_str()))
    }

    async fn score(
        &self,
        item: BatchItem,
    ) -> Result<Result<Prediction, PredictError>, NotDelivered> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(WAITING_POINTS);
            let url = format!("{}{PREDICT_BATCH_PATH}", self.url);
            let link = Link {
                client: self.client.clone(),
                url,
                health: self.health.clone(),
            };
            tokio::spawn(send_batches(link, receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let gone = || {
            Ok(Err(PredictError::Unreachable(Cause::message(format!(
                "{}: the batch sender stopped",
                self.url
            )))))
        };
        if queue.send((item, reply)).await.is_err() {
            return gone();
        }
        answer.await.unwrap_or_else(|_| gone())
    }
}

/// What a batch call needs of its predictor.
#[derive(Clone)]
struct Link {
    client: reqwest::Client,
    /// The batch route's URL.
    url: String,
    health: Arc<Health>,
}

/// Takes points off `queue` in batches, each as one call, at most `BATCHES_IN_FLIGHT` at once.
async fn send_batches(link: Link, mut queue: mpsc::Receiver<(BatchItem, Reply)>) {
    let calls = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        // Waiting for a free call first lets the points that arrive meanwhile join this batch.
        let Ok(call) = calls.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_PREDICT_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let link = link.clone();
        tokio::spawn(async move {
            let send = send_batch(&link, batch);
            tokio::pin!(send);
            tokio::select! {
                () = &mut send => return,
                () = tokio::time::sleep(SLOW_CALL) => drop(call),
            }
            send.await;
        });
    }
}

/// One batch call; every point gets its own answer, or the call's failure.
async fn send_batch(link: &Link, batch: Vec<(BatchItem, Reply)>) {
    let url = &link.url;
    let (items, replies): (Vec<BatchItem>, Vec<Reply>) = batch.into_iter().unzip();
    let answers = match call::<Vec<BatchAnswer>>(&link.client, url.clone(), &items).await {
        Answer::Ok(answers) if answers.len() == items.len() => answers,
        Answer::Ok(answers) => {
            let cause = format!("{url}: {} answers to {} points", answers.len(), items.len());
            return fail_all(replies, &cause);
        }
        Answer::Failed(failure) => {
            return fail_all(replies, &format!("{url}: {}", failure.message));
        }
        Answer::Unreachable(cause) => return fail_all(replies, &cause),
        Answer::Refused(cause) => {
            link.health.refused();
            tracing::warn!(predictor = %url, %cause, "a predictor refused a connection: its series go to the next one for now");
            for (item, reply) in items.into_iter().zip(replies) {
                let cause = cause.clone();
                let _ = reply.send(Err(NotDelivered { cause, item }));
            }
            return;
        }
    };
    link.health.answered();
    for ((item, reply), answer) in items.into_iter().zip(replies).zip(answers) {
        let result = match answer {
            BatchAnswer::Scored(prediction) => Ok(prediction),
            BatchAnswer::Failed(failure) => Err(failure.into_predict_error(&item.series_id)),
        };
        let _ = reply.send(Ok(result));
    }
}

fn fail_all(replies: Vec<Reply>, cause: &str) {
    for reply in replies {
        let _ = reply.send(Ok(Err(PredictError::Unreachable(Cause::message(cause)))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Fixed values: changing the hash would move every series to another predictor.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_series_always_goes_to_the_same_predictor_and_series_spread() {
        let urls: Vec<String> = (1..=3).map(|n| format!("http://p{n}:8000/")).collect();
        let predictors = RemotePredictors::new(&urls);
        let mut used = std::collections::HashSet::new();
        for n in 0..100 {
            let series = SeriesId::parse(&format!("sensor_{n:02}")).unwrap();
            let owner = predictors.owner(&series).unwrap();
            assert_eq!(predictors.owner(&series).unwrap(), owner);
            assert!(!owner.ends_with('/'));
            used.insert(owner);
        }
        assert_eq!(used.len(), 3);
    }

    /// Rendezvous hashing: a predictor that rests moves only its own series, to the others; a
    /// predictor added takes series only for itself.
    #[test]
    fn only_a_resting_predictors_series_move_and_they_come_back() {
        let urls: Vec<String> = (1..=3).map(|n| format!("http://p{n}:8002")).collect();
        let predictors = RemotePredictors::new(&urls);
        let series: Vec<SeriesId> = (0..300)
            .map(|n| SeriesId::parse(&format!("s{n}")).unwrap())
            .collect();
        let before: Vec<String> = series
            .iter()
            .map(|s| predictors.owner(s).unwrap())
            .collect();
        let share = before.iter().filter(|o| o.ends_with("p2:8002")).count();
        assert!((60..=140).contains(&share), "p2 owns {share} of 300");
        predictors.routes().links[1].health.refused();
        for (s, owner) in series.iter().zip(&before) {
            let now = predictors.owner(s).unwrap();
            if owner.ends_with("p2:8002") {
                assert!(!now.ends_with("p2:8002"), "{s} left the resting predictor");
            } else {
                assert_eq!(&now, owner, "{s} stayed where it was");
            }
        }
        predictors.routes().links[1].health.answered();
        let after: Vec<String> = series
            .iter()
            .map(|s| predictors.owner(s).unwrap())
            .collect();
        assert_eq!(after, before, "back once it answers");

        let more: Vec<String> = (1..=4).map(|n| format!("http://p{n}:8002")).collect();
        let grown = RemotePredictors::new(&more);
        for (s, owner) in series.iter().zip(&before) {
            let now = grown.owner(s).unwrap();
            assert!(
                &now == owner || now.ends_with("p4:8002"),
                "{s}: {owner} -> {now}"
            );
        }
    }

    fn serving(url: &str, partitions: &[i32]) -> Serving {
        Serving {
            url: url.into(),
            partitions: partitions.to_vec(),
            partition_count: 4,
        }
    }

    /// Ownership from the group: each series goes to the predictor claiming its partition
    /// (announced ones need no `PREDICTOR_URL`), the newest claim of a partition wins, a resting
    /// holder's series go by rendezvous meanwhile, and a claim not renewed expires.
    #[test]
    fn a_series_goes_to_the_predictor_holding_its_partition() {
        let predictors = RemotePredictors::with_claim_ttl(&[], Duration::from_millis(200));
        let series: Vec<SeriesId> = (0..100)
            .map(|n| SeriesId::parse(&format!("s{n}")).unwrap())
            .collect();
        assert_eq!(predictors.owner(&series[0]), None, "nobody known yet");
        predictors.learn(&serving("http://a:8002/", &[0, 1]));
        predictors.learn(&serving("http://b:8002", &[2, 3]));
        let holder = |s: &SeriesId| match partition_of(s.as_str(), 4) {
            0 | 1 => "http://a:8002",
            _ => "http://b:8002",
        };
        for s in &series {
            assert_eq!(predictors.owner(s).unwrap(), holder(s), "{s}");
        }
        // b takes partition 1 over (a rebalance): the newest claim wins.
        std::thread::sleep(Duration::from_millis(5));
        predictors.learn(&serving("http://b:8002", &[1, 2, 3]));
        for s in &series {
            let expected = if partition_of(s.as_str(), 4) == 0 {
                "http://a:8002"
            } else {
                "http://b:8002"
            };
            assert_eq!(predictors.owner(s).unwrap(), expected, "{s}");
        }
        // b stops answering: its series go to a until it is back.
        predictors.routes().links[1].health.refused();
        for s in &series {
            assert_eq!(predictors.owner(s).unwrap(), "http://a:8002");
        }
        predictors.routes().links[1].health.answered();
        // Claims that are not renewed expire; the links stay (rendezvous over both).
        std::thread::sleep(Duration::from_millis(250));
        predictors.forget_stale();
        assert!(predictors.routes().owners.is_empty());
        let spread: std::collections::HashSet<String> =
            series.iter().filter_map(|s| predictors.owner(s)).collect();
        assert_eq!(spread.len(), 2);
    }

    #[test]
    fn a_claim_with_a_bad_url_or_size_is_ignored() {
        let predictors = RemotePredictors::new(&[]);
        predictors.learn(&serving("ftp://a", &[0]));
        let mut huge = serving("http://a", &[0]);
        huge.partition_count = i32::MAX;
        predictors.learn(&huge);
        assert!(predictors.routes().links.is_empty());
    }

    #[test]
    fn a_predictor_that_keeps_refusing_rests_longer_up_to_a_limit() {
        let health = Health::default();
        let now = now_ms();
        assert!(health.is_up(now));
        health.refused();
        assert!(!health.is_up(now));
        assert!(health.is_up(now + 1_100));
        for _ in 0..10 {
            health.refused();
        }
        assert!(!health.is_up(now + 20_000));
        assert!(health.is_up(now + 31_000 + 1_000));
        health.answered();
        assert!(health.is_up(now));
    }
}
