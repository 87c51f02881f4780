//! A tiny scripted HTTP/1.1 server for the registry tests: a thread per connection,
//! keep-alive, a request log, and replies that can lie about their length, stall, close
//! early or arrive slowly.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `Content-Length` to announce instead of the body's length.
    pub length: Option<usize>,
    /// No `Content-Length`: the body ends when the connection closes.
    pub close_delimited: bool,
    /// Send this many body bytes, then stall (until the server is dropped).
    pub stall_after: Option<usize>,
    /// Stall before sending anything.
    pub stall_before_headers: bool,
    /// Wait this long before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }

    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 200,
            body: body.into(),
            ..Reply::default()
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn redirect(location: impl Into<String>) -> Reply {
        Reply::status(307).header("Location", location)
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

struct Shared {
    handler: Box<Handler>,
    log: Mutex<Vec<Request>>,
    stop: AtomicBool,
    blobs_in_flight: AtomicUsize,
    max_blobs_in_flight: AtomicUsize,
}

/// A listening server; stops (and ends stalls) when dropped.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Server {
    /// Listens on `ip:0` (e.g. 127.0.0.1 or 127.0.0.2).
    pub fn start(ip: &str, handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind((ip, 0)).expect("bind the mock server");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            handler: Box::new(handler),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            blobs_in_flight: AtomicUsize::new(0),
            max_blobs_in_flight: AtomicUsize::new(0),
        });
        let accept_shared = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let conn_shared = accept_shared.clone();
                std::thread::spawn(move || serve(stream, &conn_shared));
            }
        });
        Server { addr, shared }
    }

    /// `ip:port`, as a registry reference spells it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.log.lock().unwrap().clone()
    }

    /// Requests whose path (without query) starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.route().starts_with(prefix))
            .collect()
    }

    /// The most blob requests that were being answered at once.
    pub fn max_blobs_in_flight(&self) -> usize {
        self.shared.max_blobs_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    loop {
        let Some(request) = read_request(&mut reader) else {
            return;
        };
        shared.log.lock().unwrap().push(request.clone());
        let is_blob = request.route().contains("/blobs/");
        if is_blob {
            let now = shared.blobs_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            shared.max_blobs_in_flight.fetch_max(now, Ordering::SeqCst);
        }
        let reply = (shared.handler)(&request);
        let keep = respond(&mut stream, &reply, shared);
        if is_blob {
            shared.blobs_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        if !keep {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    }
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let _method = parts.next()?;
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Some(Request { path, headers })
}

/// Writes the reply; false when the connection must close afterwards.
fn respond(stream: &mut TcpStream, reply: &Reply, shared: &Shared) -> bool {
    if !reply.delay.is_zero() {
        std::thread::sleep(reply.delay);
    }
    if reply.stall_before_headers {
        stall(shared);
        return false;
    }
    let mut head = format!("HTTP/1.1 {} Mock\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if reply.close_delimited {
        head.push_str("Connection: close\r\n");
    } else {
        let len = reply.length.unwrap_or(reply.body.len());
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str("\r\n");
    if stream.write_all(head.as_bytes()).is_err() {
        return false;
    }
    let send = reply
        .stall_after
        .unwrap_or(reply.body.len())
        .min(reply.body.len());
    if stream.write_all(&reply.body[..send]).is_err() {
        return false;
    }
    let _ = stream.flush();
    if reply.stall_after.is_some() {
        stall(shared);
        return false;
    }
    let honest = reply.length.is_none_or(|l| l == reply.body.len());
    !reply.close_delimited && honest
}

/// Sleeps until the server is dropped (at most a minute).
fn stall(shared: &Shared) {
    let start = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
}
