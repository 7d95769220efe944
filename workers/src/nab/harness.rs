//! `anomaly nab`: runs a detector over a NAB corpus exactly as production would see it. Each file
//! is fitted on its probationary prefix (15%, at most 750 rows), then every later row goes
//! through `LiveState::observe`, the predictor's own path (online learning and alert gate
//! included). Results are written in NAB's layout and scored with the Rust scorer.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{
    CorpusFile, NabError, ProfileScore, load_corpus, load_profiles, score_all, write_results,
};
use crate::detector::ModelSpec;
use crate::domain::Point;
use crate::live::score_series;

/// What a run measured.
#[derive(Debug, Clone)]
pub struct NabReport {
    pub files: usize,
    pub points: usize,
    pub elapsed: Duration,
    /// Files whose probationary prefix could not be fitted (constant values): scored all 0.
    pub unfitted: Vec<String>,
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
    let observed = score_series(spec, &points, probation).ok()?;
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
    Some(scores)
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
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = corpus.len().div_ceil(threads).max(1);
    let results: Vec<Option<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = corpus
            .chunks(chunk)
            .map(|files| {
                scope.spawn(move || {
                    files
                        .iter()
                        .map(|f| score_file(f, spec))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let elapsed = started.elapsed();
    let mut unfitted = Vec::new();
    let mut all_scores = Vec::with_capacity(corpus.len());
    for (file, scores) in corpus.iter().zip(results) {
        let scores = scores.unwrap_or_else(|| {
            unfitted.push(file.name.clone());
            vec![0.0; file.values.len()]
        });
        write_results(out, name, file, &scores)?;
        all_scores.push(scores);
    }
    Ok(NabReport {
        files: corpus.len(),
        points: corpus.iter().map(|f| f.values.len()).sum(),
        elapsed,
        unfitted,
        scores: score_all(&corpus, &all_scores, &profiles),
    })
}
