//! Sliding windows of recent values that answer their statistic without scanning the window on
//! every point: `MaxWindow` (the largest value, a monotonic deque: each value enters and leaves it
//! once, O(1) amortised) and `MedianWindow` (median and MAD from a sorted copy: a binary search
//! and one `memmove` of at most the window per point, the MAD by a binary search over the two
//! sorted runs of distances either side of the median, O(log w)).
//!
//! Both serialise as the plain list of their values, oldest first (the checkpoint format the
//! detectors have always written), and rebuild what they index when read back.

use std::collections::VecDeque;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::stats::MAD_TO_STD;

/// The last `capacity` values pushed, and their maximum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaxWindow {
    values: VecDeque<f64>,
    /// Candidates for the maximum: (position, value), values strictly decreasing front to back.
    candidates: VecDeque<(u64, f64)>,
    /// The position the next value gets.
    next: u64,
}

impl MaxWindow {
    /// Appends `value`, dropping the oldest when the window already holds `capacity`.
    pub fn push(&mut self, value: f64, capacity: usize) {
        while self.values.len() >= capacity.max(1) {
            self.values.pop_front();
            let oldest = self.next - self.values.len() as u64 - 1;
            if self.candidates.front().is_some_and(|&(at, _)| at == oldest) {
                self.candidates.pop_front();
            }
        }
        while self.candidates.back().is_some_and(|&(_, v)| v <= value) {
            self.candidates.pop_back();
        }
        self.candidates.push_back((self.next, value));
        self.values.push_back(value);
        self.next += 1;
    }

