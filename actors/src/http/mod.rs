//! HTTP: probes and metrics on `HTTP_PORT`, the admin API on `ADMIN_PORT`.
//!
//! Probes (no auth):
//! - `GET /health` — 200 from process start (liveness).
//! - `GET /ready` — 200 while at least one bind is BOUND and shutdown has not begun, else 503.
//! - `GET /metrics` — Prometheus text format.
//!
//! Admin (header `Authorization: Bearer $ADMIN_TOKEN`, else 401):
//! - `GET /admin/binds` — every bind: state, sessions, in-flight, window, queued, last error.
//! - `POST /admin/binds/{operatorId}/{direction}/{bindId}/restart` — drain, unbind and
//!   rebind that bind only; 202, 404 for a bind this process does not own, 400 for a bad path.
//!
//! Handlers only parse, message the supervisor and map the reply.

use std::sync::Arc;

use actix::Recipient;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use smpp_connector::config::{BindKey, Direction, OperatorId, Secret};

use crate::supervisor::{ListBinds, Readiness, RestartOne};

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
    pub restart: Recipient<RestartOne>,
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
        "/admin/binds/{operator_id}/{direction}/{bind_id}/restart",
        web::post().to(restart_bind),
    );
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn ready(state: web::Data<ProbeState>) -> HttpResponse {
    if state.readiness.is_ready() {
        HttpResponse::Ok().json(json!({"status": "ready"}))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({"status": "not ready"}))
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

/// Constant-time comparison of the bearer token.
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
    let expected = token.expose().as_bytes();
    let given = given.trim().as_bytes();
    if given.len() != expected.len() {
        return false;
    }
    given
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

fn unauthorized() -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
        .json(json!({"error": "missing or invalid bearer token"}))
}

async fn list_binds(request: HttpRequest, state: web::Data<AdminState>) -> HttpResponse {
    if !authorized(&request, &state.token) {
        return unauthorized();
    }
    match state.list.send(ListBinds).await {
        Ok(binds) => HttpResponse::Ok().json(json!({ "binds": binds })),
        Err(_) => {
            HttpResponse::ServiceUnavailable().json(json!({"error": "supervisor unavailable"}))
        }
    }
}

async fn restart_bind(
    request: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AdminState>,
) -> HttpResponse {
    if !authorized(&request, &state.token) {
        return unauthorized();
    }
    let (operator_id, direction, bind_id) = path.into_inner();
    let key = match parse_key(&operator_id, &direction, &bind_id) {
        Ok(key) => key,
        Err(problem) => return HttpResponse::BadRequest().json(json!({ "error": problem })),
    };
    match state.restart.send(RestartOne { key: key.clone() }).await {
        Ok(Ok(())) => {
            tracing::info!(bind = %key, "admin restart accepted");
            HttpResponse::Accepted().json(json!({ "restarting": key.to_string() }))
        }
        Ok(Err(unknown)) => HttpResponse::NotFound().json(json!({ "error": unknown.to_string() })),
        Err(_) => {
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
