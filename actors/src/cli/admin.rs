//! `smpp-connector admin`: the admin API from a shell (`binds`, `restart`, `drain`,
//! `resume`).

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
    /// List binds with role, owner pod, state, intake, in-flight, window and last error.
    Binds,
    /// Restart one bind: drain, unbind, rebind. Other binds are not touched.
    Restart(BindArg),
    /// Drain one bind: it takes no new messages, finishes what it holds and stays bound.
    Drain(BindArg),
    /// Resume a drained bind: it takes messages again.
    Resume(BindArg),
}

/// One bind.
#[derive(Debug, clap::Args)]
pub struct BindArg {
    /// Operator id.
    pub operator: String,
    /// trx, tx or rx.
    pub direction: String,
    /// Bind id.
    pub bind_id: u16,
}

pub async fn run(args: AdminArgs) -> anyhow::Result<bool> {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let base = args.url.trim_end_matches('/');
    let control = |action: &str, bind: &BindArg| {
        http.post(format!(
            "{base}/admin/binds/{}/{}/{}/{action}",
            bind.operator, bind.direction, bind.bind_id
        ))
    };
    let request = match &args.command {
        AdminCommand::Binds => http.get(format!("{base}/admin/binds")),
        AdminCommand::Restart(bind) => control("restart", bind),
        AdminCommand::Drain(bind) => control("drain", bind),
        AdminCommand::Resume(bind) => control("resume", bind),
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
                "{:<24} {:<4} {:>4}  {:<16} {:<24} {:<15} {:<7} {:>9} {:>6}  last error",
                "operator",
                "dir",
                "bind",
                "role",
                "owner",
                "state",
                "intake",
                "in-flight",
                "window"
            );
            for bind in body["binds"].as_array().into_iter().flatten() {
                let number =
                    |v: &serde_json::Value| v.as_u64().map_or("-".into(), |n| n.to_string());
                let role = match bind["backupFor"].as_str() {
                    Some(primary) => format!("backup for {primary}"),
                    None => bind["role"].as_str().unwrap_or("").to_owned(),
                };
                println!(
                    "{:<24} {:<4} {:>4}  {:<16} {:<24} {:<15} {:<7} {:>9} {:>6}  {}",
                    bind["operatorId"].as_str().unwrap_or(""),
                    bind["direction"].as_str().unwrap_or(""),
                    number(&bind["bindId"]),
                    role,
                    bind["ownerPod"].as_str().unwrap_or("-"),
                    bind["state"].as_str().unwrap_or(""),
                    bind["intake"].as_str().unwrap_or(""),
                    number(&bind["inFlight"]),
                    number(&bind["window"]),
                    bind["lastError"].as_str().unwrap_or("-"),
                );
            }
            // Actor health: each bind (it restarts on every reconnect) and the shared ones.
            println!();
            println!(
                "{:<12} {:<40} {:>8} {:>10} {:>9}  last restart",
                "actor", "bind", "restarts", "mailbox ms", "uptime s"
            );
            let binds = body["binds"].as_array().into_iter().flatten();
            let actors = binds
                .map(|b| &b["actor"])
                .chain(body["actors"].as_array().into_iter().flatten());
            for actor in actors.filter(|a| a.is_object()) {
                let number = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
                println!(
                    "{:<12} {:<40} {:>8} {:>10} {:>9}  {}",
                    actor["actor"].as_str().unwrap_or(""),
                    actor["bind"]
                        .as_str()
                        .filter(|b| !b.is_empty())
                        .unwrap_or("-"),
                    number(&actor["restarts"]),
                    number(&actor["mailboxWaitMs"]),
                    number(&actor["uptimeSeconds"]),
                    actor["lastRestartReason"].as_str().unwrap_or("-"),
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
