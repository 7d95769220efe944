//! A GraphQL-over-WebSocket client for tests, speaking `graphql-transport-ws` or the legacy
//! `graphql-ws` (subscriptions-transport-ws) through tokio-tungstenite, as a real client would.

use std::time::Duration;

use async_graphql::futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws` (the graphql-ws library).
    TransportWs,
    /// `graphql-ws` (the legacy subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::TransportWs => "graphql-transport-ws",
            Protocol::Legacy => "graphql-ws",
        }
    }
}

pub struct GraphqlWs {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    protocol: Protocol,
}

/// How a connection attempt ended.
#[derive(Debug)]
pub enum Refused {
    /// The server closed the connection with this code and reason.
    Closed(u16, String),
    /// The server answered with an error message (legacy protocol).
    Error(Value),
}

impl GraphqlWs {
    /// Connects to `base`'s `/graphql/ws` (base is `http://host:port`) and completes
    /// `connection_init` with `payload`.
    pub async fn connect(base: &str, protocol: Protocol, payload: Value) -> Result<Self, Refused> {
        let url = format!("{}/graphql/ws", base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().expect("a WebSocket URL");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocol.name().parse().expect("header value"),
        );
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("WebSocket handshake");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol.name()),
            "the server speaks the protocol asked for"
        );
        let mut client = Self { socket, protocol };
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        loop {
            match client.receive().await {
                Incoming::Message(m) if m["type"] == "connection_ack" => return Ok(client),
                Incoming::Message(m) if m["type"] == "ka" => {}
                Incoming::Message(m) => return Err(Refused::Error(m)),
                Incoming::Closed(code, reason) => return Err(Refused::Closed(code, reason)),
            }
        }
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("WebSocket send");
    }

    async fn receive(&mut self) -> Incoming {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(&text).expect("JSON from the server");
                    if self.protocol == Protocol::TransportWs && message["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Incoming::Message(message);
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Incoming::Closed(code, reason);
                }
                Some(Ok(_)) => {} // pings are answered by tungstenite itself
                Some(Err(err)) => return Incoming::Closed(1006, err.to_string()),
                None => return Incoming::Closed(1006, "stream ended".into()),
            }
        }
    }

    /// Sends `text` as one WebSocket text message, whatever it holds.
    pub async fn send_text(&mut self, text: String) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("WebSocket send");
    }

    /// How the server closes the connection (code and reason), if it does `within`.
    pub async fn closed(&mut self, within: Duration) -> Option<(u16, String)> {
        let closed = async {
            loop {
                if let Incoming::Closed(code, reason) = self.receive().await {
                    return (code, reason);
                }
            }
        };
        tokio::time::timeout(within, closed).await.ok()
    }

    /// Starts subscription `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = match self.protocol {
            Protocol::TransportWs => "subscribe",
            Protocol::Legacy => "start",
        };
        self.send(json!({
            "id": id, "type": kind, "payload": { "query": query, "variables": variables }
        }))
        .await;
    }

    /// The next result of any subscription (its id and `payload`), or `None` if nothing
    /// arrives `within`. Panics on an error or a closed connection.
    pub async fn next_result(&mut self, within: Duration) -> Option<(String, Value)> {
        let next = async {
            loop {
                match self.receive().await {
                    Incoming::Message(m) if m["type"] == "next" || m["type"] == "data" => {
                        let id = m["id"].as_str().unwrap_or_default().to_owned();
                        return (id, m["payload"].clone());
                    }
                    Incoming::Message(m) if m["type"] == "ka" => {}
                    Incoming::Message(m) => panic!("unexpected message {m}"),
                    Incoming::Closed(code, reason) => panic!("closed: {code} {reason}"),
                }
            }
        };
        tokio::time::timeout(within, next).await.ok()
    }
}

impl GraphqlWs {
    /// The next message of any kind but keep-alives, or `None` if nothing arrives `within`.
    /// Panics on a closed connection.
    pub async fn next_message(&mut self, within: Duration) -> Option<Value> {
        let next = async {
            loop {
                match self.receive().await {
                    Incoming::Message(m) if m["type"] == "ka" => {}
                    Incoming::Message(m) => return m,
                    Incoming::Closed(code, reason) => panic!("closed: {code} {reason}"),
                }
            }
        };
        tokio::time::timeout(within, next).await.ok()
    }
}

enum Incoming {
    Message(Value),
    Closed(u16, String),
}
