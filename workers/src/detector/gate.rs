//! Alert suppression: turns a stream of verdicts into alerts. With `rising_edge`, a run of
//! anomalous points raises one alert, at its start; `cooldown_secs` keeps quiet for that long
//! (series time) after an alert, `quiet_points` for that many points (by default the detector's
//! own: one alert per event for `art`). Scores and verdicts are untouched: only anomaly events
//! are suppressed.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertOptions {
    pub rising_edge: bool,
    pub cooldown_secs: u64,
    /// Points to stay quiet after an alert; `None` takes the detector's default.
    pub quiet_points: Option<u64>,
}

impl Default for AlertOptions {
    fn default() -> Self {
        Self {
            rising_edge: true,
            cooldown_secs: 0,
            quiet_points: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertGate {
    pub options: AlertOptions,
    pub previous_anomalous: bool,
    pub last_alert_at: Option<i64>,
    /// The quiet spell after an alert, in points, and what is left of the current one.
    #[serde(default)]
    pub quiet_points: u64,
    #[serde(default)]
    pub quiet_left: u64,
}

impl AlertGate {
    /// A gate for `options`, with `detector_quiet_points` when they leave `quiet_points` out.
    pub fn new(options: AlertOptions, detector_quiet_points: u64) -> Self {
        Self {
            options,
            quiet_points: options.quiet_points.unwrap_or(detector_quiet_points),
            ..Default::default()
        }
    }

    /// Whether a point with this verdict at `timestamp` (seconds) raises an alert.
    pub fn admit(&mut self, anomalous: bool, timestamp: i64) -> bool {
        let continuing = self.options.rising_edge && self.previous_anomalous;
        self.previous_anomalous = anomalous;
        let cooling = self.last_alert_at.is_some_and(|at| {
            timestamp.saturating_sub(at)
                < i64::try_from(self.options.cooldown_secs).unwrap_or(i64::MAX)
        });
        let quiet = self.quiet_left > 0;
        self.quiet_left = self.quiet_left.saturating_sub(1);
        if anomalous && !continuing && !cooling && !quiet {
            self.last_alert_at = Some(timestamp);
            self.quiet_left = self.quiet_points;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(options: AlertOptions, verdicts: &[(bool, i64)]) -> Vec<bool> {
        let mut gate = AlertGate::new(options, 0);
        verdicts.iter().map(|&(a, t)| gate.admit(a, t)).collect()
    }

    #[test]
    fn rising_edge_alerts_once_per_run() {
        let v = [(true, 0), (true, 60), (false, 120), (true, 180)];
        assert_eq!(run(AlertOptions::default(), &v), [true, false, false, true]);
        let every = AlertOptions {
            rising_edge: false,
            ..Default::default()
        };
        assert_eq!(run(every, &v), [true, true, false, true]);
    }

    #[test]
    fn cooldown_keeps_quiet_after_an_alert() {
        let v = [
            (true, 0),
            (false, 60),
            (true, 120),
            (false, 180),
            (true, 600),
        ];
        let options = AlertOptions {
            cooldown_secs: 300,
            ..Default::default()
        };
        assert_eq!(run(options, &v), [true, false, false, false, true]);
    }

    #[test]
    fn a_quiet_spell_counts_points() {
        let v: Vec<(bool, i64)> = [true, false, true, false, true, false, true]
            .iter()
            .map(|&a| (a, 0))
            .collect();
        let mut gate = AlertGate::new(AlertOptions::default(), 3);
        let alerts: Vec<bool> = v.iter().map(|&(a, t)| gate.admit(a, t)).collect();
        assert_eq!(alerts, [true, false, false, false, true, false, false]);
        let options = AlertOptions {
            quiet_points: Some(0),
            ..Default::default()
        };
        assert_eq!(
            run(options, &v),
            [true, false, true, false, true, false, true],
            "the options override the detector's spell"
        );
    }
}
