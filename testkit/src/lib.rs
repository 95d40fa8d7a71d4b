//! What the test tools share: their logging setup, and the golden decoder the simulator
//! checks every PDU it receives with.
//!
//! The tools are the SMSC side and the platform side of smpp-connector's tests, demo and
//! benchmark; they are never shipped (the Dockerfile builds only the product binary).

pub mod golden;
pub mod tls;

/// Plain-text logs on stderr for a test tool, level from `filter_env` (default info).
pub fn init_logging(filter_env: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env(filter_env).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .init();
}
