//! `oms-stub`: a stand-in for the operator-management-service, for the whole-service
//! tests and the local demo.
//!
//! Owns one HTTP listener (actix-web). Endpoints:
//! - `GET  /internal/operators/{operatorId}/smpp-credentials` → 200 with that operator's
//!   object from the credentials file (`operatorId` added when missing), 404
//!   `{"error":"unknown operator"}`, 500 when the file cannot be read or parsed. The file
//!   (`{"<operatorId>": {credentials}, ...}`, values per
//!   `contracts/smpp-credentials.schema.json`) is re-read on every request, so a test
//!   rotates credentials by rewriting it.
//! - `POST /fail` `{"status":503,"count":N}` → the next N credential requests answer
//!   `status` (OMS outage); `count` 0 clears.
//! - `GET  /requests` → `{"<operatorId>": N}`: credential requests received per operator
//!   (injected failures and 404s included). `POST /requests/reset` zeroes them.
//!
//! Prints `{"http":"127.0.0.1:PORT"}` on stdout once listening; logs go to stderr.
//! It must not log a password or a credentials body.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};

/// OMS stub serving SMPP credentials from a JSON file. Flags also as OMS_STUB_<FLAG>.
#[derive(Debug, Parser)]
#[command(name = "oms-stub", version)]
struct Cli {
    /// HTTP listener.
    #[arg(long, env = "OMS_STUB_LISTEN", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Credentials file: {"<operatorId>": {credentials object}, ...}; re-read per request.
    #[arg(long, env = "OMS_STUB_FILE")]
    file: PathBuf,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "OMS_STUB_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "OMS_STUB_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Require a client certificate signed by this PEM CA (mTLS, as OMS does).
    #[arg(long, env = "OMS_STUB_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
}

/// A pending injected failure.
#[derive(Debug, Clone, Copy)]
struct Failure {
    status: StatusCode,
    remaining: u64,
}

#[derive(Debug)]
struct Stub {
    file: PathBuf,
    failure: Mutex<Option<Failure>>,
    requests: Mutex<BTreeMap<String, u64>>,
}

impl Stub {
    /// Consume one injected failure, if any is pending.
    fn take_failure(&self) -> Option<StatusCode> {
        let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        let pending = failure.as_mut()?;
        let status = pending.status;
        pending.remaining = pending.remaining.saturating_sub(1);
        if pending.remaining == 0 {
            *failure = None;
        }
        Some(status)
    }

    fn count_request(&self, operator_id: &str) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(operator_id.to_owned())
            .or_default() += 1;
    }

    /// The whole credentials file as a JSON object.
    fn load(&self) -> Result<serde_json::Map<String, Value>, String> {
        let text = std::fs::read(&self.file)
            .map_err(|e| format!("cannot read {}: {e}", self.file.display()))?;
        // The serde error names a line and column, never the content.
        match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(operators)) => Ok(operators),
            Ok(_) => Err(format!(
                "{} is not a JSON object keyed by operatorId",
                self.file.display()
            )),
            Err(e) => Err(format!("{} is not valid JSON: {e}", self.file.display())),
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": message.into()}))
}

