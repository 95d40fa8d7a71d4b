//! What happens to a `deliver_sm`: a delivery receipt is parsed, correlated through
//! `CorrelationActor` (waiting a bounded time when it overtook its `submit_sm_resp`) and
//! published as `DlrInboundEvent`; anything else is a mobile-originated message
//! (`mo`: published as `MoInboundEvent`, concatenated parts reassembled). The returned status is what the bind answers the SMSC
//! with: ESME_ROK only once the event is acknowledged by JetStream, ESME_RX_T_APPN when
//! it could not be published (the SMSC delivers it again; the deterministic
//! `Nats-Msg-Id` de-duplicates).
//!
//! Never logs the text of a message or the addresses.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use smpp_connector::config::BindKey;
use smpp_connector::inbound::ReceiptWait;
use smpp_connector::inbound::dlr::{self, DlrError, ParsedReceipt};
use smpp_connector::protocol::pdu::{CommandStatus, SmBody};

use super::InboundDeps;
use super::ProgressCell;
use crate::correlation::{ApplyReceipt, ReceiptKey, ReceiptLookup, ReceiptMatch};
use crate::events::{DlrInboundEvent, now_rfc3339, subject};
use crate::oms::Credentials;
use crate::telemetry::internal_events::{
    InboundNotPublished, InboundPublished, InboundPublishing, emit,
};
use crate::telemetry::metric;
use crate::telemetry::traces;

/// Receipt publishing, logged once per outage.
static RECEIPT_PUBLISH: InboundPublishing = InboundPublishing::new("receipt publishing");

/// Handle one deliver_sm; returns the status of the deliver_sm_resp.
pub async fn handle(
    deps: Arc<InboundDeps>,
    key: BindKey,
    credentials: Arc<Credentials>,
    body: SmBody,
    received: Instant,
    progress: Arc<ProgressCell>,
) -> CommandStatus {
    let receipt = ReceiptContext {
        deps: &deps,
        key: &key,
        credentials: &credentials,
        received,
        progress,
    };
    let status = match dlr::parse_receipt(&body) {
        Ok(parsed) => publish_receipt(&receipt, Some(parsed)).await,
        Err(DlrError::MissingMessageId { .. }) => {
            tracing::warn!(
                operatorId = %key.operator_id,
                bindId = key.bind_id,
                "receipt without a message id; published uncorrelated"
            );
            publish_receipt(&receipt, None).await
        }
        Err(DlrError::NotAReceipt { .. }) => super::mo::handle(&deps, &key, &body).await,
    };
    metrics::histogram!(metric::DLR_LATENCY).record(received.elapsed().as_secs_f64());
    status
}

/// What one receipt's handling needs.
struct ReceiptContext<'a> {
    deps: &'a InboundDeps,
    key: &'a BindKey,
    credentials: &'a Credentials,
    received: Instant,
    /// The bind's progress: what its receipts wait on ([`smpp_connector::inbound`]).
    progress: Arc<ProgressCell>,
}

/// How long a receipt waits for a database that fails (a primary lost and a standby being
/// promoted takes seconds) before it is published uncorrelated, within
/// `RECEIPT_CORRELATION_WAIT_MS`. Longer would hold the SMSC's deliver_sm near its own
/// response timeout.
const STORE_ERROR_WAIT: Duration = Duration::from_secs(10);

/// Match a receipt with its row. Not there yet: it may have overtaken its
/// submit_sm_resp or its row; it waits for it as [`smpp_connector::inbound`] says, woken
/// by the row's write rather than asking again, then asks once more (a row another pod
/// wrote meanwhile). The database failing: asked again for up to [`STORE_ERROR_WAIT`] (a
/// failover), then published uncorrelated.
async fn correlate(
    context: &ReceiptContext<'_>,
    key: ReceiptKey,
    status: &'static str,
) -> Option<ReceiptMatch> {
    let deps = context.deps;
    let timers = &deps.config.timers;
    let arrival = context.received;
    let wait = ReceiptWait::new(
        arrival,
        timers.receipt_unmatched_grace,
        timers.receipt_correlation_wait,
    );
    let store_deadline =
        crate::clock::now() + timers.receipt_correlation_wait.min(STORE_ERROR_WAIT);
    let mut pause = Duration::from_millis(50);
    let count = |result: &'static str| {
        metrics::counter!(metric::RECEIPT_CORRELATION, "mno" => key.operator_id.clone(), "result" => result)
            .increment(1);
    };
    loop {
        let asked = crate::clock::now();
        let ask = ApplyReceipt {
            key: key.clone(),
            status,
            wait: true,
        }
        .ask(&deps.correlation);
        // Most receipts find their row at once or within the grace: one timer; the rest
        // wait on, following the bind's progress (boxed: the common path stays small).
        let mut ask = std::pin::pin!(ask);
        let answer = match tokio::time::timeout_at(wait.grace_until.into(), &mut ask).await {
            Ok(answer) => Some(answer),
            Err(_) => Box::pin(wait_longer(ask, wait, arrival, context.progress.clone())).await,
        };
        match answer {
            Some(Ok(ReceiptLookup {
                found: Some(found),
                waited,
            })) => {
                if !waited {
                    metrics::histogram!(metric::RECEIPT_LOOKUP_LATENCY)
                        .record(asked.elapsed().as_secs_f64());
                }
                count(if waited {
                    "matched_after_wait"
                } else {
                    "matched"
                });
                return Some(found);
            }
            // Waited long enough (the request dropped) or, oddly, answered without a row.
            None | Some(Ok(_)) => break,
            // The database failing: ask again a while (a failover; the SMSC waits on TCP
            // meanwhile if the inbound window fills), then publish uncorrelated, best
            // effort (SPEC §7).
            Some(Err(_)) if crate::clock::now() + pause < store_deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Some(_) => {
                count("store_error");
                return None;
            }
        }
    }
    // Once more: a row another bind's pod wrote meanwhile is not announced here.
    let last = ApplyReceipt {
        key: key.clone(),
        status,
        wait: false,
    }
    .ask(&deps.correlation)
    .await;
    match last {
        Ok(ReceiptLookup {
            found: Some(found), ..
        }) => {
            count("matched_after_wait");
            Some(found)
        }
        Ok(_) => {
            count("unmatched");
            None
        }
        Err(_) => {
            count("store_error");
            None
        }
    }
}

