//! The `smpp-connector` binary: reads the environment, sets up telemetry and runs the
//! service, or one of the operator subcommands.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use smpp_connector::config::Config;
use smpp_connector_actors::{app, cli, correlation, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "smpp-connector",
    version,
    about = "SMPP 3.4 client service of the SMS platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default). Configuration comes from the environment.
    Run,
    /// Apply database migrations and exit (needs DATABASE_URL).
    Migrate,
    /// Delete every expired correlation row now, in batches, and exit (needs
    /// DATABASE_URL; the service also sweeps every CORRELATION_SWEEP_MS). For a CronJob.
    Maintain,
    /// Publish one SmsDispatchCommand and wait for its delivery receipt.
    Send(cli::send::SendArgs),
    /// Call the admin API of a running service.
    Admin(cli::admin::AdminArgs),
    /// Segment counter: JSON lines {"id","text"} on stdin, one result per line on stdout.
    Segments,
}

/// mimalloc instead of glibc's malloc: the service allocates and frees small buffers per
/// PDU and per NATS message; glibc's allocator cost about a fifth of the service's CPU
/// under the benchmark (malloc, free, consolidation) and fragmented after bind start-up.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => run_service(),
        Command::Migrate => run_async(migrate()),
        Command::Maintain => run_async(maintain()),
        Command::Send(args) => run_async(cli::send::run(args)),
        Command::Admin(args) => run_async(cli::admin::run(args)),
        Command::Segments => {
            let stdin = std::io::stdin().lock();
            let stdout = std::io::stdout().lock();
            match smpp_connector::encoding::run_segments(stdin, std::io::BufWriter::new(stdout)) {
                Ok(_) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("smpp-connector segments: {err}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn env_map() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

fn run_service() -> ExitCode {
    let config = match Config::from_env(&env_map()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("smpp-connector: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_tracing(config.log_format);
    let prometheus = match telemetry::init_metrics() {
        Ok(handle) => Some(handle),
        Err(err) => {
            tracing::error!(error = %err, "metrics recorder not installed");
            None
        }
    };
    let traces = match telemetry::traces::init(&config.pod_name) {
        Ok(provider) => provider,
        Err(err) => {
            eprintln!("smpp-connector: {err:#}");
            return ExitCode::from(2);
        }
    };
    let system = actix::System::new();
    let result = system.block_on(app::run(config, prometheus, shutdown_signal()));
    telemetry::traces::shutdown(traces);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "smpp-connector failed");
            eprintln!("smpp-connector: {err:#}");
            exit_code(&err)
        }
    }
}

/// 2 for a configuration error found while starting (a certificate that does not verify,
/// a URL a client refused), as for one found in the environment; 1 otherwise.
fn exit_code(err: &anyhow::Error) -> ExitCode {
    if err
        .downcast_ref::<smpp_connector::config::ConfigError>()
        .is_some()
    {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

fn run_async(fut: impl std::future::Future<Output = anyhow::Result<bool>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("smpp-connector: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("smpp-connector: {err:#}");
            exit_code(&err)
        }
    }
}

/// The store of `DATABASE_URL`, migrated (the one-shot subcommands).
async fn migrated_store(pool_size: usize) -> anyhow::Result<correlation::PgStore> {
    telemetry::init_tracing(smpp_connector::config::LogFormat::Text);
    let (settings, statement_timeout) = smpp_connector::config::database_from_env(&env_map())?;
    let store = correlation::PgStore::connect(&settings, pool_size, statement_timeout)?;
    app::migrate_with_retry(&store, std::time::Duration::from_secs(30)).await?;
    Ok(store)
}

async fn migrate() -> anyhow::Result<bool> {
    migrated_store(2).await?;
    println!("migrations up to date");
    Ok(true)
}

async fn maintain() -> anyhow::Result<bool> {
    let store = migrated_store(1).await?;
    let started = std::time::Instant::now();
    let deleted = correlation::sweep(&store, std::time::Duration::MAX).await?;
    println!(
        "expired correlation rows deleted: {deleted} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}
