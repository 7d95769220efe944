//! The NAB harness: reads a NAB corpus (data, label windows, scoring profiles), runs a detector
//! over it through the predictor's own scoring path, writes NAB's results layout, and scores it
//! with the Rust port of NAB's scorer (`scorer`).

pub mod harness;
pub mod scorer;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use scorer::{CostMatrix, ProfileScore, ScoredFile, probationary_length, score_corpus};

/// The profiles in NAB's order of presentation.
pub const PROFILE_ORDER: [&str; 3] = ["standard", "reward_low_FP_rate", "reward_low_FN_rate"];

#[derive(Debug, thiserror::Error)]
pub enum NabError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

fn read(path: &Path) -> Result<String, NabError> {
    fs::read_to_string(path).map_err(|source| NabError::Io {
        path: path.to_owned(),
        source,
    })
}

fn format_error(path: &Path, reason: impl Into<String>) -> NabError {
    NabError::Format {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// One data file of the corpus with its label windows.
#[derive(Debug, Clone)]
pub struct CorpusFile {
    /// `category/file.csv`, as the labels name it.
    pub name: String,
    /// The rows' timestamps as written, for the results files.
    pub raw_timestamps: Vec<String>,
    /// The rows' timestamps in microseconds since the epoch.
    pub timestamps: Vec<i64>,
    pub values: Vec<f64>,
    pub windows: Vec<(i64, i64)>,
}

impl CorpusFile {
    pub fn category(&self) -> &str {
        self.name.split('/').next().unwrap_or_default()
    }

    pub fn file_name(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or_default()
    }

    /// Whether each row lies in an anomaly window (NAB's `label` column).
    pub fn labels(&self) -> Vec<bool> {
        self.timestamps
            .iter()
            .map(|t| self.windows.iter().any(|(s, e)| s <= t && t <= e))
            .collect()
    }
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]` into microseconds since the epoch.
pub fn parse_timestamp(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let (date, time) = raw.split_once(' ').or_else(|| raw.split_once('T'))?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':').map(str::parse::<i64>);
    let (h, m, s) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let micros = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().chain("000000".chars()).take(6).collect();
        digits.parse::<i64>().ok()?
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + m * 60 + s) * 1_000_000) + micros)
}

/// Reads every file named in `labels` (NAB's `combined_windows.json`) from `data_dir`.
pub fn load_corpus(data_dir: &Path, labels: &Path) -> Result<Vec<CorpusFile>, NabError> {
    let windows: BTreeMap<String, Vec<(String, String)>> =
        serde_json::from_str(&read(labels)?).map_err(|e| format_error(labels, e.to_string()))?;
    let mut files = Vec::with_capacity(windows.len());
    for (name, limits) in windows {
        let path = data_dir.join(&name);
        let text = read(&path)?;
        let mut file = CorpusFile {
            name,
            raw_timestamps: Vec::new(),
            timestamps: Vec::new(),
            values: Vec::new(),
            windows: Vec::new(),
        };
        for (n, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let (raw_time, raw_value) = line.split_once(',').ok_or_else(|| {
                format_error(&path, format!("line {}: expected two columns", n + 1))
            })?;
            let time = parse_timestamp(raw_time)
                .ok_or_else(|| format_error(&path, format!("line {}: bad timestamp", n + 1)))?;
            let value: f64 = raw_value
                .trim()
                .parse()
                .map_err(|_| format_error(&path, format!("line {}: bad value", n + 1)))?;
            file.raw_timestamps.push(raw_time.to_owned());
            file.timestamps.push(time);
            file.values.push(value);
        }
        for (start, end) in limits {
            let parse = |raw: &str| {
                parse_timestamp(raw)
                    .ok_or_else(|| format_error(labels, format!("bad window timestamp {raw}")))
            };
            file.windows.push((parse(&start)?, parse(&end)?));
        }
        file.windows.sort_unstable();
        files.push(file);
    }
    Ok(files)
}

#[derive(Deserialize)]
struct ProfileFile {
    #[serde(rename = "CostMatrix")]
    cost_matrix: CostMatrixFile,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CostMatrixFile {
    tp_weight: f64,
    fp_weight: f64,
    fn_weight: f64,
}

/// Reads NAB's `profiles.json`, in NAB's order of presentation.
pub fn load_profiles(path: &Path) -> Result<Vec<(String, CostMatrix)>, NabError> {
    let profiles: BTreeMap<String, ProfileFile> =
        serde_json::from_str(&read(path)?).map_err(|e| format_error(path, e.to_string()))?;
    let rank = |name: &str| {
        PROFILE_ORDER
            .iter()
            .position(|p| *p == name)
            .unwrap_or(usize::MAX)
    };
    let mut out: Vec<(String, CostMatrix)> = profiles
        .into_iter()
        .map(|(name, p)| {
            let c = p.cost_matrix;
            (
                name,
                CostMatrix {
                    tp_weight: c.tp_weight,
                    fp_weight: c.fp_weight,
                    fn_weight: c.fn_weight,
                },
            )
        })
        .collect();
    out.sort_by_key(|(name, _)| (rank(name), name.clone()));
    Ok(out)
}

/// The results file of `detector` for `file` under `results_dir` (NAB's layout).
pub fn results_path(results_dir: &Path, detector: &str, file: &CorpusFile) -> PathBuf {
    results_dir
        .join(detector)
        .join(file.category())
        .join(format!("{detector}_{}", file.file_name()))
}

/// Reads the `anomaly_score` column of a detector's results for every corpus file.
pub fn read_results(
    results_dir: &Path,
    detector: &str,
    corpus: &[CorpusFile],
) -> Result<Vec<Vec<f64>>, NabError> {
    corpus
        .iter()
        .map(|file| {
            let path = results_path(results_dir, detector, file);
            let text = read(&path)?;
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
            let column = header
                .iter()
                .position(|h| h.trim() == "anomaly_score")
                .ok_or_else(|| format_error(&path, "no anomaly_score column"))?;
            let scores = lines
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    l.split(',')
                        .nth(column)
                        .and_then(|v| v.trim().parse::<f64>().ok())
                })
                .collect::<Option<Vec<f64>>>()
                .ok_or_else(|| format_error(&path, "bad anomaly_score"))?;
            if scores.len() != file.timestamps.len() {
                return Err(format_error(&path, "row count differs from the data file"));
            }
            Ok(scores)
        })
        .collect()
}

/// Writes NAB's results layout: `timestamp,value,anomaly_score,label` per file.
pub fn write_results(
    results_dir: &Path,
    detector: &str,
    file: &CorpusFile,
    scores: &[f64],
) -> Result<(), NabError> {
    let path = results_path(results_dir, detector, file);
    let io = |source| NabError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io)?;
    }
    let mut out = String::from("timestamp,value,anomaly_score,label\n");
    for (((raw, value), score), label) in file
        .raw_timestamps
        .iter()
        .zip(&file.values)
        .zip(scores)
        .zip(file.labels())
    {
        out.push_str(&format!("{raw},{value},{score},{}\n", u8::from(label)));
    }
    fs::write(&path, out).map_err(io)
}

/// Scores a detector's scores on the corpus under every profile.
pub fn score_all(
    corpus: &[CorpusFile],
    scores: &[Vec<f64>],
    profiles: &[(String, CostMatrix)],
) -> Vec<(String, ProfileScore)> {
    let files: Vec<ScoredFile<'_>> = corpus
        .iter()
        .zip(scores)
        .map(|(file, scores)| ScoredFile {
            timestamps: &file.timestamps,
            windows: &file.windows,
            scores,
        })
        .collect();
    profiles
        .iter()
        .map(|(name, cost)| (name.clone(), score_corpus(&files, *cost)))
        .collect()
}

/// The NAB development subset kept in the repository (`nab/`, MIT), for tests.
#[cfg(test)]
pub(crate) fn repo_nab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nab")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_as_utc_microseconds() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2013-07-04 01:00:00"),
            Some(1_372_899_600_000_000)
        );
        assert_eq!(
            parse_timestamp("2014-02-19 10:50:00.000000"),
            parse_timestamp("2014-02-19 10:50:00")
        );
        assert_eq!(
            parse_timestamp("2014-02-19 10:50:00.5"),
            Some(1_392_807_000_500_000)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    /// The acceptance check of the port: NAB's windowed Gaussian reference results score
    /// 38.493 / 20.743 / 46.037 on the development subset.
    #[test]
    fn the_windowed_gaussian_reference_scores_as_published() {
        let nab = repo_nab();
        let corpus =
            load_corpus(&nab.join("data"), &nab.join("labels/combined_windows.json")).unwrap();
        assert_eq!(corpus.len(), 41);
        assert_eq!(corpus.iter().map(|f| f.windows.len()).sum::<usize>(), 79);
        let profiles = load_profiles(&nab.join("config/profiles.json")).unwrap();
        let scores = read_results(&nab.join("reference"), "windowedGaussian", &corpus).unwrap();
        let results = score_all(&corpus, &scores, &profiles);
        let expected = [
            ("standard", 38.493),
            ("reward_low_FP_rate", 20.743),
            ("reward_low_FN_rate", 46.037),
        ];
        for ((name, score), (want_name, want)) in results.iter().zip(expected) {
            assert_eq!(name, want_name);
            assert!(
                (score.normalized - want).abs() <= 0.001,
                "{name}: {:.4} (threshold {}, raw {}), expected {want}",
                score.normalized,
                score.threshold,
                score.raw
            );
        }
    }
}
