//! Mobile-originated messages (SPEC §7): a single part is published at once; a part of a
//! concatenated message is stored in Redis ([`crate::throttle::mo`]) and the message is
//! published once, when its last part arrives or, with what came, when its window ends
//! (the bind's expiry scan). The deliver_sm_resp is ESME_ROK only once the part is
//! stored or the event acknowledged by JetStream; otherwise ESME_RX_T_APPN and the SMSC
//! delivers the part again (a stored part given again changes nothing; a complete
//! message's event id is derived from its parts, so publishing it again is one event).
//!
//! Never logs the text or the addresses.

use std::sync::Arc;
use std::time::Duration;

use smpp_connector::config::BindKey;
use smpp_connector::inbound::mo;
use smpp_connector::inbound::reassembly::{self, Assembled, MoKey, StoredMessage, index_of};
use smpp_connector::inbound::{PartStored, published_status};
use smpp_connector::protocol::pdu::{CommandStatus, SmBody};

use super::InboundDeps;
use crate::events::{MoInboundEvent, now_rfc3339, subject};
use crate::telemetry::internal_events::{
    InboundNotPublished, InboundPublished, InboundPublishing, MoPartsLost, emit,
};
use crate::telemetry::metric;
use crate::throttle::mo::{ClaimExpiredMo, Claimed, FinishMo, StoreMoPart, Stored};

/// MO publishing, logged once per outage.
static MO_PUBLISH: InboundPublishing = InboundPublishing::new("MO publishing");

/// How long a published message's hash stays as a tombstone (repeats of its parts are
/// recognised): at least this, or the window if longer.
const TOMBSTONE_MIN: Duration = Duration::from_secs(300);

/// Handle one MO `deliver_sm`; returns the status of the deliver_sm_resp.
pub async fn handle(deps: &InboundDeps, key: &BindKey, body: &SmBody) -> CommandStatus {
    let (user_data, concat) = mo::user_data(body);
    let Some(part) = concat else {
        return publish_single(deps, key, body, user_data).await;
    };
    let mo_key = MoKey::new(
        key.operator_id.as_str(),
        &body.source_addr,
        &body.destination_addr,
        part,
    );
    let redis_key = mo_key.redis_key();
    let value = reassembly::stored_value(body.data_coding, user_data);
    // A conflict is resolved once (the old message published partial), then stored again.
    for _ in 0..2 {
        let stored = deps
            .throttle
            .send(StoreMoPart {
                key: mo_key.clone(),
                bind_id: key.bind_id,
                seq: part.seq,
                value: value.clone(),
                window: deps.config.timers.concat_window,
            })
            .await;
        let stored = match stored {
            Ok(Ok(stored)) => stored,
            // Counted and logged once per outage by the throttle actor.
            Ok(Err(_)) | Err(_) => return answer(key, PartStored::NotStored),
        };
        match stored {
            Stored::Waiting { .. } => return answer(key, PartStored::Waiting),
            Stored::Repeat => return answer(key, PartStored::Repeat),
            Stored::Busy => return answer(key, PartStored::Busy),
            Stored::Complete(message) => {
                let published =
                    publish_stored(deps, &mo_key.operator_id, &redis_key, key.bind_id, &message);
                let published = published.await.is_ok();
                return answer(key, PartStored::Completed { published });
            }
            Stored::Conflict(old) => {
                count_part(key, "conflict");
                let published =
                    publish_stored(deps, &mo_key.operator_id, &redis_key, key.bind_id, &old);
                if published.await.is_err() {
                    return CommandStatus::ESME_RX_T_APPN;
                }
            }
        }
    }
    CommandStatus::ESME_RX_T_APPN
}

/// Count a part by what became of it; the status it is answered with.
fn answer(key: &BindKey, stored: PartStored) -> CommandStatus {
    count_part(key, stored.label());
    stored.status()
}

fn count_part(key: &BindKey, result: &'static str) {
    metrics::counter!(metric::CONCAT_PARTS, "mno" => key.operator_id.to_string(), "result" => result)
        .increment(1);
}

