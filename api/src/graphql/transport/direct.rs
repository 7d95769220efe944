//! The WebSocket fast path for live subscriptions: once a subscription has caught up (replay
//! and queued events sent through async-graphql as usual), the live feed's follower writes its
//! results straight to the subscriber's socket. Each event is rendered once per distinct
//! subscription request (query, variables, operation and access) by async-graphql itself, then
//! framed for each subscriber with its own id: 10,000 subscribers of one query cost one GraphQL
//! execution and 10,000 socket writes, with no task woken per subscriber.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_graphql::futures_util::StreamExt;
use async_graphql::futures_util::future::BoxFuture;
use async_graphql::http::WebSocketProtocols;
use async_graphql::{Data, Request, Variables};
use tokio::sync::OnceCell;

use anomaly_workers::events::Scored;
use anomaly_workers::fanout::{Recipient, Render};

use super::socket::{Outbox, Owed, Sent, text_frame_header};
use crate::auth::Access;
use crate::graphql::schema::AnomalySchema;
use crate::graphql::schema::subscriptions::{DirectRecipient, DirectRoute, Interest, RenderOne};

/// A WebSocket subscription's route to the follower (in its request data as a `DirectRoute`),
/// when its results may be written by the follower.
#[derive(Clone)]
pub struct DirectDelivery {
    pub outbox: Arc<Outbox>,
    pub id: String,
    pub protocol: WebSocketProtocols,
    pub renderer: Arc<Renderer>,
}

impl DirectRoute for DirectDelivery {
    fn recipient(
        &self,
        interest: Arc<Interest>,
    ) -> BoxFuture<'_, Option<Arc<dyn DirectRecipient>>> {
        Box::pin(async move {
            let subscriber = DirectSubscriber::new(self.clone(), interest).await?;
            Some(subscriber as Arc<dyn DirectRecipient>)
        })
    }
}

/// Stands for the missed count in a rendered lagged notice (then replaced by the real one).
const MISSED_PLACEHOLDER: u64 = 987_654_321_987_654_321;

/// A lagged notice's payload in pieces, shared by the subscribers of one request.
type Notice = Arc<[String]>;

/// One distinct subscription request, rendering events as its `next` payload.
pub struct Renderer {
    schema: AnomalySchema,
    query: String,
    variables: Variables,
    operation_name: Option<String>,
    session: Arc<Data>,
    /// The lagged notice's payload, split where its missed count goes.
    notice: OnceCell<Notice>,
}

impl Renderer {
    async fn execute(&self, item: RenderOne) -> Option<String> {
        let mut request = Request::new(self.query.clone())
            .variables(self.variables.clone())
            .data(item);
        request.operation_name = self.operation_name.clone();
        let mut results = self
            .schema
            .execute_stream_with_session_data(request, self.session.clone());
        let response = results.next().await?;
        serde_json::to_string(&response).ok()
    }

    /// The lagged notice's payload in pieces: joined with a missed count, it is the notice.
    async fn notice(&self) -> Option<Notice> {
        self.notice
            .get_or_try_init(|| async {
                let text = self.execute(RenderOne::Missed(MISSED_PLACEHOLDER)).await;
                let text = text.ok_or(())?;
                let placeholder = MISSED_PLACEHOLDER.to_string();
                Ok::<_, ()>(text.split(&placeholder).map(str::to_owned).collect())
            })
            .await
            .ok()
            .cloned()
    }
}

impl Render for Renderer {
    fn render(
        &self,
        event: Arc<Scored>,
    ) -> Pin<Box<dyn Future<Output = Option<Arc<str>>> + Send + '_>> {
        Box::pin(async move { self.execute(RenderOne::Event(event)).await.map(Arc::from) })
    }
}

/// What makes two subscription requests render alike.
#[derive(PartialEq, Eq, Hash)]
struct RenderKey {
    access: Access,
    query: String,
    variables: String,
    operation_name: Option<String>,
}

/// The gateway's renderers, one per distinct live request.
#[derive(Default)]
pub struct Renderers {
    by_request: Mutex<HashMap<RenderKey, Weak<Renderer>>>,
}