/// After the grace: the receipt's ask keeps waiting for its row until the bind's progress
/// releases it ([`ReceiptWait::is_over`], looked at every 50 ms) or its maximum wait ends
/// (`None`: the request is dropped, which the correlation actor sees).
async fn wait_longer<F>(
    ask: std::pin::Pin<&mut F>,
    wait: ReceiptWait,
    arrival: Instant,
    progress: Arc<ProgressCell>,
) -> Option<F::Output>
where
    F: std::future::Future,
{
    let released = async {
        let mut look = tokio::time::interval(Duration::from_millis(50));
        loop {
            look.tick().await;
            if wait.is_over(arrival, crate::clock::now(), &progress.load()) {
                return;
            }
        }
    };
    tokio::select! {
        answer = ask => Some(answer),
        () = released => None,
    }
}

async fn publish_receipt(
    context: &ReceiptContext<'_>,
    receipt: Option<ParsedReceipt>,
) -> CommandStatus {
    let (deps, key, credentials) = (context.deps, context.key, context.credentials);
    if receipt
        .as_ref()
        .is_some_and(|r| dlr::is_over_long(&r.operator_message_id))
    {
        crate::telemetry::bind_metrics::protocol_violation(
            &crate::telemetry::bind_metrics::bind_labels(key),
            "receipt_id_too_long",
        )
        .increment(1);
    }
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
                context,
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
    // Its trace: a `receipt` span from the deliver_sm read, linked to the dispatch's.
    let span = traces::receipt_span(
        key,
        matched.as_ref().and_then(|m| m.traceparent.as_deref()),
        SystemTime::now() - context.received.elapsed(),
    );
    let traceparent = traces::traceparent_of(&span);
    let event = DlrInboundEvent::from_receipt(
        key,
        receipt.as_ref(),
        operator_message_id,
        matched,
        now_rfc3339(),
    );
    let answer = publish_event(deps, key, &event, status, traceparent.as_deref()).await;
    traces::end_receipt(&span, event.correlated);
    answer
}

/// Publish a receipt's event (unless in shadow mode); the deliver_sm_resp status.
async fn publish_event(
    deps: &InboundDeps,
    key: &BindKey,
    event: &DlrInboundEvent,
    status: dlr::DlrStatus,
    traceparent: Option<&str>,
) -> CommandStatus {
    let id = event.event_id.clone();
    let correlated = if event.correlated { "true" } else { "false" };
    if !event.correlated {
        // Per receipt: debug (counted in smpp_connector_receipt_correlation_total; an
        // outage behind it is logged once by the correlation actor).
        tracing::debug!(
            operatorId = %key.operator_id,
            bindId = key.bind_id,
            operatorMessageId = event.operator_message_id.as_deref().unwrap_or(""),
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
            event,
            Some(&format!("dlr-{id}")),
            traceparent,
        )
        .await
    {
        Ok(published) => {
            emit(InboundPublished(&RECEIPT_PUBLISH));
            // A duplicate: an earlier publish of this receipt, unconfirmed, was stored.
            let label = if published.duplicate {
                "duplicate"
            } else {
                "true"
            };
            metrics::counter!(metric::DLR_EVENTS, "status" => status.as_str(), "correlated" => correlated, "published" => label).increment(1);
            tracing::debug!(
                messageId = event.message_id.as_deref().unwrap_or(""),
                status = status.as_str(),
                duplicate = published.duplicate,
                "receipt published"
            );
            CommandStatus::ESME_ROK
        }
        Err(err) => {
            // Unconfirmed: sent, the acknowledgement lost (it may be stored; the SMSC's
            // redelivery will tell, as a duplicate). Failed: not sent.
            let label = if matches!(err, crate::nats::PublishError::Unconfirmed { .. }) {
                "unconfirmed"
            } else {
                "failed"
            };
            metrics::counter!(metric::DLR_EVENTS, "status" => status.as_str(), "correlated" => correlated, "published" => label).increment(1);
            emit(InboundNotPublished {
                publishing: &RECEIPT_PUBLISH,
                error: &err,
                operator_id: key.operator_id.as_str(),
            });
            CommandStatus::ESME_RX_T_APPN
        }
    }
}
