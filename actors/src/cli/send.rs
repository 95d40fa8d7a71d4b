//! `smpp-connector send`: publish one SmsDispatchCommand and wait for its delivery
//! receipt event — the smoke test an on-call engineer runs after a deploy.
//!
//! Prints the command it published and the `sms.dlr.inbound` event(s) for it. Exits 0
//! when a receipt arrived, 1 on timeout or when the command was dead-lettered.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::events::subject;

/// Options of `send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// Operator to send through (the service must serve it).
    #[arg(long, env = "MNO_ID")]
    pub operator: String,
    /// Destination MSISDN (E.164, with or without +).
    #[arg(long)]
    pub to: String,
    /// Message text.
    #[arg(long)]
    pub text: String,
    /// Sender id (default: the operator's sourceAddr).
    #[arg(long)]
    pub from: Option<String>,
    /// AUTO, GSM7, UCS2 or GSM7_FORCE.
    #[arg(long)]
    pub encoding: Option<String>,
    /// CSMS, SAR or TLV (default: the operator's).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Message id (default: a new UUID).
    #[arg(long)]
    pub message_id: Option<String>,
    /// How long to wait for the receipt.
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
    /// NATS server (a comma-separated list for a cluster).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// NKey/JWT credentials file.
    #[arg(long, env = "NATS_CREDS")]
    pub nats_creds: Option<String>,
    /// CA bundle that verifies the NATS servers (TLS).
    #[arg(long, env = "NATS_TLS_CA_FILE")]
    pub nats_tls_ca_file: Option<String>,
    /// Client certificate for NATS servers that require mutual TLS (with the key).
    #[arg(long, env = "NATS_TLS_CERT_FILE")]
    pub nats_tls_cert_file: Option<String>,
    /// Key of the client certificate.
    #[arg(long, env = "NATS_TLS_KEY_FILE")]
    pub nats_tls_key_file: Option<String>,
}

pub async fn run(args: SendArgs) -> anyhow::Result<bool> {
    let settings = smpp_connector::config::NatsSettings::parse(
        &args.nats_url,
        args.nats_creds.clone(),
        smpp_connector::config::TlsFiles {
            ca_file: args.nats_tls_ca_file.clone(),
            cert_file: args.nats_tls_cert_file.clone(),
            key_file: args.nats_tls_key_file.clone(),
        },
        None,
    )?;
    let (options, servers) =
        crate::nats::connect_options(&settings, "smpp-connector-send".to_owned()).await?;
    let client = options
        .connect(servers.as_slice())
        .await
        .with_context(|| format!("NATS_URL {} unreachable", settings.display))?;
    let message_id = args
        .message_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut command = json!({
        "version": "1.0",
        "messageId": message_id,
        "operatorId": args.operator,
        "to": args.to,
        "text": args.text,
        "registeredDelivery": true,
        "createdAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    if let Some(from) = &args.from {
        command["from"] = json!(from);
    }
    if let Some(encoding) = &args.encoding {
        command["encoding"] = json!(encoding);
    }
    if let Some(strategy) = &args.strategy {
        command["longMessageStrategy"] = json!(strategy);
    }

    // Subscribe before publishing so no event is missed.
    let mut dlrs = client.subscribe(subject::DLR_INBOUND).await?;
    let mut dlq = client.subscribe(subject::DISPATCH_DLQ).await?;
    let js = async_nats::jetstream::new(client.clone());
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", message_id.as_str());
    let dispatch_subject = subject::operator_dispatch(&args.operator);
    js.publish_with_headers(
        dispatch_subject.clone(),
        headers,
        serde_json::to_vec(&command)?.into(),
    )
    .await?
    .await
    .context(
        "the SMS_DISPATCH stream did not acknowledge the command (is the service's stream there?)",
    )?;
    println!("published to {dispatch_subject}:");
    println!("{}", serde_json::to_string_pretty(&command)?);
    println!(
        "waiting up to {}s for the delivery receipt…",
        args.timeout_secs
    );

    let deadline = tokio::time::sleep(Duration::from_secs(args.timeout_secs));
    tokio::pin!(deadline);
    let mut received = false;
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            Some(message) = dlrs.next() => {
                let Ok(event) = serde_json::from_slice::<Value>(&message.payload) else { continue };
                if event["messageId"] == json!(message_id) {
                    println!("receipt on {}:", subject::DLR_INBOUND);
                    println!("{}", serde_json::to_string_pretty(&event)?);
                    received = true;
                    let segment_count = event["segmentCount"].as_u64().unwrap_or(1);
                    let final_status = !matches!(event["status"].as_str(), Some("ENROUTE" | "ACCEPTED"));
                    if final_status && segment_count <= 1 {
                        break;
                    }
                }
            }
            Some(message) = dlq.next() => {
                let Ok(letter) = serde_json::from_slice::<Value>(&message.payload) else { continue };
                if letter["messageId"] == json!(message_id) {
                    println!("dead-lettered on {}:", subject::DISPATCH_DLQ);
                    println!("{}", serde_json::to_string_pretty(&letter)?);
                    return Ok(false);
                }
            }
        }
    }
    if !received {
        eprintln!(
            "no receipt for messageId {message_id} within {}s",
            args.timeout_secs
        );
    }
    Ok(received)
}
