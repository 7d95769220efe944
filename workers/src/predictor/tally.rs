//! A predictor's inference metrics, tallied in memory and published as one `InferenceBatch` per
//! short span instead of one event per prediction. On a distributed deployment every event is a
//! broker message, and a message per prediction cost more CPU than the prediction itself.
//!
//! A span opens with its first prediction and closes `span` later (the predictor arranges that),
//! or at once when it has counted `MAX_SERIES` series, which bounds a batch's size (well under a
//! broker's message limit). A process killed mid-span loses that span's figures: they are
//! metrics, not acknowledged data.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use uuid::Uuid;

use crate::domain::SeriesId;
use crate::events::{InferenceBatch, now_ms};
use crate::stats::LATENCY_WINDOW;

/// Distinct series a batch counts at most (about 140 KB of JSON with the longest ids).
pub const MAX_SERIES: usize = 1_000;

pub struct InferenceTally {
    source: String,
    span: Duration,
    open: Mutex<Option<Span>>,
}

#[derive(Default)]
struct Span {
    uses: HashMap<SeriesId, u64>,
    /// The newest latencies: a ring once `LATENCY_WINDOW` is reached; `counted` says where.
    latencies_ms: Vec<f64>,
    counted: u64,
}

/// What counting a prediction did to the open span.
#[derive(Debug)]
pub enum Counted {
    /// It opened a span: close it `span` from now.
    Opened,
    /// It joined the open span.
    Joined,
    /// It filled the span, which is closed: publish this batch.
    Filled(InferenceBatch),
}

impl InferenceTally {
    /// A tally for the predictor instance `source`, publishing every `span`.
    pub fn new(source: String, span: Duration) -> Self {
        Self {
            source,
            span,
            open: Mutex::new(None),
        }
    }

    pub fn span(&self) -> Duration {
        self.span
    }

    /// Counts one prediction of `series` that took `latency_ms`.
    pub fn count(&self, series: &SeriesId, latency_ms: f64) -> Counted {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let opened = open.is_none();
        let span = open.get_or_insert_with(Span::default);
        match span.uses.get_mut(series.as_str()) {
            Some(uses) => *uses += 1,
            None => {
                span.uses.insert(series.clone(), 1);
            }
        }
        if span.latencies_ms.len() < LATENCY_WINDOW {
            span.latencies_ms.push(latency_ms);
        } else {
            span.latencies_ms[(span.counted % LATENCY_WINDOW as u64) as usize] = latency_ms;
        }
        span.counted += 1;
        if span.uses.len() >= MAX_SERIES {
            let full = open.take().expect("a span was just counted in");
            return Counted::Filled(self.batch(full));
        }
        if opened {
            Counted::Opened
        } else {
            Counted::Joined
        }
    }

    /// Closes the open span: its batch, unless nothing was counted since the last one.
    pub fn close(&self) -> Option<InferenceBatch> {
        let span = self.open.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        Some(self.batch(span))
    }

    fn batch(&self, mut span: Span) -> InferenceBatch {
        if span.latencies_ms.len() == LATENCY_WINDOW {
            // Oldest first, as if the ring had been a list.
            let oldest = (span.counted % LATENCY_WINDOW as u64) as usize;
            span.latencies_ms.rotate_left(oldest);
        }
        InferenceBatch {
            id: Uuid::new_v4(),
            source: self.source.clone(),
            at_ms: now_ms(),
            uses: span.uses,
            latencies_ms: span.latencies_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str) -> SeriesId {
        SeriesId::parse(name).unwrap()
    }

    fn tally() -> InferenceTally {
        InferenceTally::new("p1".into(), Duration::from_millis(100))
    }

    #[test]
    fn a_span_counts_uses_per_series_and_latencies_in_order() {
        let tally = tally();
        assert!(
            tally.close().is_none(),
            "nothing counted, nothing to publish"
        );
        assert!(matches!(tally.count(&series("a"), 1.0), Counted::Opened));
        assert!(matches!(tally.count(&series("b"), 2.0), Counted::Joined));
        assert!(matches!(tally.count(&series("a"), 3.0), Counted::Joined));
        let batch = tally.close().expect("a batch");
        assert_eq!(batch.source, "p1");
        assert_eq!(
            batch.uses,
            HashMap::from([(series("a"), 2), (series("b"), 1)])
        );
        assert_eq!(batch.latencies_ms, vec![1.0, 2.0, 3.0]);
        assert_eq!(batch.predictions(), 3);
        assert!(tally.close().is_none(), "the span was closed");
        assert!(matches!(tally.count(&series("a"), 1.0), Counted::Opened));
    }

    #[test]
    fn a_long_span_keeps_the_newest_latencies_oldest_first() {
        let tally = tally();
        let n = LATENCY_WINDOW + 250;
        for i in 0..n {
            tally.count(&series("a"), i as f64);
        }
        let batch = tally.close().expect("a batch");
        let newest: Vec<f64> = (250..n).map(|i| i as f64).collect();
        assert_eq!(batch.latencies_ms, newest);
        assert_eq!(batch.predictions(), n as u64);
    }

    #[test]
    fn a_span_that_reaches_the_series_bound_is_closed_at_once() {
        let tally = tally();
        for i in 0..MAX_SERIES - 1 {
            assert!(!matches!(
                tally.count(&series(&format!("s{i}")), 1.0),
                Counted::Filled(_)
            ));
        }
        let Counted::Filled(batch) = tally.count(&series("last"), 1.0) else {
            panic!("the span should be full");
        };
        assert_eq!(batch.uses.len(), MAX_SERIES);
        assert!(tally.close().is_none(), "the full span was closed");
    }
}
