//! Latency and throughput arithmetic, kept pure so the stores share it and tests can check it by
//! hand.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencySummary {
    pub avg: f64,
    pub p95: f64,
}

impl LatencySummary {
    /// Mean and 95th percentile (nearest-rank: the smallest sample with at least 95% of the
    /// samples at or below it) of `samples`, in the samples' unit. Empty input gives zeros.
    pub fn of(samples: &[f64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = (0.95 * n as f64).ceil() as usize; // 1-based
        Self {
            avg: sorted.iter().sum::<f64>() / n as f64,
            p95: sorted[rank.clamp(1, n) - 1],
        }
    }
}

/// The minute (since the epoch) that `at_ms` falls in.
pub fn minute_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(60_000)
}

/// Events per minute over the kept history: the events counted in `buckets` (minute, count)
/// divided by the minutes from the oldest bucket to `now_minute`, both included.
pub fn per_minute(buckets: impl IntoIterator<Item = (i64, u64)>, now_minute: i64) -> f64 {
    let mut oldest = None::<i64>;
    let mut total = 0u64;
    for (minute, count) in buckets {
        total += count;
        oldest = Some(oldest.map_or(minute, |o| o.min(minute)));
    }
    match oldest {
        None => 0.0,
        Some(oldest) => total as f64 / ((now_minute - oldest).max(0) + 1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_the_nearest_rank_on_a_hand_computed_case() {
        // 20 samples 1..=20: rank ceil(0.95·20) = 19, so p95 = 19; avg = 10.5.
        let samples: Vec<f64> = (1..=20).rev().map(f64::from).collect();
        assert_eq!(
            LatencySummary::of(&samples),
            LatencySummary {
                avg: 10.5,
                p95: 19.0
            }
        );
        // 10 samples: rank ceil(9.5) = 10, the maximum.
        let ten = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 100.0];
        assert_eq!(LatencySummary::of(&ten).p95, 100.0);
        assert_eq!(LatencySummary::of(&ten).avg, 14.5);
    }

    #[test]
    fn small_windows_still_have_a_p95() {
        assert_eq!(LatencySummary::of(&[]), LatencySummary::default());
        assert_eq!(
            LatencySummary::of(&[0.8]),
            LatencySummary { avg: 0.8, p95: 0.8 }
        );
        assert_eq!(LatencySummary::of(&[1.0, 3.0]).p95, 3.0);
    }

    #[test]
    fn throughput_averages_over_the_minutes_since_the_oldest_bucket() {
        assert_eq!(per_minute([], 10), 0.0);
        // Everything in the current minute: that many per minute.
        assert_eq!(per_minute([(10, 6)], 10), 6.0);
        // 6 + 3 events over minutes 8, 9, 10: 3 per minute.
        assert_eq!(per_minute([(8, 6), (10, 3)], 10), 3.0);
    }

    #[test]
    fn minutes_are_floored_even_before_the_epoch() {
        assert_eq!(minute_of(59_999), 0);
        assert_eq!(minute_of(60_000), 1);
        assert_eq!(minute_of(-1), -1);
    }
}
