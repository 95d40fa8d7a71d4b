//! HTTP: probes and metrics on `HTTP_PORT`, the admin API on `ADMIN_PORT`.
//!
//! Probes (no auth):
//! - `GET /health` — 200 from process start (liveness).
//! - `GET /ready` — 200 while at least one bind is BOUND and shutdown has not begun, else 503.
//! - `GET /metrics` — Prometheus text format.
//!
//! Admin (header `Authorization: Bearer $ADMIN_TOKEN`, else 401; a peer refused ten times
//! in a minute gets 429 for the rest of it; refusals are logged once a minute with a
//! count):
//! - `GET /admin/binds` — every bind: role (primary or backup), owner pod, state, intake,
//!   sessions, in-flight, window, queued, last error.
//! - `POST /admin/binds/{operatorId}/{direction}/{bindId}/restart` — drain, unbind and
//!   rebind that bind only.
//! - `POST …/drain` — that bind takes no new messages, finishes what it holds, stays bound.
//! - `POST …/resume` — it takes messages again.
//! - `POST …/panic` — with `FAULT_INJECTION=true` only: that bind's actor panics (a drill of
//!   its supervision: it is respawned alone); otherwise 404.
//!
//! Each answers 202, 404 for a bind this process does not run, 400 for a bad path. Every
//! admin request is logged once with its action, target and result (never the token) and
//! counted in `smpp_connector_admin_actions_total{action,result}`.
//!
//! Handlers only parse, message the supervisor and map the reply.

use std::sync::Arc;

use actix::Recipient;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use smpp_connector::config::{BindKey, Direction, OperatorId, Secret};

use crate::supervisor::{BindControl, ControlBind, ListBinds, Readiness};
use crate::telemetry::metric;

/// State of the probe listener.
#[derive(Clone)]
pub struct ProbeState {
    pub readiness: Arc<Readiness>,
    pub prometheus: Option<PrometheusHandle>,
}

impl std::fmt::Debug for ProbeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeState")
            .field("readiness", &self.readiness)
            .finish_non_exhaustive()
    }
}

/// State of the admin listener.
#[derive(Clone)]
pub struct AdminState {
    pub token: Secret,
    pub list: Recipient<ListBinds>,
    pub control: Recipient<ControlBind>,
    /// Failed attempts, shared by the listener's workers.
    pub refusals: Arc<Refusals>,
}

/// Refused admin requests a peer may make in a minute before it gets 429 without its
/// token being looked at (until the minute is over).
pub const MAX_REFUSALS_PER_MINUTE: u32 = 10;
const REFUSAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Peers remembered at most (a spray of addresses cannot grow the table without bound).
const MAX_PEERS: usize = 1024;

/// Failed admin attempts: limited per peer address, logged once a minute with a count
/// (an unauthenticated client must not be able to flood the logs), each counted in
/// `smpp_connector_admin_actions_total{result="unauthorized"|"rate_limited"}`.
#[derive(Debug, Default)]
pub struct Refusals {
    state: std::sync::Mutex<RefusalState>,
}

#[derive(Debug, Default)]
struct RefusalState {
    /// Per peer: the start of its window and its refusals in it.
    peers: std::collections::HashMap<std::net::IpAddr, (std::time::Instant, u32)>,
    /// When the last refusal line was written.
    last_line: Option<std::time::Instant>,
    /// Refusals since that line.
    unlogged: u64,
}

impl Refusals {
    /// Whether `peer` is locked out now.
    fn locked(&self, peer: std::net::IpAddr, now: std::time::Instant) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.peers.get(&peer).is_some_and(|(since, count)| {
            now.duration_since(*since) < REFUSAL_WINDOW && *count >= MAX_REFUSALS_PER_MINUTE
        })
    }

    /// A refused (or rate-limited) request of `peer`; `true` when this one is to be
    /// logged (the first in a minute), with the refusals since the last line.
    fn refused(&self, peer: std::net::IpAddr, now: std::time::Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.peers.len() >= MAX_PEERS && !state.peers.contains_key(&peer) {
            state
                .peers
                .retain(|_, (since, _)| now.duration_since(*since) < REFUSAL_WINDOW);
            if state.peers.len() >= MAX_PEERS {
                state.peers.clear();
            }
        }
        let entry = state.peers.entry(peer).or_insert((now, 0));
        if now.duration_since(entry.0) >= REFUSAL_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        let due = state
            .last_line
            .is_none_or(|at| now.duration_since(at) >= REFUSAL_WINDOW);
        if due {
            state.last_line = Some(now);
            Some(std::mem::take(&mut state.unlogged))
        } else {
            state.unlogged += 1;
            None
        }
    }

    /// Refusals not logged yet (they are in the next line's count).
    pub fn unlogged(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unlogged
    }
}

impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// Routes of the probe listener.
pub fn probes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics_text));
}

