//! A TCP proxy on 127.0.0.1 the test can cut: every connection through it is dropped and
//! new ones are refused until it is restored. It stands for a backend outage (PostgreSQL
//! stopped) without touching the server the other tests share.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Forward 127.0.0.1:<port> to `target`.
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let cut = cut.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
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
            connections,
            accept,
        }
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
