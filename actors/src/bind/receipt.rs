//! What happens to a `deliver_sm`: a delivery receipt is parsed, correlated through
//! `CorrelationActor` (waiting a bounded time when it overtook its `submit_sm_resp`) and
//! published as `DlrInboundEvent`; anything else is a mobile-originated message,
//! published as `MoInboundEvent`. The returned status is what the bind answers the SMSC
//! with: ESME_ROK only once the event is acknowledged by JetStream, ESME_RX_T_APPN when
//! it could not be published (the SMSC delivers it again; the deterministic
//! `Nats-Msg-Id` de-duplicates).
//!
//! Never logs the text of a message or the addresses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use smpp_connector::config::BindKey;
use smpp_connector::dlr::{self, DlrError, ParsedReceipt};
use smpp_connector::encoding;
use smpp_connector::pdu::{CommandStatus, SmBody, find_tlv, tlv_tag};

use super::actor::BindDeps;
use crate::correlation::{ApplyReceipt, ReceiptKey, ReceiptMatch};
use crate::events::{DlrInboundEvent, MoInboundEvent, now_rfc3339, subject};
use crate::oms::Credentials;
use crate::telemetry::metric;

/// A deterministic id: the first 16 bytes of SHA-256 over the parts, as hex.
pub fn event_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0x1F]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// Handle one deliver_sm; returns the status of the deliver_sm_resp.
pub async fn handle(
    deps: Arc<BindDeps>,
    key: BindKey,
    credentials: Arc<Credentials>,
    body: SmBody,
    received: Instant,
) -> CommandStatus {
    let status = match dlr::parse_receipt(&body) {
        Ok(receipt) => publish_receipt(&deps, &key, &credentials, Some(receipt)).await,
        Err(DlrError::MissingMessageId { .. }) => {
            tracing::warn!(
                operatorId = %key.operator_id,
                bindId = key.bind_id,
                "receipt without a message id; published uncorrelated"
            );
            publish_receipt(&deps, &key, &credentials, None).await
        }
        Err(DlrError::NotAReceipt { .. }) => publish_mo(&deps, &key, &body).await,
    };
    metrics::histogram!(metric::DLR_LATENCY).record(received.elapsed().as_secs_f64());
    status
}

async fn correlate(deps: &BindDeps, key: ReceiptKey, status: &'static str) -> Option<ReceiptMatch> {
    let deadline = Instant::now() + deps.config.timers.receipt_correlation_wait;
    let mut pause = Duration::from_millis(50);
    loop {
        match deps
            .correlation
            .send(ApplyReceipt {
                key: key.clone(),
                status,
            })
            .await
        {
            Ok(Ok(Some(found))) => return Some(found),
            // Not there yet: the receipt may have overtaken its submit_sm_resp.
            Ok(Ok(None)) if Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Ok(Ok(None)) => return None,
            // Database down: publish uncorrelated, best effort (SPEC §7).
            Ok(Err(_)) | Err(_) => return None,
        }
    }
}

async fn publish_receipt(
    deps: &BindDeps,
    key: &BindKey,
    credentials: &Credentials,
    receipt: Option<ParsedReceipt>,
) -> CommandStatus {
    let operator_message_id = receipt.as_ref().map(|r| {
        dlr::normalize_receipt_id(
            &r.operator_message_id,
            credentials.dlr_id_format,
            credentials.msg_id_format,
        )
    });
    let status = receipt
        .as_ref()
        .map_or(dlr::DlrStatus::Unknown, |r| r.status);
    let matched = match &operator_message_id {
        Some(id) => {
            correlate(
                deps,
                ReceiptKey {
                    operator_id: key.operator_id.to_string(),
                    operator_message_id: id.clone(),
                },
                status.as_str(),
            )
            .await
        }
        None => None,
    };
    let raw_stat = receipt.as_ref().and_then(|r| r.raw_stat.clone());
    let error_code = receipt.as_ref().and_then(|r| r.error_code.clone());
    let done_date = receipt
        .as_ref()
        .and_then(|r| r.done_date.as_ref())
        .map(|d| d.to_rfc3339_utc());
    let id = event_id(&[
        key.operator_id.as_str(),
        operator_message_id.as_deref().unwrap_or(""),
        status.as_str(),
        raw_stat.as_deref().unwrap_or(""),
        done_date.as_deref().unwrap_or(""),
        error_code.as_deref().unwrap_or(""),
    ]);
    let event = DlrInboundEvent {
        version: "1.0",
        event_id: id.clone(),
        message_id: matched.as_ref().map(|m| m.message_id.clone()),
        operator_id: key.operator_id.to_string(),
        operator_message_id: operator_message_id.clone(),
        segment_index: matched.as_ref().map(|m| u32::from(m.segment_index)),
        segment_count: matched.as_ref().map(|m| u32::from(m.segment_count)),
        status: status.as_str(),
        smpp_message_state: receipt
            .as_ref()
            .and_then(|r| r.message_state.or(r.raw_message_state)),
        raw_stat,
        error_code,
        source: "DELIVER_SM",
        correlated: matched.is_some(),
        submit_date: receipt
            .as_ref()
            .and_then(|r| r.submit_date.as_ref())
            .map(|d| d.to_rfc3339_utc()),
        done_date,
        direction: key.direction.as_str(),
        bind_id: key.bind_id,
        received_at: now_rfc3339(),
    };
    let correlated = if matched.is_some() { "true" } else { "false" };
    if matched.is_none() {
        tracing::info!(
            operatorId = %key.operator_id,
            bindId = key.bind_id,
            operatorMessageId = operator_message_id.as_deref().unwrap_or(""),
            "receipt could not be correlated; published with messageId null"
        );
    }
    if deps.config.shadow_mode {
        // Migration phase 2: everything runs, nothing reaches dlr-processor.
        metrics::counter!(metric::DLR_EVENTS, "status" => status.as_str(), "correlated" => correlated, "published" => "shadow").increment(1);
        return CommandStatus::ESME_ROK;
    }
    match deps
        .publisher
        .publish(
            subject::DLR_INBOUND,
            &event,
            Some(&format!("dlr-{id}")),
            None,
        )
        .await
    {
        Ok(()) => {
            metrics::counter!(metric::DLR_EVENTS, "status" => status.as_str(), "correlated" => correlated, "published" => "true").increment(1);
            tracing::debug!(
                messageId = event.message_id.as_deref().unwrap_or(""),
                status = status.as_str(),
                "receipt published"
            );
            CommandStatus::ESME_ROK
        }
        Err(err) => {
            metrics::counter!(metric::BACKEND_ERRORS, "backend" => "nats").increment(1);
            tracing::warn!(error = %err, operatorId = %key.operator_id, "receipt not published; SMSC will redeliver");
            CommandStatus::ESME_RX_T_APPN
        }
    }
}

