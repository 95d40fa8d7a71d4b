//! The HTTP control API (JSON in, JSON out), served by actix-web on its own thread.
//!
//! Endpoints:
//! - `GET  /stats`            counters and bound connections by mode
//! - `POST /stats/reset`      zero the counters
//! - `GET  /behaviour`        the full behaviour
//! - `POST /behaviour`        merge a partial behaviour object; returns the full one
//! - `POST /behaviour/reset`  back to the defaults
//! - `GET  /connections`      open connections: id, peer, mode, system_id
//! - `POST /disconnect`       close every connection at once (or `{"conn":N}`)
//! - `POST /inject`           write a PDU or garbage to connections (see [`parse_inject`])
//! - `POST /shutdown`         flush the record and exit 0
//!
//! Handlers only parse, call into `conn.rs` / the shared state and map the result;
//! errors are `{"error": "..."}` with 400 (bad request) or 404 (unknown connection).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use bytes::Bytes;
use serde_json::{Value, json};
use smpp_connector::protocol::pdu::{SmBody, Tlv, validate_sm_body};

use crate::conn::{self, Inject};
use crate::state::SimState;

/// Serve the control API on `listener` from a dedicated thread with its own runtime.
pub fn spawn(state: Arc<SimState>, listener: TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("smsc-sim-control".to_owned())
        .spawn(move || {
            let system = actix_web::rt::System::new();
            let served = system.block_on(async move {
                let data = web::Data::from(state);
                HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .route("/stats", web::get().to(get_stats))
                        .route("/stats/reset", web::post().to(reset_stats))
                        .route("/behaviour", web::get().to(get_behaviour))
                        .route("/behaviour", web::post().to(post_behaviour))
                        .route("/behaviour/reset", web::post().to(reset_behaviour))
                        .route("/connections", web::get().to(get_connections))
                        .route("/disconnect", web::post().to(post_disconnect))
                        .route("/inject", web::post().to(post_inject))
                        .route("/shutdown", web::post().to(post_shutdown))
                        .default_service(web::to(not_found))
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(1)
                .listen(listener)?
                .run()
                .await
            });
            if let Err(error) = served {
                tracing::error!(%error, "control server stopped");
            }
        })?;
    Ok(())
}

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": message.into()}))
}

/// An empty body is `{}`.
fn parse_body(body: &Bytes) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))
}

async fn get_stats(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.stats_json())
}

async fn reset_stats(state: web::Data<SimState>) -> HttpResponse {
    state.stats.reset();
    HttpResponse::Ok().json(state.stats_json())
}

async fn get_behaviour(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.behaviour.view())
}

