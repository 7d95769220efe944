//! The gateway's HTTP clients for a distributed trainer and predictor, behind the same traits as
//! the in-process calls. Predictors keep a series' online state, so each series always goes to
//! the same predictor: `PREDICTOR_URL` lists the instances and a stable hash of the series id
//! picks one.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;

use anomaly_workers::detector::ModelSpec;
use anomaly_workers::domain::{Point, SeriesId, TrainingSet};
use anomaly_workers::predictor::{PredictError, Prediction, Scoring};
use anomaly_workers::trainer::{FitOutcome, TrainError, Training};

use super::internal::{FIT_PATH, Failure, FitRequest, PREDICT_PATH};

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
    client: reqwest::Client,
    urls: Vec<String>,
}

impl RemotePredictors {
    /// `urls` must not be empty (the configuration refuses an empty `PREDICTOR_URL`).
    pub fn new(urls: &[String]) -> Self {
        assert!(!urls.is_empty(), "at least one predictor URL");
        Self {
            client: client(),
            urls: urls.iter().map(|u| base(u)).collect(),
        }
    }

    /// The predictor that owns `series`.
    pub fn owner(&self, series: &SeriesId) -> &str {
        let index = stable_hash(series.as_str()) % self.urls.len() as u64;
        &self.urls[index as usize]
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
        let url = format!("{}{PREDICT_PATH}/{series}", self.owner(series));
        match call(&self.client, url, &point).await {
            Answer::Ok(prediction) => Ok(prediction),
            Answer::Failed(failure) => Err(failure.into_predict_error(series)),
            Answer::Unreachable(cause) => Err(PredictError::Unreachable(cause)),
        }
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
