//! A TCP proxy on 127.0.0.1 the test can cut: every connection through it is dropped and
//! new ones are refused until it is restored. It stands for a backend outage (PostgreSQL
//! stopped) without touching the server the other tests share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bytes from the server to the client are dropped (requests still arrive).
    mute: Arc<AtomicBool>,
    /// Every answer from the server reaches the client this many milliseconds late.
    latency_ms: Arc<AtomicU64>,
    /// Every request from the client reaches the server this many milliseconds late.
    request_latency_ms: Arc<AtomicU64>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forward 127.0.0.1:<port> to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let mute = Arc::new(AtomicBool::new(false));
        let latency_ms = Arc::new(AtomicU64::new(0));
        let request_latency_ms = Arc::new(AtomicU64::new(0));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let cut = cut.clone();
            let mute = mute.clone();
            let latency_ms = latency_ms.clone();
            let request_latency_ms = request_latency_ms.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mute = mute.clone();
                    let latencies = (request_latency_ms.clone(), latency_ms.clone());
                    let task = tokio::spawn(async move {
                        if let Ok(outbound) = TcpStream::connect(target).await {
                            relay(inbound, outbound, mute, latencies).await;
                        }
                    });
                    let mut all = connections.lock().expect("proxy lock");
                    all.retain(|t| !t.is_finished());
                    all.push(task);
                }
            })
        };
        Proxy {
            port,
            cut,
            mute,
            latency_ms,
            request_latency_ms,
            connections,
            accept,
        }
    }

    /// The server's answers are lost from now on (what it receives still arrives): a
    /// request is carried out, its acknowledgement never comes back.
    pub fn mute_replies(&self) {
        self.mute.store(true, Ordering::SeqCst);
    }

    pub fn unmute_replies(&self) {
        self.mute.store(false, Ordering::SeqCst);
    }

    /// A slow backend: each answer arrives `latency` after the server sent it (answers
    /// still stream; this is a delay, not a bandwidth limit).
    pub fn delay_replies(&self, latency: std::time::Duration) {
        self.latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests reach the server `latency` late; what is still on its way when the client
    /// goes away never arrives (a write the client sent just before it died).
    pub fn delay_requests(&self, latency: std::time::Duration) {
        self.request_latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    /// The backend is gone: drop every connection, refuse new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.connections.lock().expect("proxy lock").drain(..) {
            task.abort();
        }
    }

    /// The backend is back.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Copy both ways, each way `latency` late (requests, answers); while `mute`, what the
/// server sends is read and dropped. Either side closing ends the relay, and bytes still
/// delayed are lost with it.
async fn relay(
    inbound: TcpStream,
    outbound: TcpStream,
    mute: Arc<AtomicBool>,
    (request_latency_ms, latency_ms): (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    let (client_read, client_write) = inbound.into_split();
    let (server_read, server_write) = outbound.into_split();
    let no_mute = Arc::new(AtomicBool::new(false));
    tokio::select! {
        _ = pump(client_read, server_write, no_mute, request_latency_ms) => {}
        _ = pump(server_read, client_write, mute, latency_ms) => {}
    }
}

/// Read from one side and write each chunk to the other `latency_ms` after it was read.
/// At the end of the input, what is already due still goes (all of it without latency);
/// what is not is lost.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mute: Arc<AtomicBool>,
    latency_ms: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::{Instant, sleep_until};
    let mut pending: std::collections::VecDeque<(Instant, Vec<u8>)> = Default::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let next_due = pending.front().map(|(at, _)| *at);
        tokio::select! {
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if mute.load(Ordering::SeqCst) {
                    continue;
                }
                let latency = std::time::Duration::from_millis(latency_ms.load(Ordering::SeqCst));
                pending.push_back((Instant::now() + latency, buf[..n].to_vec()));
            }
            _ = async {
                match next_due {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some((_, bytes)) = pending.pop_front()
                    && to.write_all(&bytes).await.is_err()
                {
                    return;
                }
            }
        }
    }
    let now = Instant::now();
    while let Some((at, bytes)) = pending.pop_front() {
        if at > now || to.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A proxy in front of the shared Redis, and the `REDIS_URL` that goes through it.
pub async fn redis_proxy() -> (Proxy, String) {
    let redis = super::shared().redis_url.clone();
    let authority = redis
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .expect("host:port");
    let proxy = Proxy::start(authority.parse().expect("redis address")).await;
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    (proxy, url)
}