async fn post_behaviour(state: web::Data<SimState>, body: Bytes) -> HttpResponse {
    let patch = match parse_body(&body) {
        Ok(patch) => patch,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match state.behaviour.update(&patch) {
        Ok(view) => {
            tracing::info!(patch = %patch, "behaviour changed");
            HttpResponse::Ok().json(view)
        }
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

async fn reset_behaviour(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(state.behaviour.reset())
}

async fn get_connections(state: web::Data<SimState>) -> HttpResponse {
    HttpResponse::Ok().json(conn::connections_json(&state))
}

async fn post_disconnect(state: web::Data<SimState>, body: Bytes) -> HttpResponse {
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let target = match optional_conn(&request) {
        Ok(target) => target,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let closed = conn::disconnect(&state, target);
    tracing::info!(closed, "disconnect requested");
    HttpResponse::Ok().json(json!({"closed": closed}))
}

async fn post_inject(state: web::Data<SimState>, body: Bytes) -> HttpResponse {
    let request = match parse_body(&body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let (inject, target) = match parse_inject(&request) {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    match conn::inject(&state, &inject, target).await {
        Ok(sent) => HttpResponse::Ok().json(json!({"sent": sent})),
        Err(message) => error(StatusCode::NOT_FOUND, message),
    }
}

async fn post_shutdown(state: web::Data<SimState>) -> HttpResponse {
    tracing::info!("shutdown requested");
    let token = state.shutdown.clone();
    // Let this response leave before the process exits.
    actix_web::rt::spawn(async move {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        token.cancel();
    });
    HttpResponse::Ok().json(json!({"shutdown": true}))
}

async fn not_found() -> HttpResponse {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

fn optional_conn(request: &Value) -> Result<Option<u64>, String> {
    match request.get("conn") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| "conn must be a connection id (integer)".to_owned()),
    }
}

fn str_field(request: &Value, key: &str) -> Result<Option<String>, String> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn u8_field(request: &Value, key: &str, default: u8) -> Result<u8, String> {
    match request.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .and_then(|v| u8::try_from(v).ok())
            .ok_or_else(|| format!("{key} must be an integer 0..=255")),
    }
}

fn hex_field(request: &Value, key: &str) -> Result<Option<Vec<u8>>, String> {
    str_field(request, key)?
        .map(|text| {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode(compact).map_err(|e| format!("{key}: invalid hex: {e}"))
        })
        .transpose()
}

/// Parse an `/inject` body: `{"kind": ..., "conn": optional id, ...}`.
///
/// `deliver_sm` takes `source_addr`, `destination_addr`, `short_message_hex` (or
/// `short_message` as text), `esm_class`, `data_coding`, `registered_delivery`,
/// `service_type`, `source_addr_ton/npi`, `dest_addr_ton/npi` and
/// `tlvs: [{"tag": u16, "value_hex": ".."}]`; `raw` takes `hex`; `mo_burst` takes
/// `messages`, `parts` and a `seed` for the originators.
pub fn parse_inject(request: &Value) -> Result<(Inject, Option<u64>), String> {
    if !request.is_object() {
        return Err("inject body must be a JSON object".to_owned());
    }
    let target = optional_conn(request)?;
    let kind = str_field(request, "kind")?.ok_or("kind is required")?;
    let inject = match kind.as_str() {
        "malformed" => Inject::Malformed,
        "oversize" => Inject::Oversize,
        "unknown_command" => Inject::UnknownCommand,
        "unbind" => Inject::Unbind,
        "enquire_link" => Inject::EnquireLink,
        "raw" => {
            let bytes = hex_field(request, "hex")?.ok_or("raw needs hex")?;
            if bytes.is_empty() {
                return Err("raw hex is empty".to_owned());
            }
            Inject::Raw(Bytes::from(bytes))
        }
        "deliver_sm" => Inject::DeliverSm(Box::new(parse_deliver_sm(request)?)),
        "mo_burst" => {
            let number = |key: &str, max: u64| {
                request
                    .get(key)
                    .and_then(Value::as_u64)
                    .filter(|n| (1..=max).contains(n))
                    .ok_or(format!("mo_burst needs {key} from 1 to {max}"))
            };
            Inject::MoBurst {
                messages: number("messages", 200_000)? as u32,
                parts: number("parts", 10)? as u8,
                seed: request.get("seed").and_then(Value::as_u64).unwrap_or(0) as u16 % 10_000,
            }
        }
        "receipt_burst" => Inject::ReceiptBurst {
            receipts: request
                .get("receipts")
                .and_then(Value::as_u64)
                .filter(|n| (1..=200_000).contains(n))
                .ok_or("receipt_burst needs receipts from 1 to 200000")?
                as u32,
            seed: request.get("seed").and_then(Value::as_u64).unwrap_or(0) as u16 % 10_000,
        },
        other => {
            return Err(format!(
                "unknown kind {other:?} (malformed, oversize, unknown_command, raw, deliver_sm, mo_burst, receipt_burst, unbind, enquire_link)"
            ));
        }
    };
    Ok((inject, target))
}

fn parse_deliver_sm(request: &Value) -> Result<SmBody, String> {
    let short_message = match hex_field(request, "short_message_hex")? {
        Some(bytes) => bytes,
        None => str_field(request, "short_message")?
            .unwrap_or_default()
            .into_bytes(),
    };
    let tlvs = match request.get("tlvs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let tag = item
                    .get("tag")
                    .and_then(Value::as_u64)
                    .and_then(|t| u16::try_from(t).ok())
                    .ok_or("tlv tag must be an integer 0..=65535")?;
                let value = hex_field(item, "value_hex")?.unwrap_or_default();
                Ok(Tlv::new(tag, value))
            })
            .collect::<Result<Vec<_>, String>>()?,
        Some(_) => return Err("tlvs must be an array".to_owned()),
    };
    let body = SmBody {
        service_type: str_field(request, "service_type")?.unwrap_or_default(),
        source_addr_ton: u8_field(request, "source_addr_ton", 1)?,
        source_addr_npi: u8_field(request, "source_addr_npi", 1)?,
        source_addr: str_field(request, "source_addr")?.unwrap_or_default(),
        dest_addr_ton: u8_field(request, "dest_addr_ton", 1)?,
        dest_addr_npi: u8_field(request, "dest_addr_npi", 1)?,
        destination_addr: str_field(request, "destination_addr")?.unwrap_or_default(),
        esm_class: u8_field(request, "esm_class", 0)?,
        registered_delivery: u8_field(request, "registered_delivery", 0)?,
        data_coding: u8_field(request, "data_coding", 0)?,
        short_message,
        tlvs,
        ..SmBody::default()
    };
    validate_sm_body(&body).map_err(|e| e.to_string())?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_bodies_parse() {
        let (inject, conn) = parse_inject(&json!({
            "kind": "deliver_sm", "conn": 3, "source_addr": "447700900001",
            "destination_addr": "12345", "short_message_hex": "48656c6c6f",
            "esm_class": 4, "tlvs": [{"tag": 30, "value_hex": "616200"}],
        }))
        .expect("valid");
        assert_eq!(conn, Some(3));
        let Inject::DeliverSm(body) = inject else {
            panic!("expected deliver_sm")
        };
        assert_eq!(body.short_message, b"Hello");
        assert_eq!(body.esm_class, 4);
        assert_eq!(body.tlvs, vec![Tlv::new(0x1E, b"ab\0".to_vec())]);

        assert!(parse_inject(&json!({"kind": "raw", "hex": "zz"})).is_err());
        assert!(parse_inject(&json!({"kind": "nope"})).is_err());
        assert!(
            parse_inject(&json!({"kind": "deliver_sm", "source_addr": "x".repeat(30)})).is_err()
        );
        assert!(matches!(
            parse_inject(&json!({"kind": "oversize"})),
            Ok((Inject::Oversize, None))
        ));
    }
}