impl Renderers {
    /// The renderer of `request` made with `access` (shared with every subscription alike).
    pub fn get(
        &self,
        schema: &AnomalySchema,
        request: &Request,
        access: Access,
        session: &Arc<Data>,
    ) -> Arc<Renderer> {
        let key = RenderKey {
            access,
            query: request.query.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
            operation_name: request.operation_name.clone(),
        };
        let mut by_request = self.by_request.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(renderer) = by_request.get(&key).and_then(Weak::upgrade) {
            return renderer;
        }
        let renderer = Arc::new(Renderer {
            schema: schema.clone(),
            query: request.query.clone(),
            variables: request.variables.clone(),
            operation_name: request.operation_name.clone(),
            session: session.clone(),
            notice: OnceCell::new(),
        });
        // Forget the requests nobody subscribes with any more, now and then.
        if by_request.len() >= 64 && by_request.len().is_power_of_two() {
            by_request.retain(|_, renderer| renderer.strong_count() > 0);
        }
        by_request.insert(key, Arc::downgrade(&renderer));
        renderer
    }
}

/// A subscription the follower writes to.
pub struct DirectSubscriber {
    me: Weak<Self>,
    interest: Arc<Interest>,
    outbox: Arc<Outbox>,
    renderer: Arc<dyn Render>,
    notice: Notice,
    /// `{"type":"next","id":…,"payload":` (or `data` on the legacy protocol).
    prefix: Box<[u8]>,
    debt: Mutex<Debt>,
}

#[derive(Default)]
struct Debt {
    /// Events not sent since the last notice.
    missed: u64,
    /// Waiting in the outbox's owed list.
    owed: bool,
    /// The subscription ended: nothing more is written for it.
    finished: bool,
}

impl DirectSubscriber {
    /// `None` if the lagged notice cannot be rendered (the subscription stays on the slow path).
    async fn new(delivery: DirectDelivery, interest: Arc<Interest>) -> Option<Arc<Self>> {
        let notice = delivery.renderer.notice().await?;
        let renderer: Arc<dyn Render> = delivery.renderer;
        let id = serde_json::to_string(&delivery.id).ok()?;
        Some(Self::with(
            delivery.outbox,
            &id,
            delivery.protocol,
            renderer,
            notice,
            interest,
        ))
    }

    /// A subscriber `id` (as JSON) writing to `outbox`, with its lagged notice in pieces.
    fn with(
        outbox: Arc<Outbox>,
        id: &str,
        protocol: WebSocketProtocols,
        renderer: Arc<dyn Render>,
        notice: Notice,
        interest: Arc<Interest>,
    ) -> Arc<Self> {
        let kind = match protocol {
            WebSocketProtocols::GraphQLWS => "next",
            WebSocketProtocols::SubscriptionsTransportWS => "data",
        };
        let prefix = format!(r#"{{"type":"{kind}","id":{id},"payload":"#);
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            interest,
            outbox,
            renderer,
            notice,
            prefix: prefix.into_bytes().into_boxed_slice(),
            debt: Mutex::default(),
        })
    }

    fn debt(&self) -> MutexGuard<'_, Debt> {
        self.debt.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, payload: &str) -> Sent {
        let (header, used) = text_frame_header(self.prefix.len() + payload.len() + 1);
        self.outbox
            .try_send(&[&header[..used], &self.prefix, payload.as_bytes(), b"}"])
    }

    /// Sends the lagged notice owed, if any; `false` if the connection has no room for it yet.
    fn settle_notice(&self, debt: &mut Debt) -> bool {
        if debt.missed == 0 {
            return true;
        }
        let notice = self.notice.join(&debt.missed.to_string());
        match self.send(&notice) {
            Sent::Full => false,
            Sent::Taken | Sent::Closed => {
                debt.missed = 0;
                true
            }
        }
    }

    fn fall_behind(&self, debt: &mut Debt, missed: u64) {
        debt.missed += missed;
        ::metrics::counter!("anomaly_subscriber_missed_total").increment(missed);
        if !debt.owed {
            debt.owed = true;
            self.outbox.owe(self.me.clone());
        }
    }
}

impl Recipient for DirectSubscriber {
    fn renderer(&self) -> &Arc<dyn Render> {
        &self.renderer
    }

    fn deliver(&self, event: &Scored, rendered: &str) {
        if !self.interest.wants(event) {
            return;
        }
        let mut debt = self.debt();
        if debt.finished {
            return;
        }
        if !self.settle_notice(&mut debt) || self.send(rendered) == Sent::Full {
            self.fall_behind(&mut debt, 1);
        }
    }