/// Publish what a message's hash holds (complete or not) and leave it as a tombstone.
/// A complete message names the bind its last part came in on (`bind_id`), a partial
/// one the bind of its first part. `Err` when the event could not be published (nothing
/// was finished).
async fn publish_stored(
    deps: &InboundDeps,
    operator_id: &str,
    redis_key: &str,
    bind_id: u16,
    stored: &StoredMessage,
) -> Result<(), ()> {
    // The index of the bind its first part came in on lists it.
    let listed_by = stored.meta.as_ref().map_or(bind_id, |meta| meta.bind_id);
    let index_key = index_of(redis_key, operator_id, listed_by);
    let Some((key, message)) = stored.assemble(operator_id) else {
        // No meta (not written by us) or no usable part: nothing to publish.
        tracing::warn!(operatorId = %operator_id, "stored MO parts unusable; dropped");
        finish(deps, redis_key.to_owned(), index_key, false).await;
        return Ok(());
    };
    let bind_id = match &stored.meta {
        Some(meta) if message.incomplete => meta.bind_id,
        _ => bind_id,
    };
    let event = message.event(&key, bind_id, now_rfc3339());
    publish(deps, &event).await?;
    count_message(operator_id, &message);
    finish(deps, redis_key.to_owned(), index_key, !message.incomplete).await;
    Ok(())
}

fn count_message(operator_id: &str, message: &Assembled) {
    let name = if message.incomplete {
        metric::CONCAT_PARTIAL
    } else {
        metric::CONCAT_COMPLETE
    };
    metrics::counter!(name, "mno" => operator_id.to_owned()).increment(1);
}

/// Take a published message out of its index. A failure leaves it listed: its expiry
/// scan publishes it again under the same event id, which JetStream de-duplicates.
async fn finish(deps: &InboundDeps, redis_key: String, index_key: String, complete: bool) {
    let keep = deps.config.timers.concat_window.max(TOMBSTONE_MIN);
    let _ = deps
        .throttle
        .send(FinishMo {
            redis_key,
            index_key,
            complete,
            keep,
        })
        .await;
}

async fn publish(deps: &InboundDeps, event: &MoInboundEvent) -> Result<(), ()> {
    match deps
        .publisher
        .publish(
            subject::MO_INBOUND,
            event,
            Some(&format!("mo-{}", event.event_id)),
            None,
        )
        .await
    {
        Ok(_) => {
            emit(InboundPublished(&MO_PUBLISH));
            Ok(())
        }
        Err(err) => {
            emit(InboundNotPublished {
                publishing: &MO_PUBLISH,
                error: &err,
                operator_id: &event.operator_id,
            });
            Err(())
        }
    }
}

/// A message in one part: no Redis involved (it is published even while Redis is down).
/// Its event id is random: two identical texts from one subscriber are two messages.
async fn publish_single(
    deps: &InboundDeps,
    key: &BindKey,
    body: &SmBody,
    user_data: &[u8],
) -> CommandStatus {
    let (text, binary) = mo::decode_text(body.data_coding, user_data);
    let event = MoInboundEvent {
        version: "1.0",
        event_id: uuid::Uuid::new_v4().to_string(),
        operator_id: key.operator_id.to_string(),
        from: body.source_addr.clone(),
        to: body.destination_addr.clone(),
        text,
        data_coding: body.data_coding,
        binary,
        parts: 1,
        parts_received: 1,
        incomplete: false,
        bind_id: key.bind_id,
        received_at: now_rfc3339(),
    };
    published_status(publish(deps, &event).await.is_ok())
}

/// One expiry scan of a bind's open index (or of its index from before the hash tags):
/// claim the messages whose window ended, publish each partial, and report how many are
/// still open.
pub async fn scan(deps: Arc<InboundDeps>, key: BindKey, legacy: bool) -> Option<u64> {
    let claimed: Claimed = deps
        .throttle
        .send(ClaimExpiredMo {
            operator_id: key.operator_id.to_string(),
            bind_id: key.bind_id,
            legacy,
        })
        .await
        .ok()?
        .ok()?;
    if claimed.gone > 0 {
        emit(MoPartsLost {
            mno: key.operator_id.as_str(),
            bind_id: key.bind_id,
            messages: claimed.gone,
        });
    }
    let mut published = 0u64;
    for (redis_key, stored) in &claimed.messages {
        // Unpublished: the lease runs out and a later scan (here or on another pod) tries
        // again; the event id stays the same.
        let outcome = publish_stored(
            &deps,
            key.operator_id.as_str(),
            redis_key,
            key.bind_id,
            stored,
        );
        if outcome.await.is_ok() {
            published += 1;
        }
    }
    Some(claimed.open.saturating_sub(published))
}

/// The expiry scans of the orphaned indexes (bind ids `ids`): their messages are published
/// partial when their window ends, like any other.
pub async fn scan_orphans(deps: Arc<InboundDeps>, key: BindKey, ids: std::ops::Range<u16>) {
    for bind_id in ids {
        let orphan = BindKey::new(key.operator_id.clone(), key.direction, bind_id);
        scan(deps.clone(), orphan, false).await;
    }
}
