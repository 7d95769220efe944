//! The rules of a GraphQL WebSocket connection that async-graphql does not enforce, checked on
//! every message before async-graphql sees it: one `connection_init` (a second closes with 4429),
//! a subscription id used once at a time (a duplicate closes with 4409, as graphql-transport-ws
//! asks), at most `GRAPHQL_WS_MAX_SUBSCRIPTIONS` open on a connection and
//! `GRAPHQL_MAX_SUBSCRIPTIONS` on the gateway (past them the connection closes with 4429 and a
//! reason naming the limit). The connection's open ids are counted against the gateway's total
//! until they complete or the connection ends.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

/// What one gateway allows its WebSocket clients.
#[derive(Debug, Clone)]
pub struct WsLimits {
    /// How long a client has to send `connection_init` (`GRAPHQL_WS_INIT_TIMEOUT_SECS`).
    pub init_timeout: Duration,
    /// Most operations open at once on one connection (`GRAPHQL_WS_MAX_SUBSCRIPTIONS`).
    pub per_connection: usize,
    /// Most operations open at once on the gateway (`GRAPHQL_MAX_SUBSCRIPTIONS`).
    pub per_gateway: usize,
    /// Bytes of live results one connection may have waiting to be sent (beyond the kernel's
    /// socket buffer) before its subscriptions miss results and get `LAGGED`
    /// (`GRAPHQL_WS_OUTBOX_BYTES`).
    pub outbox_bytes: usize,
}

impl Default for WsLimits {
    fn default() -> Self {
        Self {
            init_timeout: Duration::from_secs(10),
            per_connection: 100,
            per_gateway: 100_000,
            outbox_bytes: 64 * 1024,
        }
    }
}

/// Takes one of the gateway's `limit` places for an open operation (WebSocket or HTTP stream),
/// counted in `open`, if one is free; the taker gives it back with `fetch_sub(1)`.
pub fn take_place(open: &AtomicUsize, limit: usize) -> bool {
    if open.fetch_add(1, Ordering::SeqCst) >= limit {
        open.fetch_sub(1, Ordering::SeqCst);
        return false;
    }
    true
}

/// Why a connection is closed: the close code and its reason.
pub type Violation = (u16, String);

/// One connection's bookkeeping.
pub struct ConnectionRules {
    limits: WsLimits,
    gateway_open: Arc<AtomicUsize>,
    open: HashSet<String>,
    inits: u32,
    violation: Option<Violation>,
    /// The id of the last `subscribe` let through, until the executor takes it.
    subscribing: Option<String>,
}

impl ConnectionRules {
    pub fn new(limits: WsLimits, gateway_open: Arc<AtomicUsize>) -> Self {
        Self {
            limits,
            gateway_open,
            open: HashSet::new(),
            inits: 0,
            violation: None,
            subscribing: None,
        }
    }