/// Decode the text of an MO by its data_coding. Binary codings are base64.
fn decode_mo(data_coding: u8, payload: &[u8]) -> (String, bool) {
    let text = match data_coding {
        0x00 | 0x01 => encoding::decode_gsm7(payload).ok(),
        0x03 => Some(encoding::decode_latin1(payload)),
        0x08 => encoding::decode_ucs2(payload).ok(),
        _ => None,
    };
    match text {
        Some(text) => (text, false),
        None => (base64(payload), true),
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Publish an MO. Concatenated parts are published one by one, marked incomplete with
/// their part count, until reassembly (SPEC §7) lands.
async fn publish_mo(deps: &BindDeps, key: &BindKey, body: &SmBody) -> CommandStatus {
    let payload: &[u8] = if body.short_message.is_empty() {
        find_tlv(&body.tlvs, tlv_tag::MESSAGE_PAYLOAD).map_or(&[], |t| t.value.as_slice())
    } else {
        &body.short_message
    };
    let (user_data, parts) = split_udh(body.esm_class, payload);
    let (text, binary) = decode_mo(body.data_coding, user_data);
    let event = MoInboundEvent {
        version: "1.0",
        event_id: uuid::Uuid::new_v4().to_string(),
        operator_id: key.operator_id.to_string(),
        from: body.source_addr.clone(),
        to: body.destination_addr.clone(),
        text,
        data_coding: body.data_coding,
        binary,
        parts: u32::from(parts),
        parts_received: 1,
        incomplete: parts > 1,
        bind_id: key.bind_id,
        received_at: now_rfc3339(),
    };
    match deps
        .publisher
        .publish(subject::MO_INBOUND, &event, None, None)
        .await
    {
        Ok(()) => CommandStatus::ESME_ROK,
        Err(err) => {
            metrics::counter!(metric::BACKEND_ERRORS, "backend" => "nats").increment(1);
            tracing::warn!(error = %err, operatorId = %key.operator_id, "MO not published; SMSC will redeliver");
            CommandStatus::ESME_RX_T_APPN
        }
    }
}

/// Strip a UDH (esm_class UDHI) and read the concatenation total, if any.
fn split_udh(esm_class: u8, payload: &[u8]) -> (&[u8], u8) {
    if esm_class & 0x40 == 0 || payload.is_empty() {
        return (payload, 1);
    }
    let udh_len = usize::from(payload[0]) + 1;
    if udh_len > payload.len() {
        return (payload, 1);
    }
    let total = match payload.get(1..udh_len) {
        Some([0x00, 0x03, _, total, _, ..]) => *total,
        Some([0x08, 0x04, _, _, total, _, ..]) => *total,
        _ => 1,
    };
    (&payload[udh_len..], total.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn event_ids_are_deterministic_and_separate_fields() {
        assert_eq!(event_id(&["a", "b"]), event_id(&["a", "b"]));
        assert_ne!(event_id(&["ab", ""]), event_id(&["a", "b"]));
        assert_eq!(event_id(&["x"]).len(), 32);
    }

    #[test]
    fn udh_is_stripped_and_the_total_read() {
        let payload = [0x05, 0x00, 0x03, 0x2A, 0x03, 0x01, b'h', b'i'];
        assert_eq!(split_udh(0x40, &payload), (&b"hi"[..], 3));
        assert_eq!(split_udh(0x00, &payload), (&payload[..], 1));
        assert_eq!(split_udh(0x40, &[0x09, 0x00]), (&[0x09, 0x00][..], 1));
    }
}