async fn credentials(stub: web::Data<Stub>, path: web::Path<String>) -> HttpResponse {
    let operator_id = path.into_inner();
    stub.count_request(&operator_id);
    if let Some(status) = stub.take_failure() {
        tracing::info!(operator_id = %operator_id, status = status.as_u16(), "injected failure");
        return error(status, "injected failure");
    }
    let operators = match stub.load() {
        Ok(operators) => operators,
        Err(message) => {
            tracing::error!(error = %message, "credentials file unusable");
            return error(StatusCode::INTERNAL_SERVER_ERROR, message);
        }
    };
    match operators.get(&operator_id) {
        Some(Value::Object(fields)) => {
            let mut body = fields.clone();
            body.entry("operatorId")
                .or_insert_with(|| Value::String(operator_id.clone()));
            tracing::info!(operator_id = %operator_id, "credentials served");
            HttpResponse::Ok().json(Value::Object(body))
        }
        Some(_) => {
            let message = format!("credentials of {operator_id} are not a JSON object");
            tracing::error!(operator_id = %operator_id, "credentials entry is not an object");
            error(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
        None => {
            tracing::info!(operator_id = %operator_id, "unknown operator");
            error(StatusCode::NOT_FOUND, "unknown operator")
        }
    }
}

async fn fail(stub: web::Data<Stub>, body: web::Bytes) -> HttpResponse {
    let request: Value = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")),
    };
    let status = match request.get("status") {
        None | Some(Value::Null) => Some(503),
        Some(value) => value.as_u64(),
    }
    .and_then(|s| u16::try_from(s).ok())
    .and_then(|s| StatusCode::from_u16(s).ok())
    .filter(|s| s.as_u16() >= 200);
    let Some(status) = status else {
        return error(
            StatusCode::BAD_REQUEST,
            "status must be an HTTP status 200..=999",
        );
    };
    let count = match request.get("count") {
        None | Some(Value::Null) => Some(1),
        Some(value) => value.as_u64(),
    };
    let Some(count) = count else {
        return error(
            StatusCode::BAD_REQUEST,
            "count must be a non-negative integer",
        );
    };
    *stub.failure.lock().unwrap_or_else(|e| e.into_inner()) = (count > 0).then_some(Failure {
        status,
        remaining: count,
    });
    tracing::info!(status = status.as_u16(), count, "failures armed");
    HttpResponse::Ok().json(json!({"status": status.as_u16(), "count": count}))
}

async fn requests(stub: web::Data<Stub>) -> HttpResponse {
    let counts = stub
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    HttpResponse::Ok().json(counts)
}

async fn reset_requests(stub: web::Data<Stub>) -> HttpResponse {
    stub.requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    HttpResponse::Ok().json(json!({}))
}

async fn not_found() -> HttpResponse {
    error(StatusCode::NOT_FOUND, "no such endpoint")
}

fn app_config(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/internal/operators/{operatorId}/smpp-credentials",
        web::get().to(credentials),
    )
    .route("/fail", web::post().to(fail))
    .route("/requests", web::get().to(requests))
    .route("/requests/reset", web::post().to(reset_requests))
    .default_service(web::to(not_found));
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    smpp_connector_testkit::init_logging("OMS_STUB_LOG");
    let cli = Cli::parse();
    if !cli.file.exists() {
        tracing::warn!(file = %cli.file.display(), "credentials file does not exist yet");
    }
    let listener = std::net::TcpListener::bind(cli.listen)
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let addr = listener.local_addr()?;
    let stub = web::Data::new(Stub {
        file: cli.file,
        failure: Mutex::new(None),
        requests: Mutex::new(BTreeMap::new()),
    });
    let tls =
        smpp_connector_testkit::tls::server_config(&smpp_connector_testkit::tls::ServerFiles {
            cert: cli.tls_cert,
            key: cli.tls_key,
            client_ca: cli.tls_client_ca,
        })?;
    let https = tls.is_some();
    let server = HttpServer::new(move || App::new().app_data(stub.clone()).configure(app_config))
        .workers(1)
        .shutdown_timeout(1);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, (*config).clone())?,
        None => server.listen(listener)?,
    }
    .run();
    {
        let mut stdout = std::io::stdout().lock();
        let scheme = if https { "https" } else { "http" };
        writeln!(
            stdout,
            "{}",
            json!({"http": addr.to_string(), "scheme": scheme})
        )?;
        stdout.flush()?;
    }
    tracing::info!(http = %addr, "oms-stub listening");
    server.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use actix_web::test;

    use super::*;

    fn stub(file: PathBuf) -> web::Data<Stub> {
        web::Data::new(Stub {
            file,
            failure: Mutex::new(None),
            requests: Mutex::new(BTreeMap::new()),
        })
    }

    #[actix_web::test]
    async fn serves_credentials_failures_and_counts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("creds.json");
        std::fs::write(
            &file,
            r#"{"op1": {"host": "127.0.0.1", "port": 2775, "systemId": "smppclient1", "password": "password"}}"#,
        )
        .expect("write creds");
        let app = test::init_service(
            App::new()
                .app_data(stub(file.clone()))
                .configure(app_config),
        )
        .await;

        let path = "/internal/operators/op1/smpp-credentials";
        let body: Value =
            test::call_and_read_body_json(&app, test::TestRequest::get().uri(path).to_request())
                .await;
        assert_eq!(body["operatorId"], "op1");
        assert_eq!(body["port"], 2775);

        let resp = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/internal/operators/nope/smpp-credentials")
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);

        let resp = test::call_service(
            &app,
            test::TestRequest::post()
                .uri("/fail")
                .set_payload(r#"{"status":503,"count":1}"#)
                .to_request(),
        )
        .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let resp = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let resp = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK);

        std::fs::write(&file, "{ not json").expect("write creds");
        let resp = test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);

        let counts: Value = test::call_and_read_body_json(
            &app,
            test::TestRequest::get().uri("/requests").to_request(),
        )
        .await;
        assert_eq!(counts, json!({"op1": 4, "nope": 1}));
    }
}
