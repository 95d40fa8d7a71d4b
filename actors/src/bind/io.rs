//! The socket of a session: TCP, or TLS over it for operators with `tls: true`, split into
//! a read half framed by [`SmppCodec`] and a raw write half the actor writes encoded PDUs
//! to; both halves count their bytes.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::inbound::ProgressCell;
use smpp_connector::protocol::pdu::{FrameError, Inbound, SmppCodec};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_util::codec::FramedRead;

pub type BoxedRead = Pin<Box<dyn AsyncRead + Send>>;
pub type BoxedWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// A connected socket, not yet bound.
pub struct Connection {
    pub read: BoxedRead,
    pub write: BoxedWrite,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {address} timed out after {timeout:?}")]
    TimedOut { address: String, timeout: Duration },
    #[error("connect to {address}: {source}")]
    Io { address: String, source: io::Error },
    #[error("TLS to {address}: {source}")]
    Tls { address: String, source: io::Error },
    #[error("TLS: {host:?} is not a valid server name")]
    TlsName { host: String },
}

/// How a bind reaches its SMSC: [`TcpConnector`] in production; an in-process one (a
/// duplex pipe to a test's SMSC) in the bind's in-process tests.
pub trait SmscConnector: Send + Sync {
    /// Open a connection to `host:port`, with TLS when `tls` is given, within `timeout`.
    fn connect(
        &self,
        host: &str,
        port: u16,
        tls: Option<&TlsConnector>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Connection, ConnectError>>;
}

/// The real [`SmscConnector`]: TCP, TLS over it for operators with `tls: true`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl SmscConnector for TcpConnector {
    fn connect(
        &self,
        host: &str,
        port: u16,
        tls: Option<&TlsConnector>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Connection, ConnectError>> {
        let host = host.to_owned();
        let tls = tls.cloned();
        Box::pin(async move { connect(&host, port, tls.as_ref(), timeout).await })
    }
}

/// Open a connection to the SMSC: TCP, then TLS with `tls` (operators with `tls: true`),
/// the certificate checked against `host`; all within `timeout`.
pub async fn connect(
    host: &str,
    port: u16,
    tls: Option<&TlsConnector>,
    timeout: Duration,
) -> Result<Connection, ConnectError> {
    let address = format!("{host}:{port}");
    let attempt = async {
        let stream = TcpStream::connect(&address)
            .await
            .map_err(|source| ConnectError::Io {
                address: address.clone(),
                source,
            })?;
        // Small PDUs, latency matters: no Nagle.
        let _ = stream.set_nodelay(true);
        let Some(connector) = tls else {
            let (read, write) = stream.into_split();
            return Ok(Connection {
                read: Box::pin(read),
                write: Box::pin(write),
            });
        };
        let name = ServerName::try_from(host.to_owned()).map_err(|_| ConnectError::TlsName {
            host: host.to_owned(),
        })?;
        let stream = connector
            .connect(name, stream)
            .await
            .map_err(|source| ConnectError::Tls {
                address: address.clone(),
                source,
            })?;
        let (read, write) = tokio::io::split(stream);
        Ok(Connection {
            read: Box::pin(read),
            write: Box::pin(write),
        })
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::TimedOut {
            address: address.clone(),
            timeout,
        }),
    }
}

/// Count the bytes each half carries (`smpp_connector_ingress_bytes_total` /
/// `…_egress_bytes_total` of the bind).
pub fn counted(
    connection: Connection,
    ingress: metrics::Counter,
    egress: metrics::Counter,
) -> Connection {
    Connection {
        read: Box::pin(Counting {
            inner: connection.read,
            counter: ingress,
        }),
        write: Box::pin(Counting {
            inner: connection.write,
            counter: egress,
        }),
    }
}

/// A half of a socket that counts the bytes it carries.
struct Counting<T: ?Sized> {
    inner: Pin<Box<T>>,
    counter: metrics::Counter,
}

impl<T: AsyncRead + ?Sized> AsyncRead for Counting<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = self.inner.as_mut().poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            self.counter.increment(read as u64);
        }
        result
    }
}

impl<T: AsyncWrite + ?Sized> AsyncWrite for Counting<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        let result = self.inner.as_mut().poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(written)) = &result {
            self.counter.increment(*written as u64);
        }
        result
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        self.inner.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        self.inner.as_mut().poll_shutdown(cx)
    }
}

/// Initial read buffer of a session: a few dozen PDUs. It grows (up to the largest PDU
/// allowed) only when a bigger PDU arrives, so an idle bind holds 1 KiB, not 64.
const READ_BUFFER: usize = 1024;

/// Frame the read half.
pub fn framed(read: BoxedRead, max_pdu: usize) -> FramedRead<BoxedRead, SmppCodec> {
    FramedRead::with_capacity(read, SmppCodec::new(max_pdu), READ_BUFFER)
}

/// What a framed read yields.
pub type ReadItem = Result<Inbound, FrameError>;

/// Whether a session may read its next PDU ([`smpp_connector::protocol::session::Session::may_read`]):
/// closed while its inbound window of unanswered deliver_sm is full, so the SMSC waits on
/// TCP instead of the bind holding an unbounded number of them. One per session, shared
/// by the actor (which opens and closes it after every input) and its read stream.
pub struct InboundGate {
    open: std::sync::atomic::AtomicBool,
    opened: tokio::sync::Notify,
    /// The bind's progress, whose `inbound_blocked` counts sessions waiting here.
    progress: std::sync::Arc<ProgressCell>,
}

impl std::fmt::Debug for InboundGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundGate")
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl InboundGate {
    pub fn new(progress: std::sync::Arc<ProgressCell>) -> Self {
        InboundGate {
            open: std::sync::atomic::AtomicBool::new(true),
            opened: tokio::sync::Notify::new(),
            progress,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Open (`true`) or close the gate; opening wakes the reader.
    pub fn set_open(&self, open: bool) {
        let was = self.open.swap(open, std::sync::atomic::Ordering::AcqRel);
        if open && !was {
            self.opened.notify_waiters();
        }
    }

    /// Wait until the gate is open; counted in `inbound_blocked` meanwhile.
    async fn wait_open(&self) {
        if self.is_open() {
            return;
        }
        let _blocked = self.progress.blocked();
        loop {
            // Registered before the check: an opening in between is not missed.
            let opened = self.opened.notified();
            if self.is_open() {
                return;
            }
            opened.await;
        }
    }
}

/// The framed reads of a session, each taken only once its gate is open.
pub fn gated(
    reads: FramedRead<BoxedRead, SmppCodec>,
    gate: std::sync::Arc<InboundGate>,
) -> impl futures::Stream<Item = ReadItem> {
    use futures::StreamExt;
    futures::stream::unfold((reads, gate), |(mut reads, gate)| async move {
        gate.wait_open().await;
        let item = reads.next().await?;
        Some((item, (reads, gate)))
    })
}
