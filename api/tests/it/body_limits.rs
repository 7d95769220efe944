//! Bodies over `MAX_BODY_BYTES`, as real clients send them: announced with `Expect:
//! 100-continue` (curl does this for large bodies), uploaded whole before the answer is read
//! (Python's urllib), and over HTTP/2. Every one of them reads a 413, and the server keeps serving.

use std::io::{Read, Write};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestApp, spawn_app, spawn_app_with};

/// The routes with a body: REST, GraphQL and the compatibility routes.
const ROUTES: [&str; 4] = ["/fit/big", "/predict/big", "/graphql", "/detect"];

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads an answer's head (up to the blank line) from a raw socket, within the deadline.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let reading = async {
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("read the answer");
            assert!(
                n > 0,
                "closed before an answer: {:?}",
                String::from_utf8_lossy(&head)
            );
            head.push(byte[0]);
        }
    };
    tokio::time::timeout(crate::support::DEADLINE, reading)
        .await
        .expect("an answer within the deadline");
    String::from_utf8(head).expect("a text head")
}

#[tokio::test]
async fn a_body_announced_over_the_limit_gets_413_without_100_continue() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "4096")]).await;
    for route in ROUTES {
        let mut stream = tokio::net::TcpStream::connect(address(&app)).await.unwrap();
        let head = format!(
            "POST {route} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
             content-length: 4097\r\nexpect: 100-continue\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Nothing of the body is sent: the answer must come without it.
        let answer = read_head(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 413"),
            "{route}: the first answer is {answer:?}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    // Within the limit, the client is told to go on and the request is served.
    let mut stream = tokio::net::TcpStream::connect(address(&app)).await.unwrap();
    let body = r#"{"data":[{"timestamp":1,"value":1},{"timestamp":2,"value":2},{"timestamp":3,"value":4}]}"#;
    let head = format!(
        "POST /fit/small HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 100"));
    stream.write_all(body.as_bytes()).await.unwrap();
    assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 200"));
}

/// What urllib does: send the head and the whole body, and only then read. The server answers
/// 413 early, but drains what the client still sends instead of closing on it (a close with
/// unread data is a reset, and the client would see a broken pipe, not the answer).
fn upload_whole_then_read(address: &str, route: &str, body_bytes: usize) -> String {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(crate::support::DEADLINE))
        .unwrap();
    let head = format!(
        "POST {route} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {body_bytes}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    let chunk = vec![b' '; 64 * 1024];
    let mut left = body_bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).unwrap_or_else(|e| {
            panic!(
                "{route}: sending the body failed after {} bytes: {e}",
                body_bytes - left
            )
        });
        left -= n;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_client_that_uploads_a_34_mb_body_before_reading_reads_the_413() {
    let app = spawn_app().await;
    let address = address(&app);
    // Four at once, on every route with a body.
    let uploads: Vec<_> = ROUTES
        .iter()
        .map(|route| {
            let (address, route) = (address.clone(), route.to_string());
            tokio::task::spawn_blocking(move || {
                (
                    route.clone(),
                    upload_whole_then_read(&address, &route, 34 * 1024 * 1024),
                )
            })
        })
        .collect();
    for upload in uploads {
        let (route, answer) = upload.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{route}: {answer:?}");
        assert!(
            answer.contains("2097152"),
            "{route}: names the limit: {answer}"
        );
    }
    assert_eq!(app.get("/livez").await.status, 200, "still serving");
}

#[tokio::test]
async fn http2_clients_get_the_same_answers_and_the_same_413() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "4096")]).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let health = client
        .get(format!("{}/healthcheck", app.base))
        .send()
        .await
        .expect("HTTP/2 by prior knowledge");
    assert_eq!(health.version(), reqwest::Version::HTTP_2);
    assert_eq!(health.status(), 200);
    for route in ROUTES {
        let big = client
            .post(format!("{}{route}", app.base))
            .header("content-type", "application/json")
            .body(vec![b' '; 1024 * 1024])
            .send()
            .await
            .unwrap_or_else(|e| panic!("{route}: {e}"));
        assert_eq!(big.status(), 413, "{route}");
        let text = big.text().await.unwrap();
        assert!(text.contains("4096"), "{route}: {text}");
    }
    let fit = client
        .post(format!("{}/fit/h2", app.base))
        .json(&serde_json::json!({ "timestamps": [1, 2, 3], "values": [1.0, 2.0, 4.0] }))
        .send()
        .await
        .unwrap();
    assert_eq!(fit.status(), 200, "the same connection still serves");
}

/// A connection the server closes (here: idle past the header timeout) while the client keeps
/// sending is still closed within the linger bounds, and gives its place back.
#[tokio::test]
async fn a_lingering_connection_is_bounded_in_time() {
    let app = spawn_app_with(&[("MAX_BODY_BYTES", "4096"), ("HTTP_LINGER_SECS", "0.5")]).await;
    let mut stream = tokio::net::TcpStream::connect(address(&app)).await.unwrap();
    stream
        .write_all(b"POST /fit/x HTTP/1.1\r\nhost: t\r\ncontent-length: 100000000\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut stream).await.starts_with("HTTP/1.1 413"));
    // Keep sending: the server drains for half a second, then closes.
    let sending = async {
        let chunk = vec![b' '; 16 * 1024];
        loop {
            if stream.write_all(&chunk).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(crate::support::DEADLINE, sending)
        .await
        .expect("the server ends a lingering connection");
}
