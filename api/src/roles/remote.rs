//! The gateway's HTTP clients for a distributed trainer and predictor, behind the same traits as
//! the in-process calls. Predictors keep a series' online state, so each series always goes to
//! the same predictor: `PREDICTOR_URL` lists the instances and a stable hash of the series id
//! picks one.
//!
//! Points for a predictor travel in batches (`PredictorLink`): while `BATCHES_IN_FLIGHT` calls
//! are out, the points that arrive wait and go together in the next call, up to
//! `MAX_PREDICT_BATCH`. An idle gateway sends each point at once; a loaded one pays one HTTP
//! exchange per batch instead of one per point. A call still out after `SLOW_CALL` (a point
//! whose model the predictor is loading from a slow database, say) gives its place up, so it
//! never holds back the points behind it.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use tokio::sync::{Semaphore, mpsc, oneshot};

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

/// What an internal call came back with: the answer, a failure by kind, or nothing usable.
enum Answer<T> {
    Ok(T),
    Failed(Failure),
    Unreachable(String),
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
            Answer::Unreachable(cause) => Err(TrainError::Unreachable(cause)),
        }
    }
}

pub struct RemotePredictors {
    links: Vec<PredictorLink>,
}

impl RemotePredictors {
    /// `urls` must not be empty (the configuration refuses an empty `PREDICTOR_URL`).
    pub fn new(urls: &[String]) -> Self {
        assert!(!urls.is_empty(), "at least one predictor URL");
        let client = client();
        Self {
            links: urls
                .iter()
                .map(|url| PredictorLink::new(client.clone(), base(url)))
                .collect(),
        }
    }

    /// The predictor that owns `series`.
    pub fn owner(&self, series: &SeriesId) -> &str {
        &self.link_of(series).url
    }

    fn link_of(&self, series: &SeriesId) -> &PredictorLink {
        let index = stable_hash(series.as_str()) % self.links.len() as u64;
        &self.links[index as usize]
    }
}

/// FNV-1a: the same on every machine and in every release, unlike std's hasher.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
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
        self.link_of(series).score(item).await
    }
}

/// Batch calls to one predictor that may be out at once; more points wait for the next call.
const BATCHES_IN_FLIGHT: usize = 4;
/// How long a call holds its place among the `BATCHES_IN_FLIGHT`.
const SLOW_CALL: Duration = Duration::from_millis(50);
/// Points waiting for a call to one predictor before callers wait to hand theirs over.
const WAITING_POINTS: usize = 4096;

type Reply = oneshot::Sender<Result<Prediction, PredictError>>;

/// The way to one predictor: a queue of points and the task that sends them in batches (started
/// on first use, on the caller's runtime).
struct PredictorLink {
    client: reqwest::Client,
    url: String,
    queue: OnceLock<mpsc::Sender<(BatchItem, Reply)>>,
}

impl PredictorLink {
    fn new(client: reqwest::Client, url: String) -> Self {
        Self {
            client,
            url,
            queue: OnceLock::new(),
        }
    }

    async fn score(&self, item: BatchItem) -> Result<Prediction, PredictError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(WAITING_POINTS);
            let url = format!("{}{PREDICT_BATCH_PATH}", self.url);
            tokio::spawn(send_batches(self.client.clone(), url, receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let gone = || PredictError::Unreachable(format!("{}: the batch sender stopped", self.url));
        queue.send((item, reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Takes points off `queue` in batches, each as one call, at most `BATCHES_IN_FLIGHT` at once.
async fn send_batches(
    client: reqwest::Client,
    url: String,
    mut queue: mpsc::Receiver<(BatchItem, Reply)>,
) {
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
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let send = send_batch(&client, url, batch);
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
async fn send_batch(client: &reqwest::Client, url: String, batch: Vec<(BatchItem, Reply)>) {
    let (items, replies): (Vec<BatchItem>, Vec<Reply>) = batch.into_iter().unzip();
    let answers = match call::<Vec<BatchAnswer>>(client, url.clone(), &items).await {
        Answer::Ok(answers) if answers.len() == items.len() => answers,
        Answer::Ok(answers) => {
            let cause = format!("{url}: {} answers to {} points", answers.len(), items.len());
            return fail_all(replies, &cause);
        }
        Answer::Failed(failure) => {
            return fail_all(replies, &format!("{url}: {}", failure.message));
        }
        Answer::Unreachable(cause) => return fail_all(replies, &cause),
    };
    for ((item, reply), answer) in items.into_iter().zip(replies).zip(answers) {
        let result = match answer {
            BatchAnswer::Scored(prediction) => Ok(prediction),
            BatchAnswer::Failed(failure) => Err(failure.into_predict_error(&item.series_id)),
        };
        let _ = reply.send(result);
    }
}

fn fail_all(replies: Vec<Reply>, cause: &str) {
    for reply in replies {
        let _ = reply.send(Err(PredictError::Unreachable(cause.to_owned())));
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
            let owner = predictors.owner(&series).to_owned();
            assert_eq!(predictors.owner(&series), owner);
            assert!(!owner.ends_with('/'));
            used.insert(owner);
        }
        assert_eq!(used.len(), 3);
    }
}