    /// The rule a client message broke, if any (then the connection must close).
    pub fn incoming(&mut self, text: &str) -> Result<(), Violation> {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            // async-graphql answers malformed messages itself.
            return Ok(());
        };
        let id = message["id"].as_str().unwrap_or_default();
        let verdict = match message["type"].as_str().unwrap_or_default() {
            "connection_init" => {
                self.inits += 1;
                if self.inits > 1 {
                    Err((4429, "Too many initialisation requests".to_owned()))
                } else {
                    Ok(())
                }
            }
            "subscribe" | "start" => {
                self.subscribing = Some(id.to_owned());
                self.open_operation(id)
            }
            "complete" | "stop" => {
                self.close_operation(id);
                Ok(())
            }
            _ => Ok(()),
        };
        if let Err(violation) = &verdict {
            self.violation = Some(violation.clone());
        }
        verdict
    }

    /// The id of the `subscribe` just let through (async-graphql starts its operation right
    /// after reading it).
    pub fn take_subscribing(&mut self) -> Option<String> {
        self.subscribing.take()
    }

    /// Notes a server message that ends an operation.
    pub fn outgoing(&mut self, text: &str) {
        // Results are most of the traffic: only a message that may end an operation is parsed.
        if !text.contains("\"complete\"") && !text.contains("\"error\"") {
            return;
        }
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if matches!(message["type"].as_str(), Some("complete" | "error"))
            && let Some(id) = message["id"].as_str()
        {
            self.close_operation(id);
        }
    }

    /// The rule broken, once one was.
    pub fn violation(&self) -> Option<Violation> {
        self.violation.clone()
    }

    fn open_operation(&mut self, id: &str) -> Result<(), Violation> {
        if self.open.contains(id) {
            return Err((4409, format!("Subscriber for {id} already exists")));
        }
        if self.open.len() >= self.limits.per_connection {
            return Err((
                4429,
                format!(
                    "Too many subscriptions on this connection: the limit is {} \
                     (GRAPHQL_WS_MAX_SUBSCRIPTIONS)",
                    self.limits.per_connection
                ),
            ));
        }
        if !take_place(&self.gateway_open, self.limits.per_gateway) {
            return Err((
                4429,
                format!(
                    "The gateway holds its maximum of {} subscriptions \
                     (GRAPHQL_MAX_SUBSCRIPTIONS): try another instance or later",
                    self.limits.per_gateway
                ),
            ));
        }
        self.open.insert(id.to_owned());
        Ok(())
    }

    fn close_operation(&mut self, id: &str) {
        if self.open.remove(id) {
            self.gateway_open.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for ConnectionRules {
    fn drop(&mut self) {
        self.gateway_open
            .fetch_sub(self.open.len(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(
        per_connection: usize,
        per_gateway: usize,
        open: &Arc<AtomicUsize>,
    ) -> ConnectionRules {
        ConnectionRules::new(
            WsLimits {
                init_timeout: Duration::from_secs(1),
                per_connection,
                per_gateway,
                ..WsLimits::default()
            },
            open.clone(),
        )
    }

    const INIT: &str = r#"{"type":"connection_init"}"#;
    fn subscribe(id: &str) -> String {
        format!(
            r#"{{"type":"subscribe","id":"{id}","payload":{{"query":"subscription {{ x }}"}}}}"#
        )
    }

    #[test]
    fn one_init_and_one_operation_per_id() {
        let open = Arc::new(AtomicUsize::new(0));
        let mut r = rules(10, 100, &open);
        assert!(r.incoming(INIT).is_ok());
        assert!(r.incoming(&subscribe("a")).is_ok());
        assert_eq!(r.incoming(&subscribe("a")).unwrap_err().0, 4409);
        assert_eq!(r.violation().unwrap().0, 4409);
        let mut r = rules(10, 100, &open);
        r.incoming(INIT).unwrap();
        assert_eq!(r.incoming(INIT).unwrap_err().0, 4429);
    }

    #[test]
    fn an_id_may_be_reused_once_its_operation_completed() {
        let open = Arc::new(AtomicUsize::new(0));
        let mut r = rules(10, 100, &open);
        r.incoming(&subscribe("a")).unwrap();
        r.outgoing(r#"{"type":"complete","id":"a"}"#);
        r.incoming(&subscribe("a")).unwrap();
        r.incoming(r#"{"type":"complete","id":"a"}"#).unwrap();
        r.incoming(&subscribe("a")).unwrap();
        assert_eq!(open.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn caps_per_connection_and_per_gateway_and_release_on_close() {
        let open = Arc::new(AtomicUsize::new(0));
        let mut first = rules(2, 3, &open);
        first.incoming(&subscribe("a")).unwrap();
        first.incoming(&subscribe("b")).unwrap();
        let refused = first.incoming(&subscribe("c")).unwrap_err();
        assert_eq!(refused.0, 4429);
        assert!(
            refused.1.contains("GRAPHQL_WS_MAX_SUBSCRIPTIONS"),
            "{}",
            refused.1
        );
        let mut second = rules(2, 3, &open);
        second.incoming(&subscribe("a")).unwrap();
        let refused = second.incoming(&subscribe("b")).unwrap_err();
        assert!(
            refused.1.contains("GRAPHQL_MAX_SUBSCRIPTIONS"),
            "{}",
            refused.1
        );
        assert_eq!(open.load(Ordering::SeqCst), 3);
        drop(first);
        assert_eq!(open.load(Ordering::SeqCst), 1);
        second.incoming(&subscribe("b")).unwrap();
    }
}
