//! Small robust statistics shared by the detectors.

/// The median of `values` (reorders them). Empty input gives 0.
pub fn median_in_place(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (_, upper, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        return upper;
    }
    let lower = values[..n / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    // Halves first: the sum of two huge values would overflow.
    lower / 2.0 + upper / 2.0
}

/// A normal distribution's standard deviation per median absolute deviation.
pub const MAD_TO_STD: f64 = 1.4826;

/// Median and MAD-based standard deviation (1.4826 · median absolute deviation) of `values`.
pub fn median_and_scale(values: impl Iterator<Item = f64>, scratch: &mut Vec<f64>) -> (f64, f64) {
    scratch.clear();
    scratch.extend(values);
    let median = median_in_place(scratch);
    for v in scratch.iter_mut() {
        *v = (*v - median).abs();
    }
    (median, MAD_TO_STD * median_in_place(scratch))
}

/// The smallest spread a detector will assume, so that flat or step-valued series do not make
/// every small change infinitely anomalous: the smallest gap between distinct values seen in
/// training (the series' "quantum"), and never below a millionth of the values' magnitude.
pub fn scale_floor(values: impl Iterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = values.collect();
    sorted.sort_by(f64::total_cmp);
    let magnitude = sorted.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1.0);
    let quantum = sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|gap| *gap > 0.0)
        .fold(f64::INFINITY, f64::min);
    let quantum = if quantum.is_finite() { quantum } else { 0.0 };
    quantum.max(1e-6 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median_in_place(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median_in_place(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median_in_place(&mut []), 0.0);
    }

    #[test]
    fn mad_scale_of_a_hand_computed_case() {
        // median 3; absolute deviations 2,1,0,1,2 → MAD 1.
        let (median, scale) =
            median_and_scale([1.0, 2.0, 3.0, 4.0, 5.0].into_iter(), &mut Vec::new());
        assert_eq!(median, 3.0);
        assert!((scale - 1.4826).abs() < 1e-12);
    }

    #[test]
    fn the_floor_is_the_smallest_step_of_a_step_valued_series() {
        assert_eq!(scale_floor([0.0, 0.0, 100.0, 100.0].into_iter()), 100.0);
        assert!((scale_floor([5.0, 5.0, 5.0].into_iter()) - 5e-6).abs() < 1e-15);
    }
}
