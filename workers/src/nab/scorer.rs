//! NAB v1.1's scoring rules, ported: every row outside the probationary prefix gets a sweep score
//! (a true positive weighted by how early it falls in its window, a false positive by how far it
//! falls past the previous window); one threshold is chosen for the whole corpus; each window
//! counts its best (earliest) detection or a miss; the total is normalised so that the null
//! detector scores 0 and a perfect one 100.

/// A profile's weights (NAB's cost matrix).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostMatrix {
    pub tp_weight: f64,
    pub fp_weight: f64,
    pub fn_weight: f64,
}

/// One file's rows (timestamps in time order), its anomaly windows and a detector's scores.
#[derive(Debug, Clone)]
pub struct ScoredFile<'a> {
    pub timestamps: &'a [i64],
    /// Inclusive (start, end) timestamps, each equal to a row's timestamp.
    pub windows: &'a [(i64, i64)],
    pub scores: &'a [f64],
}

/// A scorable row: its detector score, its sweep score, and its window (corpus-wide id).
#[derive(Debug, Clone, Copy)]
struct Row {
    anomaly_score: f64,
    sweep_score: f64,
    window: Option<usize>,
}

/// How many leading rows are probationary: 15% of the file, at most 750.
pub fn probationary_length(rows: usize) -> f64 {
    (0.15 * rows as f64).floor().min(0.15 * 5000.0)
}

fn scaled_sigmoid(relative_position: f64) -> f64 {
    if relative_position >= 3.0 {
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * relative_position).exp()) - 1.0
    }
}

/// The sweep scores of one file's non-probationary rows; windows are numbered from
/// `first_window`. Returns the rows and how many windows the file has.
fn sweep(file: &ScoredFile<'_>, cost: CostMatrix, first_window: usize) -> (Vec<Row>, usize) {
    let max_tp = scaled_sigmoid(-1.0);
    let probation = probationary_length(file.timestamps.len());
    let index_of = |t: i64| file.timestamps.iter().position(|&x| x == t);
    let mut pending = file.windows.iter().enumerate().peekable();
    let mut current: Option<(usize, i64, usize, f64)> = None; // (id, end, right index, width)
    let mut previous: Option<(usize, f64)> = None; // (right index, width)
    let mut rows = Vec::with_capacity(file.timestamps.len());
    for (i, (&t, &anomaly_score)) in file.timestamps.iter().zip(file.scores).enumerate() {
        if let Some(&(n, &(start, end))) = pending.peek()
            && t == start
        {
            pending.next();
            let right = index_of(end).unwrap_or(i);
            let width = (right as f64) - (i as f64) + 1.0;
            current = Some((first_window + n, end, right, width));
        }
        let sweep_score = match current {
            Some((_, _, right, width)) => {
                let position = -((right as f64) - (i as f64) + 1.0) / width;
                scaled_sigmoid(position) * cost.tp_weight / max_tp
            }
            None => {
                let position = match previous {
                    None => 3.0,
                    Some((right, width)) => (right as f64 - i as f64).abs() / (width - 1.0),
                };
                scaled_sigmoid(position) * cost.fp_weight
            }
        };
        if (i as f64) >= probation {
            rows.push(Row {
                anomaly_score,
                sweep_score,
                window: current.map(|c| c.0),
            });
        }
        if let Some((_, end, right, width)) = current
            && t == end
        {
            previous = Some((right, width));
            current = None;
        }
    }
    (rows, file.windows.len())
}

/// Scores at every distinct threshold, highest threshold first: (threshold, score).
fn scores_by_threshold(mut rows: Vec<Row>, cost: CostMatrix) -> Vec<(f64, f64)> {
    // Descending by detector score; equal scores keep their order (a stable sort).
    rows.sort_by(|a, b| b.anomaly_score.total_cmp(&a.anomaly_score));
    // Score parts: false positives first, then each window in order of first appearance,
    // starting as a miss.
    let mut slot_of = std::collections::HashMap::new();
    let mut parts = vec![0.0];
    for row in &rows {
        if let Some(w) = row.window {
            slot_of.entry(w).or_insert_with(|| {
                parts.push(-cost.fn_weight);
                parts.len() - 1
            });
        }
    }
    let total = |parts: &[f64]| parts.iter().sum::<f64>();
    let mut out = Vec::new();
    let mut threshold = 1.1;
    for row in &rows {
        if row.anomaly_score != threshold {
            out.push((threshold, total(&parts)));
            threshold = row.anomaly_score;
        }
        match row.window {
            None => parts[0] += row.sweep_score,
            Some(w) => {
                let slot = slot_of[&w];
                parts[slot] = parts[slot].max(row.sweep_score);
            }
        }
    }
    out.push((threshold, total(&parts)));
    out
}