    fn missed(&self, missed: u64) {
        let mut debt = self.debt();
        if debt.finished {
            return;
        }
        debt.missed += missed;
        if !self.settle_notice(&mut debt) {
            self.fall_behind(&mut debt, 0);
        }
    }
}

impl DirectRecipient for DirectSubscriber {
    fn finish(&self) {
        self.debt().finished = true;
    }
}

impl Owed for DirectSubscriber {
    fn settle(&self) {
        let mut debt = self.debt();
        debt.owed = false;
        if !debt.finished && !self.settle_notice(&mut debt) {
            self.fall_behind(&mut debt, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpSocket, TcpStream};

    struct Unused;

    impl Render for Unused {
        fn render(
            &self,
            _: Arc<Scored>,
        ) -> Pin<Box<dyn Future<Output = Option<Arc<str>>> + Send + '_>> {
            Box::pin(async { None })
        }
    }

    /// The next `count` text frames' payloads, as a client reads them.
    async fn read_frames(client: &mut TcpStream, count: usize) -> Vec<String> {
        let mut bytes = Vec::new();
        let mut frames = Vec::new();
        let mut at = 0;
        while frames.len() < count {
            let mut chunk = [0u8; 16 * 1024];
            let n = client.read(&mut chunk).await.expect("the socket");
            assert!(n > 0, "the server closed after {} frames", frames.len());
            bytes.extend_from_slice(&chunk[..n]);
            while frames.len() < count && bytes.len() >= at + 2 {
                assert_eq!(bytes[at], 0x81, "a whole text frame");
                let (len, header) = match bytes[at + 1] {
                    126 if bytes.len() >= at + 4 => (
                        u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
                        4,
                    ),
                    126 => break,
                    len => (usize::from(len), 2),
                };
                if bytes.len() < at + header + len {
                    break;
                }
                let payload = &bytes[at + header..at + header + len];
                frames.push(String::from_utf8(payload.to_vec()).expect("UTF-8"));
                at += header + len;
            }
        }
        frames
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_misses_results_then_gets_one_lagged_notice_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut client = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read, write) = server.into_split();
        let outbox = Arc::new(Outbox::new(write, 64 * 1024));
        let interest = Interest::new(Box::new(|_| true), None, HashSet::new());
        let subscriber = DirectSubscriber::with(
            outbox.clone(),
            r#""s1""#,
            WebSocketProtocols::GraphQLWS,
            Arc::new(Unused),
            Arc::from([r#"{"missed":"#.to_owned(), "}".to_owned()]),
            Arc::new(interest),
        );
        let event = crate::graphql::schema::subscriptions::alert("s", 1.0);
        let result = |n: u64| format!(r#"{{"n":{n}}}"#);

        // The client reads nothing: past the kernel's buffers and the outbox's budget, results
        // are missed.
        let mut offered = 0;
        while subscriber.debt().missed == 0 {
            offered += 1;
            assert!(offered < 10_000_000, "never fell behind");
            subscriber.deliver(&event, &result(offered));
        }
        subscriber.deliver(&event, &result(offered + 1));
        subscriber.deliver(&event, &result(offered + 2));
        assert_eq!(subscriber.debt().missed, 3);

        // Once it reads again, every result taken arrives whole and in order, then the notice.
        let taken = offered - 1;
        let (drained, frames) = tokio::join!(
            outbox.drained(),
            read_frames(&mut client, usize::try_from(taken).unwrap() + 1)
        );
        drained.unwrap();
        for (n, frame) in (1..=taken).zip(&frames) {
            let expected = format!(r#"{{"type":"next","id":"s1","payload":{}}}"#, result(n));
            assert_eq!(*frame, expected);
        }
        assert_eq!(
            frames.last().unwrap(),
            r#"{"type":"next","id":"s1","payload":{"missed":3}}"#
        );
        assert_eq!(subscriber.debt().missed, 0);

        // Results flow again; none after the subscription finished.
        subscriber.deliver(&event, &result(0));
        subscriber.finish();
        subscriber.deliver(&event, &result(1));
        drop(outbox);
        drop(subscriber);
        let frames = read_frames(&mut client, 1).await;
        assert_eq!(frames, [r#"{"type":"next","id":"s1","payload":{"n":0}}"#]);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }
}
