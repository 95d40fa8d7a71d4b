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
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let cut = cut.clone();
            let mute = mute.clone();
            let latency_ms = latency_ms.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mute = mute.clone();
                    let latency_ms = latency_ms.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(outbound) = TcpStream::connect(target).await {
                            relay(inbound, outbound, mute, latency_ms).await;
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

/// Copy both ways; while `mute`, what the server sends is read and dropped; with a
/// latency, each chunk the server sends is written to the client that much later.
async fn relay(
    inbound: TcpStream,
    outbound: TcpStream,
    mute: Arc<AtomicBool>,
    latency_ms: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut server_read, mut server_write) = outbound.into_split();
    let (late, mut due) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let up = async { tokio::io::copy(&mut client_read, &mut server_write).await };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = server_read.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            if mute.load(Ordering::SeqCst) {
                continue;
            }
            let at = tokio::time::Instant::now()
                + std::time::Duration::from_millis(latency_ms.load(Ordering::SeqCst));
            if late.send((at, buf[..n].to_vec())).is_err() {
                return Ok(());
            }
        }
    };
    let deliver = async {
        while let Some((at, bytes)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            client_write.write_all(&bytes).await?;
        }
        Ok::<_, std::io::Error>(())
    };
    // Either side closing ends the relay (the halves drop, both connections close).
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = deliver => {}
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