/// The score of rows detected at `threshold` (every row scoring at least it).
fn score_at(rows: Vec<Row>, threshold: f64, cost: CostMatrix) -> f64 {
    let table = scores_by_threshold(rows, cost);
    // The row for the smallest listed threshold that is still >= `threshold`.
    table
        .iter()
        .take_while(|(t, _)| *t >= threshold)
        .last()
        .map_or(table[0].1, |(_, score)| *score)
}

/// A detector's result on a corpus for one profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfileScore {
    pub threshold: f64,
    pub raw: f64,
    pub normalized: f64,
}

fn raw_score(files: &[ScoredFile<'_>], cost: CostMatrix) -> (f64, f64) {
    let mut all = Vec::new();
    let mut per_file = Vec::new();
    let mut next_window = 0;
    for file in files {
        let (rows, windows) = sweep(file, cost, next_window);
        next_window += windows;
        all.extend_from_slice(&rows);
        per_file.push(rows);
    }
    let table = scores_by_threshold(all, cost);
    // The best corpus score; on a tie, the higher threshold (listed first) wins.
    let (threshold, _) = table.iter().fold(
        table[0],
        |best, &row| if row.1 > best.1 { row } else { best },
    );
    let raw = per_file
        .into_iter()
        .map(|rows| score_at(rows, threshold, cost))
        .sum();
    (threshold, raw)
}

/// Scores `files` for one profile: the corpus-wide best threshold, the raw total at it, and the
/// total normalised against the null detector (a constant 0.5) and a perfect one.
pub fn score_corpus(files: &[ScoredFile<'_>], cost: CostMatrix) -> ProfileScore {
    let (threshold, raw) = raw_score(files, cost);
    let null_scores: Vec<Vec<f64>> = files.iter().map(|f| vec![0.5; f.scores.len()]).collect();
    let null_files: Vec<ScoredFile<'_>> = files
        .iter()
        .zip(&null_scores)
        .map(|(f, scores)| ScoredFile {
            scores,
            ..f.clone()
        })
        .collect();
    let (_, null) = raw_score(&null_files, cost);
    let windows: usize = files.iter().map(|f| f.windows.len()).sum();
    let perfect = windows as f64 * cost.tp_weight;
    ProfileScore {
        threshold,
        raw,
        normalized: 100.0 * (raw - null) / (perfect - null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STANDARD: CostMatrix = CostMatrix {
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
    };

    #[test]
    fn the_scaled_sigmoid_matches_nab_landmarks() {
        assert!((scaled_sigmoid(-1.0) - 0.98661).abs() < 1e-5);
        assert!((scaled_sigmoid(-0.5) - 0.84828).abs() < 1e-5);
        assert!(scaled_sigmoid(0.0).abs() < 1e-12);
        assert_eq!(scaled_sigmoid(3.0), -1.0);
    }

    #[test]
    fn probation_is_fifteen_percent_capped_at_750() {
        assert_eq!(probationary_length(1000), 150.0);
        assert_eq!(probationary_length(4032), 604.0);
        assert_eq!(probationary_length(22_695), 750.0);
    }

    /// 100 rows, one window over rows 60..=69.
    fn file<'a>(
        timestamps: &'a [i64],
        scores: &'a [f64],
        windows: &'a [(i64, i64)],
    ) -> ScoredFile<'a> {
        ScoredFile {
            timestamps,
            windows,
            scores,
        }
    }

    #[test]
    fn perfect_null_and_early_detection_normalise_as_nab_does() {
        let timestamps: Vec<i64> = (0..100).collect();
        let windows = [(60, 69)];
        // Detecting the window's first row is perfect: 100.
        let mut perfect = vec![0.0; 100];
        perfect[60] = 1.0;
        let s = score_corpus(&[file(&timestamps, &perfect, &windows)], STANDARD);
        assert!((s.normalized - 100.0).abs() < 1e-9, "{s:?}");
        // Detecting nothing scores as the null detector: 0.
        let nothing = vec![0.0; 100];
        let s = score_corpus(&[file(&timestamps, &nothing, &windows)], STANDARD);
        assert!(s.normalized.abs() < 1e-9, "{s:?}");
        // A late detection earns less than an early one, and a false positive costs.
        let mut late = vec![0.0; 100];
        late[68] = 1.0;
        let late_score = score_corpus(&[file(&timestamps, &late, &windows)], STANDARD).normalized;
        let mut noisy = perfect.clone();
        noisy[30] = 1.0;
        let noisy_score = score_corpus(&[file(&timestamps, &noisy, &windows)], STANDARD).normalized;
        assert!(0.0 < late_score && late_score < 100.0, "{late_score}");
        assert!(0.0 < noisy_score && noisy_score < 100.0, "{noisy_score}");
    }
}
