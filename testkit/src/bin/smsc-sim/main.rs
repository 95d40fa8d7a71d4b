//! `smsc-sim`: the project's SMSC simulator (SMPP 3.4 server side), used by the
//! whole-service tests, the local demo and the benchmark.
//!
//! This file owns the command line, startup (bind both listeners, print
//! `{"smpp":"127.0.0.1:PORT","control":"127.0.0.1:PORT"}` on stdout, everything else on
//! stderr) and shutdown (SIGTERM, SIGINT or `POST /shutdown`: flush the record, exit 0).
//!
//! Modules: `behaviour` (what the sim answers, changeable at runtime), `conn` (one task
//! pair per ESME connection), `control` (HTTP control API), `record` (JSON-lines record of
//! every PDU), `state` (shared counters, registry, config).

mod behaviour;
mod conn;
mod control;
mod record;
mod state;
#[cfg(test)]
mod tests;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use smpp_connector::protocol::pdu::DEFAULT_MAX_PDU_LEN;
use tokio::net::TcpListener;

use crate::behaviour::{Behaviour, BehaviourCell};
use crate::record::Recorder;
use crate::state::{SimConfig, SimState};

/// SMPP 3.4 SMSC simulator. Every flag can also be set with SMSC_SIM_<FLAG>.
#[derive(Debug, Parser)]
#[command(name = "smsc-sim", version)]
struct Cli {
    /// SMPP listener.
    #[arg(long, env = "SMSC_SIM_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// HTTP control listener.
    #[arg(long, env = "SMSC_SIM_CONTROL", default_value = "127.0.0.1:0")]
    control: SocketAddr,
    /// Accepted system_id.
    #[arg(long, env = "SMSC_SIM_SYSTEM_ID", default_value = "smppclient1")]
    system_id: String,
    /// Accepted password.
    #[arg(
        long,
        env = "SMSC_SIM_PASSWORD",
        default_value = "password",
        hide_env_values = true,
        hide_default_value = true
    )]
    password: String,
    /// JSON-lines record of every PDU received and sent (appended to).
    #[arg(long, env = "SMSC_SIM_RECORD")]
    record: Option<PathBuf>,
    /// Interval of the simulator's own enquire_link on bound connections; 0 = never.
    #[arg(long, env = "SMSC_SIM_ENQUIRE_LINK_MS", default_value_t = 0)]
    enquire_link_ms: u64,
    /// First value of the global message-id counter.
    #[arg(long, env = "SMSC_SIM_MESSAGE_ID_START", default_value_t = 1)]
    message_id_start: u64,
    /// Largest command_length accepted from an ESME; above it the connection is closed.
    #[arg(long, env = "SMSC_SIM_MAX_PDU_LEN", default_value_t = DEFAULT_MAX_PDU_LEN)]
    max_pdu_len: usize,
    /// Initial behaviour: a (partial) JSON object, as for POST /behaviour.
    #[arg(long, env = "SMSC_SIM_BEHAVIOUR")]
    behaviour: Option<String>,
    /// Serve SMPP over TLS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "SMSC_SIM_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SMSC_SIM_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Require a client certificate signed by this PEM CA (mutual TLS).
    #[arg(long, env = "SMSC_SIM_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
}

/// What [`start`] needs.
#[derive(Debug)]
pub struct SimOptions {
    pub listen: SocketAddr,
    /// `None`: no control API (unit tests).
    pub control: Option<SocketAddr>,
    pub config: SimConfig,
    pub behaviour: Behaviour,
    pub record: Option<PathBuf>,
    /// Serve SMPP over TLS.
    pub tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// A running simulator.
#[derive(Debug)]
pub struct Sim {
    pub smpp: SocketAddr,
    pub control: Option<SocketAddr>,
    pub state: Arc<SimState>,
}

/// Bind the listeners and start serving on the current tokio runtime.
pub async fn start(options: SimOptions) -> anyhow::Result<Sim> {
    let recorder = match &options.record {
        Some(path) => Recorder::open(path)
            .with_context(|| format!("cannot open record file {}", path.display()))?,
        None => Recorder::disabled(),
    };
    let state = Arc::new(SimState::new(
        options.config,
        BehaviourCell::new(options.behaviour),
        recorder,
    ));
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let smpp = listener.local_addr()?;
    let control = match options.control {
        Some(addr) => {
            let listener = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen on {addr}"))?;
            let bound = listener.local_addr()?;
            control::spawn(state.clone(), listener).context("cannot start the control API")?;
            Some(bound)
        }
        None => None,
    };
    let tls = options.tls.map(tokio_rustls::TlsAcceptor::from);
    tokio::spawn(conn::serve(state.clone(), listener, tls));
    Ok(Sim {
        smpp,
        control,
        state,
    })
}

fn main() -> anyhow::Result<()> {
    smpp_connector_testkit::init_logging("SMSC_SIM_LOG");
    let cli = Cli::parse();
    let initial = match &cli.behaviour {
        Some(text) => {
            let patch: serde_json::Value =
                serde_json::from_str(text).context("SMSC_SIM_BEHAVIOUR is not JSON")?;
            Behaviour::default()
                .merged(&patch)
                .map_err(|e| anyhow::anyhow!("SMSC_SIM_BEHAVIOUR: {e}"))?
        }
        None => Behaviour::default(),
    };
    let options = SimOptions {
        listen: cli.listen,
        control: Some(cli.control),
        config: SimConfig {
            system_id: cli.system_id,
            password: cli.password,
            enquire_link_ms: cli.enquire_link_ms,
            max_pdu_len: cli.max_pdu_len,
            message_id_start: cli.message_id_start,
        },
        behaviour: initial,
        record: cli.record,
        tls: smpp_connector_testkit::tls::server_config(
            &smpp_connector_testkit::tls::ServerFiles {
                cert: cli.tls_cert,
                key: cli.tls_key,
                client_ca: cli.tls_client_ca,
            },
        )?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(options))?;
    // Connection tasks may still be parked; do not wait for them.
    runtime.shutdown_background();
    Ok(())
}

async fn run(options: SimOptions) -> anyhow::Result<()> {
    let sim = start(options).await?;
    let control = sim.control.map(|a| a.to_string()).unwrap_or_default();
    // Written by hand to keep the documented key order (smpp, control).
    let ready = format!(
        "{{\"smpp\":{},\"control\":{}}}",
        serde_json::Value::String(sim.smpp.to_string()),
        serde_json::Value::String(control.clone())
    );
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}")?;
        stdout.flush()?;
    }
    tracing::info!(smpp = %sim.smpp, control = %control, "smsc-sim listening");

    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT"),
        _ = sigterm.recv() => tracing::info!("SIGTERM"),
        () = sim.state.shutdown.cancelled() => {}
    }
    sim.state.shutdown.cancel();
    sim.state.recorder.flush().await;
    tracing::info!("smsc-sim stopped");
    Ok(())
}
