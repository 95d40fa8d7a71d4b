//! A production-like topology of the backing servers for one test, from `scripts/stack up
//! --dir <scratch> --free-ports <flags>`: `--tls` (every server TLS-only with client
//! certificates), `--nats-cluster`, `--redis-cluster` or `--redis-sentinel`, `--pg-standby`
//! (a synchronous streaming standby), `--ha` (the last three). Stopped and deleted on drop.
//!
//! [`Topology::env`] holds what `scripts/stack` wrote to `DIR/env` (`NATS_URL`, `REDIS_URL`,
//! `DATABASE_URL`, `NATS_STREAM_REPLICAS`, the `*_TLS_*_FILE`s, `STACK_TLS_OTHER_CA`…) and
//! [`Topology::json`] all of `DIR/topology.json`: every node (`nats-0`, `redis-primary`,
//! `sentinel-1`, `pg-standby`…) with its kind, role, ports (`client`, and `monitor`,
//! `route`, `bus` where they apply), pid file, data dir and log file.
//!
//! Every method runs `scripts/stack` with a blocking [`std::process::Command`] and returns
//! when it has finished: `start` takes 1–5 s, `start_node` of a Redis Cluster node up to
//! ~12 s (the others wait for it to be whole again). They block the calling thread: in an
//! async test call them rarely, on a multi-thread runtime or in
//! `tokio::task::spawn_blocking`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{root, scratch};

/// A topology of our own, in its own directory; `scripts/stack down --purge` on drop.
#[derive(Debug)]
pub struct Topology {
    pub dir: PathBuf,
    pub env: BTreeMap<String, String>,
    pub json: serde_json::Value,
}

/// `scripts/stack ARGS --dir DIR`, its output captured.
fn stack(dir: &Path, args: &[&str]) -> Output {
    Command::new(root().join("scripts/stack"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("scripts/stack {}: {e}", args.join(" ")))
}

impl Topology {
    /// `scripts/stack up --dir <scratch> --free-ports <flags>`, e.g. `&["--tls"]`,
    /// `&["--nats-cluster"]`, `&["--ha", "--tls"]`; returns once every server answers.
    /// Panics with the script's stderr when it fails (after stopping what it started).
    pub fn start(test: &str, flags: &[&str]) -> Topology {
        let dir = scratch(&format!("{test}-topology"));
        let mut args = vec!["up", "--free-ports"];
        args.extend_from_slice(flags);
        let output = stack(&dir, &args);
        if !output.status.success() {
            let _ = stack(&dir, &["down", "--purge"]);
            panic!(
                "scripts/stack {} --dir {} failed ({}):\n{}",
                args.join(" "),
                dir.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let path = dir.join("topology.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let env = json["env"]
            .as_object()
            .unwrap_or_else(|| panic!("no env in {}", path.display()))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        Topology { dir, env, json }
    }

    /// A variable of the topology's env (`NATS_URL`, `REDIS_URL`, `DATABASE_URL`,
    /// `REDIS_TLS_CA_FILE`…); panics when it has none of that name.
    pub fn var(&self, name: &str) -> &str {
        self.env.get(name).map(String::as_str).unwrap_or_else(|| {
            panic!(
                "no {name} in the env of {} (has: {})",
                self.dir.display(),
                self.env.keys().cloned().collect::<Vec<_>>().join(" ")
            )
        })
    }

    /// `scripts/stack kill NODE --signal SIGNAL`: `KILL` (kill -9; all of a PostgreSQL
    /// node's processes), `TERM`, or `QUIT` (PostgreSQL's immediate shutdown). Returns once
    /// the node's process is gone.
    pub fn kill(&self, node: &str, signal: &str) {
        self.run(&["kill", node, "--signal", signal]);
    }

    /// `scripts/stack start NODE`: the stopped node again, on its ports and data; returns
    /// once it answers (a Redis Cluster node: once every node reports `cluster_state:ok`).
    pub fn start_node(&self, node: &str) {
        self.run(&["start", node]);
    }

    /// `scripts/stack promote`: `pg_ctl promote` of `pg-standby`; returns once it accepts
    /// writes.
    pub fn promote(&self) {
        self.run(&["promote"]);
    }

    /// The node's entry in topology.json (`["ports"]["client"]`, `["log_file"]`…); panics
    /// when there is no such node.
    pub fn node(&self, name: &str) -> &serde_json::Value {
        let nodes = self.json["nodes"]
            .as_array()
            .expect("nodes in topology.json");
        nodes.iter().find(|n| n["name"] == name).unwrap_or_else(|| {
            let names: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
            panic!(
                "no node {name} in this topology (nodes: {})",
                names.join(" ")
            )
        })
    }

    /// The node's client port.
    pub fn port(&self, name: &str) -> u16 {
        self.node(name)["ports"]["client"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("no client port for {name}"))
    }

    /// [`Topology::kill`] off the test's thread (for use under load: the runtime keeps
    /// publishing and sampling meanwhile).
    pub async fn kill_async(&self, node: &str, signal: &str) {
        self.run_async(&["kill", node, "--signal", signal]).await;
    }

    /// [`Topology::start_node`] off the test's thread.
    pub async fn start_node_async(&self, node: &str) {
        self.run_async(&["start", node]).await;
    }

    /// [`Topology::promote`] off the test's thread.
    pub async fn promote_async(&self) {
        self.run_async(&["promote"]).await;
    }

    async fn run_async(&self, args: &[&str]) {
        let dir = self.dir.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_in(&dir, &args);
        })
        .await
        .expect("scripts/stack task");
    }

    fn run(&self, args: &[&str]) {
        run_in(&self.dir, args);
    }
}

/// `scripts/stack ARGS --dir DIR`; panics with its stderr when it fails.
fn run_in(dir: &Path, args: &[&str]) {
    let output = stack(dir, args);
    assert!(
        output.status.success(),
        "scripts/stack {} --dir {} failed ({}):\n{}",
        args.join(" "),
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for Topology {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The test failed: keep the servers' logs beside the test logs.
            let label = self
                .dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            for node in self.json["nodes"].as_array().into_iter().flatten() {
                if let (Some(name), Some(log)) = (node["name"].as_str(), node["log_file"].as_str())
                {
                    let _ =
                        std::fs::copy(log, super::log_dir().join(format!("{label}-{name}.log")));
                }
            }
        }
        // Errors ignored: a drop during a panic must not panic again.
        let _ = stack(&self.dir, &["down", "--purge"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
