//! `anomaly nab`: runs a detector over a NAB corpus exactly as production would see it. Each file
//! is fitted on its probationary prefix (15%, at most 750 rows), then every later row goes
//! through `LiveState::observe`, the predictor's own path (online learning and alert gate
//! included). Results are written in NAB's layout and scored with the Rust scorer.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{
    CorpusFile, NabError, ProfileScore, load_corpus, load_profiles, score_all, write_results,
};
use crate::detector::ModelSpec;
use crate::domain::Point;
use crate::live::score_series_to_state;

/// What a run measured.
#[derive(Debug, Clone)]
pub struct NabReport {
    pub files: usize,
    pub points: usize,
    pub elapsed: Duration,
    /// Files whose probationary prefix could not be fitted (constant values): scored all 0.
    pub unfitted: Vec<String>,
    /// Memory held by the detector of one series at the end of its file: mean and largest.
    pub state_bytes_mean: usize,
    pub state_bytes_max: usize,
    pub scores: Vec<(String, ProfileScore)>,
}

impl NabReport {
    pub fn points_per_second(&self) -> f64 {
        self.points as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The NAB anomaly score of each row of `file` (0 for the probationary prefix), or `None` when
/// the prefix cannot be fitted.
pub fn score_file(file: &CorpusFile, spec: &ModelSpec) -> Option<Vec<f64>> {
    score_file_to_state(file, spec).map(|(scores, _)| scores)
}

/// `score_file`, also giving the bytes of memory the detector holds at the end of the file.
fn score_file_to_state(file: &CorpusFile, spec: &ModelSpec) -> Option<(Vec<f64>, usize)> {
    let probation = super::probationary_length(file.values.len()) as usize;
    let points: Vec<Point> = file
        .timestamps
        .iter()
        .zip(&file.values)
        .map(|(&t, &value)| Point {
            timestamp: t.div_euclid(1_000_000),
            value,
        })
        .collect();
    let (observed, state) = score_series_to_state(spec, &points, probation).ok()?;
    let mut scores = vec![0.0; probation];
    scores.extend(observed.iter().map(|o| {
        let unit = o.verdict.unit_score();
        // A suppressed anomaly stays below the alert line: NAB sees the alerts as they fire.
        if o.verdict.anomaly && !o.alert {
            unit.min(0.4999)
        } else {
            unit
        }
    }));
    Some((scores, state.detector.state_bytes()))
}

/// Runs `spec` over the corpus, writes `out/<name>/...` and scores it under every profile.
pub fn run(
    data: &Path,
    labels: &Path,
    profiles: &Path,
    out: &Path,
    name: &str,
    spec: &ModelSpec,
) -> Result<NabReport, NabError> {
    let corpus = load_corpus(data, labels)?;
    let profiles = load_profiles(profiles)?;
    let started = Instant::now();
    // Every core takes the next file as it finishes one (the files differ 30-fold in length).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<(Vec<f64>, usize)>> = vec![None; corpus.len()];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(corpus.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = corpus.get(i) else {
                            return done;
                        };
                        done.push((i, score_file_to_state(file, spec)));
                    }
                })
            })
            .collect();
        for worker in workers {
            let done = worker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, result) in done {
                results[i] = result;
            }
        }
    });
    let elapsed = started.elapsed();
    let mut unfitted = Vec::new();
    let mut all_scores = Vec::with_capacity(corpus.len());
    let mut state_bytes = Vec::with_capacity(corpus.len());
    for (file, result) in corpus.iter().zip(results) {
        let scores = match result {
            Some((scores, bytes)) => {
                state_bytes.push(bytes);
                scores
            }
            None => {
                unfitted.push(file.name.clone());
                vec![0.0; file.values.len()]
            }
        };
        write_results(out, name, file, &scores)?;
        all_scores.push(scores);
    }
    Ok(NabReport {
        files: corpus.len(),
        points: corpus.iter().map(|f| f.values.len()).sum(),
        elapsed,
        unfitted,
        state_bytes_mean: state_bytes.iter().sum::<usize>() / state_bytes.len().max(1),
        state_bytes_max: state_bytes.iter().copied().max().unwrap_or(0),
        scores: score_all(&corpus, &all_scores, &profiles),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::DetectorSpec;
    use crate::nab::{load_corpus, repo_nab};

    /// No lookahead: a row's score depends only on the rows up to it. Each detector scores a NAB
    /// file, then the same file with every row after `k` replaced; rows up to `k` must score the
    /// same to the bit.
    #[test]
    fn no_detector_looks_ahead() {
        let nab = repo_nab();
        let corpus =
            load_corpus(&nab.join("data"), &nab.join("labels/combined_windows.json")).unwrap();
        let file = corpus
            .iter()
            .find(|f| f.name == "realKnownCause/ambient_temperature_system_failure.csv")
            .expect("the file is in the corpus");
        let k = file.values.len() / 2;
        let mut altered = file.clone();
        for (i, v) in altered.values[k + 1..].iter_mut().enumerate() {
            // A different tail: the series mirrored, with spikes of its own.
            *v = -*v + if i % 97 == 0 { 1e4 } else { 0.0 };
        }
        for name in DetectorSpec::NAMES {
            let spec = ModelSpec {
                detector: DetectorSpec::named(name).unwrap(),
                ..Default::default()
            };
            let original = score_file(file, &spec).expect("fitted");
            let changed = score_file(&altered, &spec).expect("fitted");
            assert_eq!(original[..=k], changed[..=k], "{name} looked ahead");
            assert_ne!(
                original[k + 1..],
                changed[k + 1..],
                "{name}: the tail mattered"
            );
        }
    }
}
