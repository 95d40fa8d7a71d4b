//! The socket of a session: TCP (TLS later, per operator `tls: true`), split into a read
//! half framed by [`SmppCodec`] and a raw write half the actor writes encoded PDUs to.

use std::io;
use std::pin::Pin;
use std::time::Duration;

use smpp_connector::pdu::{FrameError, Inbound, SmppCodec};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
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
    #[error("TLS to the SMSC is not supported yet (operator has tls: true)")]
    TlsUnsupported,
}

/// Open a TCP connection to the SMSC.
pub async fn connect(
    host: &str,
    port: u16,
    tls: bool,
    timeout: Duration,
) -> Result<Connection, ConnectError> {
    if tls {
        return Err(ConnectError::TlsUnsupported);
    }
    let address = format!("{host}:{port}");
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(&address)).await {
        Err(_) => return Err(ConnectError::TimedOut { address, timeout }),
        Ok(Err(source)) => return Err(ConnectError::Io { address, source }),
        Ok(Ok(stream)) => stream,
    };
    // Small PDUs, latency matters: no Nagle.
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    Ok(Connection {
        read: Box::pin(read),
        write: Box::pin(write),
    })
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