    /// The largest value in the window (None when it is empty).
    pub fn max(&self) -> Option<f64> {
        self.candidates.front().map(|&(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Values of room held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.values.capacity() + 2 * self.candidates.capacity()
    }
}

impl FromIterator<f64> for MaxWindow {
    fn from_iter<I: IntoIterator<Item = f64>>(values: I) -> Self {
        let mut window = Self::default();
        for v in values {
            window.push(v, usize::MAX);
        }
        window
    }
}

/// The last `capacity` values pushed, and a sorted copy of them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MedianWindow {
    values: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl MedianWindow {
    /// Appends `value`, dropping the oldest when the window already holds `capacity`.
    pub fn push(&mut self, value: f64, capacity: usize) {
        while self.values.len() >= capacity.max(1) {
            if let Some(oldest) = self.values.pop_front() {
                let at = self
                    .sorted
                    .partition_point(|x| x.total_cmp(&oldest).is_lt());
                self.sorted.remove(at);
            }
        }
        let at = self.sorted.partition_point(|x| x.total_cmp(&value).is_lt());
        self.sorted.insert(at, value);
        self.values.push_back(value);
    }

    /// The median and the MAD-based standard deviation (1.4826 · median absolute deviation);
    /// (0, 0) when empty. Exactly what `stats::median_and_scale` gives for the same values.
    pub fn median_and_scale(&self) -> (f64, f64) {
        let s = &self.sorted;
        let n = s.len();
        if n == 0 {
            return (0.0, 0.0);
        }
        let median = middle(n, |k| s[k]);
        // Distances from the median: growing leftwards on one side, rightwards on the other.
        let split = s.partition_point(|x| *x < median);
        let left = |j: usize| (s[split - 1 - j] - median).abs();
        let right = |j: usize| (s[split + j] - median).abs();
        let (left_len, right_len) = (split, n - split);
        let kth = |k: usize| kth_of_two(k, left_len, &left, right_len, &right);
        (median, MAD_TO_STD * middle(n, kth))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Values of room held (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.values.capacity() + self.sorted.capacity()
    }
}

impl FromIterator<f64> for MedianWindow {
    fn from_iter<I: IntoIterator<Item = f64>>(values: I) -> Self {
        let values: VecDeque<f64> = values.into_iter().collect();
        let mut sorted: Vec<f64> = values.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        Self { values, sorted }
    }
}

/// The median of `n` sorted values read through `at` (as `stats::median_in_place` computes it).
fn middle(n: usize, at: impl Fn(usize) -> f64) -> f64 {
    let upper = at(n / 2);
    if n % 2 == 1 {
        return upper;
    }
    at(n / 2 - 1) / 2.0 + upper / 2.0
}

/// The `k`-th smallest (from 0) of two sorted runs read through `a` and `b`.
fn kth_of_two(
    k: usize,
    a_len: usize,
    a: &impl Fn(usize) -> f64,
    b_len: usize,
    b: &impl Fn(usize) -> f64,
) -> f64 {
    // Take `i` from `a` and `k + 1 - i` from `b`: the k-th is the larger of the last two taken
    // once neither run's next value is smaller than the other's last.
    let (mut low, mut high) = ((k + 1).saturating_sub(b_len), (k + 1).min(a_len));
    loop {
        let i = low + (high - low) / 2;
        let j = k + 1 - i;
        if i < a_len && j > 0 && b(j - 1) > a(i) {
            low = i + 1;
        } else if i > 0 && j < b_len && a(i - 1) > b(j) {
            high = i - 1;
        } else {
            return match (i, j) {
                (0, _) => b(j - 1),
                (_, 0) => a(i - 1),
                _ => a(i - 1).max(b(j - 1)),
            };
        }
    }
}

macro_rules! serialised_as_values {
    ($window:ty) => {
        impl Serialize for $window {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.values.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $window {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Ok(VecDeque::<f64>::deserialize(deserializer)?
                    .into_iter()
                    .collect())
            }
        }
    };
}

serialised_as_values!(MaxWindow);
serialised_as_values!(MedianWindow);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::stats::median_and_scale;
    use crate::detector::testing::noise;

    /// Values with ties, steps, zeros of both signs and spikes: what real series throw at it.
    fn awkward(n: usize) -> Vec<f64> {
        noise(n, 7)
            .iter()
            .enumerate()
            .map(|(i, x)| match i % 11 {
                0 => 0.0,
                1 => -0.0,
                2 => (x * 4.0).round(),
                3 => 1e6 * x,
                _ => *x,
            })
            .collect()
    }

    #[test]
    fn the_maximum_follows_the_window_exactly() {
        for capacity in [1, 2, 3, 17, 100] {
            let mut window = MaxWindow::default();
            let values = awkward(600);
            for (i, &v) in values.iter().enumerate() {
                window.push(v, capacity);
                let start = (i + 1).saturating_sub(capacity);
                let scanned = values[start..=i].iter().copied().fold(f64::MIN, f64::max);
                assert_eq!(
                    window.max(),
                    Some(scanned),
                    "capacity {capacity}, point {i}"
                );
                assert_eq!(window.len(), i + 1 - start);
            }
        }
    }

    #[test]
    fn median_and_mad_equal_the_full_computation() {
        for capacity in [1, 2, 3, 4, 10, 33, 250] {
            let mut window = MedianWindow::default();
            let values = awkward(700);
            for (i, &v) in values.iter().enumerate() {
                window.push(v, capacity);
                let start = (i + 1).saturating_sub(capacity);
                let full = median_and_scale(values[start..=i].iter().copied(), &mut Vec::new());
                let fast = window.median_and_scale();
                // Exactly equal (a zero median may differ only in its sign).
                assert_eq!(fast, full, "capacity {capacity}, point {i}");
            }
        }
    }

    #[test]
    fn both_read_back_what_they_wrote_as_a_plain_list() {
        let mut max = MaxWindow::default();
        let mut median = MedianWindow::default();
        for v in [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0] {
            max.push(v, 5);
            median.push(v, 5);
        }
        let text = serde_json::to_string(&max).unwrap();
        assert_eq!(text, "[1.0,5.0,9.0,2.0,6.0]");
        assert_eq!(serde_json::to_string(&median).unwrap(), text);
        let max_back: MaxWindow = serde_json::from_str(&text).unwrap();
        let median_back: MedianWindow = serde_json::from_str(&text).unwrap();
        assert_eq!(max_back.max(), Some(9.0));
        assert_eq!(median_back.median_and_scale(), median.median_and_scale());
        assert_eq!(median_back.median_and_scale().0, 5.0);
    }
}
