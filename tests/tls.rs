//! TLS and credentials: SMPP over TLS to an SMSC (the simulator behind TLS with
//! certificates made for the test), with and without a client certificate, mTLS to OMS,
//! and NATS in operator mode with a JWT/NKey creds file. A certificate the service cannot
//! verify fails the bind with a clear reason and never crashes the bind; refused NATS
//! credentials stop startup with a line naming NATS_CREDS.

use std::time::Duration;

use serde_json::json;

use crate::support::pki::Pki;
use crate::support::sim::credentials;
use crate::support::{Nats, Oms, Service, Sim, Stage, correlation_rows, eventually, unique};

const T: Duration = Duration::from_secs(30);

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// The bind's `lastError` and state from the admin API.
async fn bind0(service: &Service) -> (String, String) {
    let (_, body) = service
        .admin_get("/admin/binds", Some(&service.token.clone()))
        .await;
    let bind = &body["binds"][0];
    (
        bind["state"].as_str().unwrap_or("").to_owned(),
        bind["lastError"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn smpp_over_tls_binds_sends_and_refuses_an_unverified_smsc() {
    let test = "tls_smpp";
    let pki = Pki::new(test);
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start_tls(test, json!({"receipts": true}), &pki, false);
    let oms = Oms::start(
        test,
        credentials(
            &op,
            sim.smpp_port,
            json!({"tls": true, "host": "localhost"}),
        ),
    );

    // Trusting the wrong CA: the bind fails with a TLS reason and keeps retrying.
    let wrong = path(&pki.other_ca);
    let untrusting = Service::start(
        "tls_smpp_wrong_ca",
        &nats,
        &oms,
        &op,
        &[("SMPP_TLS_CA_FILE", &wrong)],
    )
    .await;
    let (state, error) = eventually(T, "a TLS failure reported", || async {
        let (state, error) = bind0(&untrusting).await;
        error.starts_with("tls_failed").then_some((state, error))
    })
    .await;
    assert_ne!(state, "BOUND");
    assert!(error.contains("certificate"), "{error}");
    assert!(sim.stats().await["tls_failures"].as_u64().unwrap_or(0) >= 1);
    assert_eq!(untrusting.ready().await, 503);
    drop(untrusting);

    // Trusting the test CA: bound over TLS, messages sent and their receipts correlated.
    let ca = path(&pki.ca);
    let service = Service::start(test, &nats, &oms, &op, &[("SMPP_TLS_CA_FILE", &ca)]).await;
    service.wait_bound(1).await;
    let mut dlrs = nats.subscribe("sms.dlr.inbound").await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            nats.send_command(&op, &format!("+9370200{n:04}"), "Over TLS")
                .await,
        );
    }
    eventually(T, "three rows", || {
        let ids = ids.clone();
        async move { (correlation_rows(&ids).await.len() == 3).then_some(()) }
    })
    .await;
    for id in &ids {
        dlrs.wait_for(T, "receipt over TLS", |e| e["messageId"] == id.as_str())
            .await;
    }
    assert_eq!(sim.received("submit_sm").await.len(), 3);
    sim.assert_golden_clean().await;
    // The bytes counted per bind are TLS records, more than the PDUs themselves.
    assert!(
        service
            .metric_sum("smpp_connector_egress_bytes_total", "")
            .await
            > 0.0
    );
}

#[tokio::test]
async fn mutual_tls_to_the_smsc_needs_the_client_certificate() {
    let test = "tls_smpp_mutual";
    let pki = Pki::new(test);
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start_tls(test, json!({"receipts": false}), &pki, true);
    let oms = Oms::start(test, credentials(&op, sim.smpp_port, json!({"tls": true})));
    let ca = path(&pki.ca);
    // Without a client certificate the SMSC refuses the handshake.
    let anonymous = Service::start(
        "tls_smpp_anonymous",
        &nats,
        &oms,
        &op,
        &[("SMPP_TLS_CA_FILE", &ca)],
    )
    .await;
    eventually(T, "a refused handshake", || async {
        let (_, error) = bind0(&anonymous).await;
        (!error.is_empty() && sim.stats().await["tls_failures"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    assert_ne!(bind0(&anonymous).await.0, "BOUND");
    drop(anonymous);

    let (cert, key) = (path(&pki.client_cert), path(&pki.client_key));
    let service = Service::start(
        test,
        &nats,
        &oms,
        &op,
        &[
            ("SMPP_TLS_CA_FILE", &ca),
            ("SMPP_TLS_CERT_FILE", &cert),
            ("SMPP_TLS_KEY_FILE", &key),
        ],
    )
    .await;
    service.wait_bound(1).await;
    let id = nats.send_command(&op, "+93702009999", "Mutual TLS").await;
    eventually(T, "the row", || {
        let ids = vec![id.clone()];
        async move { (correlation_rows(&ids).await.len() == 1).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn credentials_come_from_oms_over_mutual_tls() {
    let test = "tls_oms";
    let pki = Pki::new(test);
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start(test, json!({"receipts": false}));
    let oms = Oms::start_mtls(test, credentials(&op, sim.smpp_port, json!({})), &pki);
    assert!(oms.url.starts_with("https://"), "{}", oms.url);
    let ca = path(&pki.ca);

    // Without the client certificate OMS refuses: no credentials, no bind, a clear error.
    let refused =
        Service::start("tls_oms_refused", &nats, &oms, &op, &[("OMS_CA_FILE", &ca)]).await;
    eventually(T, "credentials refused", || async {
        refused
            .logs()
            .iter()
            .any(|l| l["message"] == "credentials unavailable; binds of this operator wait")
            .then_some(())
    })
    .await;
    assert!(
        sim.connections().await.is_empty(),
        "no bind without credentials"
    );
    drop(refused);

    let (cert, key) = (path(&pki.client_cert), path(&pki.client_key));
    let service = Service::start(
        test,
        &nats,
        &oms,
        &op,
        &[
            ("OMS_CA_FILE", &ca),
            ("OMS_CERT_FILE", &cert),
            ("OMS_KEY_FILE", &key),
        ],
    )
    .await;
    service.wait_bound(1).await;
    service.assert_no_secrets(&[crate::support::sim::PASSWORD]);
}

#[tokio::test]
async fn bad_tls_settings_stop_startup_naming_the_variable() {
    let run = |extra: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_smpp-connector"));
        command
            .env_clear()
            .env("MNO_ID", "op")
            .env("NATS_URL", "nats://127.0.0.1:1")
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .env("DATABASE_URL", "postgres://u:p@127.0.0.1:1/x")
            .env("OMS_BASE_URL", "http://127.0.0.1:1")
            .env("ADMIN_TOKEN", "0123456789abcdef")
            .env("HTTP_PORT", "0")
            .env("ADMIN_PORT", "0");
        for (k, v) in extra {
            command.env(k, v);
        }
        let output = command.output().expect("run");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    // A certificate without its key: a configuration error.
    let (code, stderr) = run(&[("SMPP_TLS_CERT_FILE", "/nonexistent/client.pem")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("SMPP_TLS_KEY_FILE"), "{stderr}");
    // A CA file that cannot be read: startup stops at once, naming it.
    let (code, stderr) = run(&[("SMPP_TLS_CA_FILE", "/nonexistent/ca.pem")]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("SMPP_TLS_CA_FILE /nonexistent/ca.pem"),
        "{stderr}"
    );
    // A file that is not a certificate.
    let dir = crate::support::scratch("tls_bad_files");
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").expect("write");
    let (code, stderr) = run(&[("SMPP_TLS_CA_FILE", junk.to_str().unwrap())]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("SMPP_TLS_CA_FILE"), "{stderr}");
}

#[tokio::test]
async fn nats_with_jwt_credentials_from_a_creds_file() {
    let test = "nats_creds";
    let (nats, auth) = Nats::start_secured(test).await;
    // The server refuses anonymous clients.
    assert!(
        async_nats::connect(&nats.url).await.is_err(),
        "an anonymous client must not get in"
    );
    let creds = path(&auth.creds);
    let s = Stage::builder(test)
        .nats(nats)
        .sim(json!({"receipts": true}))
        .env(&[("NATS_CREDS", &creds)])
        .start()
        .await;
    let mut dlrs = s.nats.subscribe("sms.dlr.inbound").await;
    let id = s
        .nats
        .send_command(&s.op, "+93702007777", "With NATS creds")
        .await;
    dlrs.wait_for(T, "the receipt event", |e| e["messageId"] == id.as_str())
        .await;
    let creds_text = std::fs::read_to_string(&auth.creds).unwrap();
    let seed = creds_text
        .lines()
        .find(|l| l.starts_with("SU"))
        .expect("user seed");
    s.service.assert_no_secrets(&[seed]);
    drop(s.service);

    // A user of an account the server does not know: the service says so and stops.
    let foreign = path(&auth.foreign_creds);
    let mut refused = Service::start_unready(
        "nats_creds_foreign",
        &s.nats,
        &s.oms,
        &s.op,
        &[("NATS_CREDS", &foreign)],
    );
    let status = refused.wait_exit(Duration::from_secs(20)).await;
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    assert!(
        refused
            .log_text()
            .contains("refused the credentials (NATS_CREDS)"),
        "the failure names NATS_CREDS: {}",
        refused.log_text()
    );
}

/// The NKey/JWT credentials file keeps working beside TLS to NATS: a server in operator
/// mode that talks TLS only, the service with `NATS_CREDS`, a `tls://` URL and
/// `NATS_TLS_CA_FILE`.
#[tokio::test]
async fn nats_creds_beside_tls() {
    let test = "nats_creds_tls";
    let pki = crate::support::pki::Pki::new(test);
    let (nats, auth) = Nats::start_secured_tls(test, &pki).await;
    assert!(nats.url.starts_with("tls://"));
    let creds = path(&auth.creds);
    let ca = path(&pki.ca);
    let s = Stage::builder(test)
        .nats(nats)
        .sim(json!({"receipts": true}))
        .env(&[("NATS_CREDS", &creds), ("NATS_TLS_CA_FILE", &ca)])
        .start()
        .await;
    assert_eq!(s.service.logs_with("nats")[0]["tls"], true);
    let mut dlrs = s.nats.subscribe("sms.dlr.inbound").await;
    let id = s
        .nats
        .send_command(&s.op, "+93702007778", "With NATS creds over TLS")
        .await;
    dlrs.wait_for(T, "the receipt event", |e| e["messageId"] == id.as_str())
        .await;
}
