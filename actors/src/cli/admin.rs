//! `smpp-connector admin`: the admin API from a shell (`binds`, `restart`).

use anyhow::Context as _;

/// Options of `admin`.
#[derive(Debug, clap::Args)]
pub struct AdminArgs {
    /// Admin listener of the service.
    #[arg(long, env = "ADMIN_URL", default_value = "http://127.0.0.1:8081")]
    pub url: String,
    /// Bearer token.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// List binds with state, in-flight, window and last error.
    Binds,
    /// Restart one bind: drain, unbind, rebind. Other binds are not touched.
    Restart {
        /// Operator id.
        operator: String,
        /// trx, tx or rx.
        direction: String,
        /// Bind id.
        bind_id: u16,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<bool> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let base = args.url.trim_end_matches('/');
    let request = match &args.command {
        AdminCommand::Binds => http.get(format!("{base}/admin/binds")),
        AdminCommand::Restart {
            operator,
            direction,
            bind_id,
        } => http.post(format!(
            "{base}/admin/binds/{operator}/{direction}/{bind_id}/restart"
        )),
    };
    let response = request
        .bearer_auth(&args.token)
        .send()
        .await
        .with_context(|| format!("admin API at {base} unreachable"))?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    match (&args.command, status.is_success()) {
        (AdminCommand::Binds, true) => {
            println!(
                "{:<24} {:<4} {:>4}  {:<15} {:>9} {:>6}  last error",
                "operator", "dir", "bind", "state", "in-flight", "window"
            );
            for bind in body["binds"].as_array().into_iter().flatten() {
                let number =
                    |v: &serde_json::Value| v.as_u64().map_or("-".into(), |n| n.to_string());
                println!(
                    "{:<24} {:<4} {:>4}  {:<15} {:>9} {:>6}  {}",
                    bind["operatorId"].as_str().unwrap_or(""),
                    bind["direction"].as_str().unwrap_or(""),
                    number(&bind["bindId"]),
                    bind["state"].as_str().unwrap_or(""),
                    number(&bind["inFlight"]),
                    number(&bind["window"]),
                    bind["lastError"].as_str().unwrap_or("-"),
                );
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&body)?),
    }
    if !status.is_success() {
        eprintln!("admin API answered {status}");
    }
    Ok(status.is_success())
}
