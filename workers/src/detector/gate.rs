//! Alert suppression: turns a stream of verdicts into alerts. With `rising_edge`, a run of
//! anomalous points raises one alert, at its start; `cooldown_secs` keeps quiet for that long
//! after an alert. Scores and verdicts are untouched: only anomaly events are suppressed.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertOptions {
    pub rising_edge: bool,
    pub cooldown_secs: u64,
}

impl Default for AlertOptions {
    fn default() -> Self {
        Self {
            rising_edge: true,
            cooldown_secs: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertGate {
    pub options: AlertOptions,
    pub previous_anomalous: bool,
    pub last_alert_at: Option<i64>,
}

impl AlertGate {
    pub fn new(options: AlertOptions) -> Self {
        Self {
            options,
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
        if anomalous && !continuing && !cooling {
            self.last_alert_at = Some(timestamp);
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
        let mut gate = AlertGate::new(options);
        verdicts.iter().map(|&(a, t)| gate.admit(a, t)).collect()
    }

    #[test]
    fn rising_edge_alerts_once_per_run() {
        let v = [(true, 0), (true, 60), (false, 120), (true, 180)];
        assert_eq!(run(AlertOptions::default(), &v), [true, false, false, true]);
        let every = AlertOptions {
            rising_edge: false,
            cooldown_secs: 0,
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
            rising_edge: true,
            cooldown_secs: 300,
        };
        assert_eq!(run(options, &v), [true, false, false, false, true]);
    }
}
