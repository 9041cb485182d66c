//! A tiny HTTP/1.1 server on loopback that records requests and replies with
//! canned answers or faults, on its own thread and runtime (so blocking and
//! async clients can both use it).
#![allow(dead_code, unreachable_pub)]

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::macros::datetime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use traffic_sentinel_client::{MonitorConfig, MonitorConfigBuilder};
use usage_model::{QueryTag, TimeInterval, TrafficQuery};

/// What the server does with one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response with this status and body.
    Answer { status: u16, body: Vec<u8> },
    /// A 302 to another place.
    Redirect,
    /// Declares `declared` bytes, sends `sent`, then closes the connection.
    DropMidBody { declared: usize, sent: Vec<u8> },
    /// Waits, then does the inner reply.
    Delay(Duration, Box<Reply>),
    /// A 200 without length, repeating `row` until `total` bytes are sent
    /// or the client goes away.
    Endless { row: Vec<u8>, total: u64 },
    /// A 200 declaring `length` bytes, then sending nothing for a while.
    Declared { length: u64 },
}

impl Reply {
    pub fn ok(body: &str) -> Reply {
        Reply::Answer {
            status: 200,
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Answer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }
}

/// A request as the server read it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    replies: Vec<Reply>,
    requests: Mutex<Vec<Recorded>>,
    written: AtomicU64,
}

/// The server; it lives until the test process ends.
pub struct TestServer {
    pub url: String,
    state: Arc<State>,
}

impl TestServer {
    /// Serves `replies` in order, repeating the last one.
    pub fn start(replies: Vec<Reply>) -> TestServer {
        assert!(!replies.is_empty());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            replies,
            requests: Mutex::new(Vec::new()),
            written: AtomicU64::new(0),
        });
        let server_state = Arc::clone(&state);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    tokio::spawn(serve(stream, Arc::clone(&server_state)));
                }
            });
        });
        TestServer { url, state }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Body bytes the server managed to write, over all responses.
    pub fn bytes_written(&self) -> u64 {
        self.state.written.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let Some(recorded) = read_request(&mut stream).await else {
        return;
    };
    let reply = {
        let mut requests = state.requests.lock().unwrap();
        requests.push(recorded);
        let index = (requests.len() - 1).min(state.replies.len() - 1);
        state.replies[index].clone()
    };
    respond(&mut stream, reply, &state).await;
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buffer[..header_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map_or(0, |(_, value)| value.parse().unwrap());
    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Recorded {
        method,
        path,
        headers,
        body: String::from_utf8(body).unwrap(),
    })
}

async fn respond(stream: &mut TcpStream, reply: Reply, state: &State) {
    let mut reply = reply;
    while let Reply::Delay(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    match reply {
        Reply::Answer { status, body } => {
            let content_type = if body.starts_with(b"<") {
                "text/html"
            } else {
                "text/plain"
            };
            let head = format!(
                "HTTP/1.1 {status} Canned\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            if stream.write_all(&body).await.is_ok() {
                state.written.fetch_add(body.len() as u64, Ordering::SeqCst);
            }
        }
        Reply::Redirect => {
            let head = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
        }
        Reply::DropMidBody { declared, sent } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&sent).await;
            let _ = stream.flush().await;
            // Dropping the stream closes the connection mid-body.
        }
        Reply::Endless { row, total } => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes()).await;
            let block: Vec<u8> = row.iter().copied().cycle().take(row.len() * 1024).collect();
            let mut sent = 0u64;
            while sent < total {
                if stream.write_all(&block).await.is_err() {
                    break;
                }
                sent += block.len() as u64;
                state
                    .written
                    .fetch_add(block.len() as u64, Ordering::SeqCst);
            }
        }
        Reply::Declared { length } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        Reply::Delay(..) => unreachable!("delays are unwrapped above"),
    }
}

pub fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Tag 7 over `203.0.113.7` and `2001:db8::1`, 10:00–11:00 UTC.
pub fn query() -> TrafficQuery {
    TrafficQuery {
        tag: QueryTag(7),
        interval: TimeInterval::new(
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 11:00 UTC),
        )
        .unwrap(),
        ips: vec![ip("203.0.113.7"), ip("2001:db8::1")],
    }
}

/// A valid answer to [`query`]: the IPv6 address only received.
pub const ANSWER: &str = "s,7,203.0.113.7,1200\nr,7,203.0.113.7,300\nr,7,2001:db8::1,80\nend,3\n";

/// A configuration for `server` with short timeouts and backoffs.
pub fn fast_config(server: &TestServer) -> MonitorConfigBuilder {
    MonitorConfig::builder(&server.url)
        .connect_timeout(Duration::from_secs(2))
        .total_timeout(Duration::from_secs(5))
        .retries(2)
        .retry_backoff(Duration::from_millis(5))
        .max_retry_backoff(Duration::from_millis(20))
}

/// A loopback URL nothing listens on.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}
