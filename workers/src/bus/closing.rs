//! Kafka consumers close on threads of their own, and a process waits for them a bounded time.
//!
//! Closing a group member is broker round trips: its final commit, the revocation of its
//! partitions and leaving the group. rdkafka's consumer drop polls until librdkafka reports the
//! consumer closed, with no bound, and tansu sometimes never completes a member's leave: a
//! subscription dropped on an async worker thread then blocked that thread for good (a test's
//! runtime never finished tearing down; a role would never exit). So a dropped subscription hands
//! its consumer to a thread of its own, and `process::run` waits for those threads at most
//! `CLOSE_TIMEOUT` before the process exits: on a healthy broker every member has left its group
//! by then (its partitions move to the others at once), and on a broker that never answers the
//! process still ends.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Consumers still closing, and a signal for each that finishes.
static CLOSING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Runs `close` (a commit and a consumer's drop) on a thread of its own.
pub(super) fn close_apart(close: impl FnOnce() + Send + 'static) {
    *count() += 1;
    let spawned = std::thread::Builder::new()
        .name("kafka-close".into())
        .spawn(move || {
            close();
            finished();
        });
    if let Err(err) = spawned {
        // No thread to be had (the process is at its limit): not closing beats blocking the
        // caller; the group sees the member leave when its session times out.
        tracing::warn!(error = %err, "no thread to close a Kafka consumer on; leaving it open");
        finished();
    }
}

/// Waits until every consumer dropped so far has closed, at most `timeout`; whether they all did.
pub fn wait_for_closing_consumers(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut open = count();
    while *open > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!(
                consumers = *open,
                "Kafka consumers still leaving their groups at exit"
            );
            return false;
        }
        open = CLOSING
            .1
            .wait_timeout(open, left)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
    }
    true
}

fn count() -> std::sync::MutexGuard<'static, usize> {
    CLOSING
        .0
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn finished() {
    *count() -= 1;
    CLOSING.1.notify_all();
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn a_close_that_never_ends_bounds_the_wait_and_a_quick_one_is_waited_for() {
        let (release, stuck) = mpsc::channel::<()>();
        close_apart(move || {
            let _ = stuck.recv();
        });
        assert!(!wait_for_closing_consumers(Duration::from_millis(50)));
        release.send(()).unwrap();
        assert!(wait_for_closing_consumers(Duration::from_secs(60)));

        let (done, closed) = mpsc::channel();
        close_apart(move || done.send(()).unwrap());
        assert!(wait_for_closing_consumers(Duration::from_secs(60)));
        closed
            .try_recv()
            .expect("the close ran before the wait returned");
    }
}
