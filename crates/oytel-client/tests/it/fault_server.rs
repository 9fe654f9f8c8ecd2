//! A tiny HTTP/1.1 server that misbehaves on purpose: each request gets the next scripted
//! action. It records every request (method, path, idempotency key, arrival time).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with this status, extra headers and JSON body.
    Respond(u16, Vec<(&'static str, String)>, String),
    /// Close the connection without answering.
    Drop,
    /// Wait this long, then answer 200 `{}`.
    Stall(Duration),
    /// Forward to a real server and relay its answer.
    Forward(String),
    /// Forward to a real server, then close the connection without relaying the answer.
    ForwardThenDrop(String),
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Seen {
    /// The value of a header (names are stored lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The headers as a `HeaderMap`.
    pub fn header_map(&self) -> reqwest::header::HeaderMap {
        let mut map = reqwest::header::HeaderMap::new();
        for (k, v) in &self.headers {
            map.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                reqwest::header::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }
}

#[derive(Clone)]
pub struct FaultServer {
    pub base: String,
    script: Arc<Mutex<VecDeque<Action>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn respond(stream: &mut TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
}

async fn forward(base: &str, request: &Request) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let client = reqwest::Client::new();
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
    let mut outgoing = client
        .request(method, format!("{base}{}", request.path))
        .body(request.body.clone());
    for (k, v) in &request.headers {
        if !matches!(k.as_str(), "host" | "content-length" | "connection") {
            outgoing = outgoing.header(k.as_str(), v.as_str());
        }
    }
    let response = outgoing.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-length" | "transfer-encoding" | "connection"
            )
        })
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

impl FaultServer {
    pub async fn start(script: Vec<Action>) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = FaultServer {
            base: format!("http://{}", listener.local_addr().unwrap()),
            script: Arc::new(Mutex::new(script.into())),
            seen: Arc::new(Mutex::new(Vec::new())),
        };
        let this = server.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(this.clone().serve(stream));
            }
        });
        server
    }

    async fn serve(self, mut stream: TcpStream) {
        while let Some(request) = read_request(&mut stream).await {
            self.seen.lock().unwrap().push(Seen {
                method: request.method.clone(),
                path: request.path.clone(),
                headers: request.headers.clone(),
                body: request.body.clone(),
                at: Instant::now(),
            });
            let action = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Action::Drop);
            match action {
                Action::Respond(status, headers, body) => {
                    let mut all: Vec<(String, String)> = headers
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect();
                    all.push(("content-type".into(), "application/json".into()));
                    respond(&mut stream, status, &all, body.as_bytes()).await;
                }
                Action::Drop => return,
                Action::Stall(wait) => {
                    tokio::time::sleep(wait).await;
                    respond(&mut stream, 200, &[], b"{}").await;
                }
                Action::Forward(base) => {
                    let (status, headers, body) = forward(&base, &request).await;
                    respond(&mut stream, status, &headers, &body).await;
                }
                Action::ForwardThenDrop(base) => {
                    let _ = forward(&base, &request).await;
                    return;
                }
            }
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