/// Routes of the admin listener.
pub fn admin(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/binds", web::get().to(list_binds)).route(
        "/admin/binds/{operator_id}/{direction}/{bind_id}/{action}",
        web::post().to(control_bind),
    );
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 while a bind is BOUND (or the pod is a standby) and the process is not shutting
/// down, else 503 (SPEC §10). The body says why and which backends are down now: a
/// backend outage does not by itself make the pod unready (its binds stay up and the
/// messages wait in the stream), but it is never hidden.
async fn ready(state: web::Data<ProbeState>) -> HttpResponse {
    let readiness = &state.readiness;
    let down: Vec<_> = crate::telemetry::backends::down()
        .into_iter()
        .map(|(backend, since)| {
            json!({
                "backend": backend,
                "since": chrono::DateTime::from_timestamp_millis(since as i64)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            })
        })
        .collect();
    let ready = readiness.is_ready();
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "bound": readiness.bound(),
        "standby": readiness.is_standby(),
        "shuttingDown": readiness.is_shutting_down(),
        "backendsDown": down,
    });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics_text(state: web::Data<ProbeState>) -> HttpResponse {
    let body = state
        .prometheus
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// Whether the request carries the bearer token.
fn authorized(request: &HttpRequest, token: &Secret) -> bool {
    let Some(value) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(given) = value.strip_prefix("Bearer ") else {
        return false;
    };
    token_matches(given.trim().as_bytes(), token)
}

/// Compare in constant time, and without telling the token's length: both sides are
/// digested (SHA-256) first, so the comparison always covers 32 bytes whatever was given.
fn token_matches(given: &[u8], token: &Secret) -> bool {
    use sha2::{Digest, Sha256};
    let given = Sha256::digest(given);
    let expected = Sha256::digest(token.expose().as_bytes());
    given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Check the token of an admin request, within the peer's limit of refusals: `Some` is the
/// answer of a refused request (401, or 429 for a peer locked out), already counted.
fn refusal(
    request: &HttpRequest,
    state: &AdminState,
    action: &str,
    target: &str,
) -> Option<HttpResponse> {
    let peer = request
        .peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let now = crate::clock::now();
    let (result, answer) = if state.refusals.locked(peer, now) {
        (
            "rate_limited",
            HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, "60"))
                .json(json!({"error": "too many failed attempts; retry later"})),
        )
    } else if authorized(request, &state.token) {
        return None;
    } else {
        ("unauthorized", unauthorized())
    };
    metrics::counter!(metric::ADMIN_ACTIONS, "action" => action.to_owned(), "result" => result)
        .increment(1);
    if let Some(before) = state.refusals.refused(peer, now) {
        // `bind`, not `target`: the JSON log's `target` is the module the line comes from.
        tracing::warn!(
            action,
            bind = target,
            result,
            peer = %peer,
            refused_since_last_line = before,
            "admin action refused"
        );
    }
    Some(answer)
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({"error": "missing or invalid bearer token"}))
}

/// One line and one count per admitted admin request: what was asked, of what, and how
/// it ended. The token is never logged; refusals are [`refusal`]'s, once a minute.
fn audit(request: &HttpRequest, action: &str, target: &str, result: &'static str) {
    metrics::counter!(metric::ADMIN_ACTIONS, "action" => action.to_owned(), "result" => result)
        .increment(1);
    let peer = request
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    // `bind`, not `target`: the JSON log's `target` is the module the line comes from.
    tracing::info!(action, bind = target, result, peer = %peer, "admin action");
}

async fn list_binds(request: HttpRequest, state: web::Data<AdminState>) -> HttpResponse {
    if let Some(answer) = refusal(&request, &state, "list", "binds") {
        return answer;
    }
    match state.list.send(ListBinds).await {
        Ok(binds) => {
            audit(&request, "list", "binds", "ok");
            let actors = crate::telemetry::actor_health::shared_snapshots();
            HttpResponse::Ok().json(json!({ "binds": binds, "actors": actors }))
        }
        Err(_) => {
            audit(&request, "list", "binds", "unavailable");
            HttpResponse::ServiceUnavailable().json(json!({"error": "supervisor unavailable"}))
        }
    }
}

async fn control_bind(
    request: HttpRequest,
    path: web::Path<(String, String, String, String)>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    let (operator_id, direction, bind_id, action) = path.into_inner();
    // What is logged of the target: the path's parts only where they are valid.
    let target = match parse_key(&operator_id, &direction, &bind_id) {
        Ok(key) => key.to_string(),
        Err(_) => "invalid".to_owned(),
    };
    let action_name = BindControl::parse(&action).map_or("invalid", BindControl::as_str);
    if let Some(answer) = refusal(&request, &state, action_name, &target) {
        return answer;
    }
    let Some(control) = BindControl::parse(&action) else {
        audit(&request, action_name, &target, "bad_request");
        return HttpResponse::NotFound()
            .json(json!({ "error": "action: must be restart, drain or resume" }));
    };
    let key = match parse_key(&operator_id, &direction, &bind_id) {
        Ok(key) => key,
        Err(problem) => {
            audit(&request, action_name, &target, "bad_request");
            return HttpResponse::BadRequest().json(json!({ "error": problem }));
        }
    };
    let answer = state
        .control
        .send(ControlBind {
            key: key.clone(),
            action: control,
        })
        .await;
    match answer {
        Ok(Ok(())) => {
            audit(&request, action_name, &target, "ok");
            HttpResponse::Accepted().json(json!({ "action": action_name, "bind": key.to_string() }))
        }
        Ok(Err(unknown)) => {
            audit(&request, action_name, &target, "not_found");
            HttpResponse::NotFound().json(json!({ "error": unknown.to_string() }))
        }
        Err(_) => {
            audit(&request, action_name, &target, "unavailable");
            HttpResponse::ServiceUnavailable().json(json!({"error": "supervisor unavailable"}))
        }
    }
}

fn parse_key(operator_id: &str, direction: &str, bind_id: &str) -> Result<BindKey, String> {
    let operator_id = OperatorId::try_new(operator_id).map_err(|e| format!("operatorId: {e}"))?;
    let direction: Direction = direction
        .parse()
        .map_err(|()| "direction: must be trx, tx or rx".to_owned())?;
    let bind_id: u16 = bind_id
        .parse()
        .map_err(|_| "bindId: must be a number".to_owned())?;
    Ok(BindKey::new(operator_id, direction, bind_id))
}

#[cfg(test)]
mod tests;
