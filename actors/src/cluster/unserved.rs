//! Commands pinned to a bind the operator does not have: `smpp.{op}.{dir}.{bindId}.dispatch`
//! with `bindId` at or above `bindCount` (the count lowered in OMS, or a publisher with a
//! stale one). Nobody consumes such a subject, and the dispatch stream keeps its messages
//! (work queue, no max age) without anyone seeing them. The pod running bind 0 sweeps them
//! now and then ([`smpp_connector::cluster::chores`]) into `sms.dispatch.dlq` (INVALID_FIELD, the bind named), each ACKed only once its
//! dead letter is stored.
//!
//! The `bindCount` is read from OMS for each sweep (a bind's own copy dates from its bind),
//! and a bind id that has an owner in `smpp-bind-owners` is left alone whatever the count
//! says: it runs somewhere.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use futures::{StreamExt, TryStreamExt};
use smpp_connector::config::{Direction, OperatorId};
use smpp_connector::dispatch::{unserved_pinned_bind, unserved_pinned_rejection};

use super::ChoreDeps;
use super::ownership::OWNERS_BUCKET;
use crate::events::{DispatchDeadLetter, dead_letter_msg_id, now_rfc3339, subject};
use crate::telemetry::metric;

/// Messages one sweep dead-letters per subject at most (the next sweep takes the rest).
const SWEEP_BATCH: usize = 500;

/// Dead-letter what waits on the pinned subjects of `operator`'s binds (in `direction`)
/// that it does not have. Returns how many were dead-lettered.
pub async fn sweep(
    deps: Arc<ChoreDeps>,
    operator: OperatorId,
    direction: Direction,
) -> anyhow::Result<u64> {
    let bind_count = deps
        .credentials
        .fetch(&operator)
        .await
        .context("credentials for the bind count")?
        .bind_count;
    let js = deps.publisher.context().clone();
    let stream = js
        .get_stream(&deps.config.dispatch_stream)
        .await
        .context("dispatch stream")?;
    let filter =
        smpp_connector::events::subject::pinned_dispatch_any(operator.as_str(), direction.as_str());
    let subjects: Vec<(String, usize)> = stream
        .info_with_subjects(&filter)
        .await
        .context("dispatch stream subjects")?
        .try_collect()
        .await
        .context("dispatch stream subjects")?;
    let owners = js
        .get_key_value(OWNERS_BUCKET)
        .await
        .context("bind owners bucket")?;
    let mut dead_lettered = 0;
    for (pinned, waiting) in subjects {
        let Some(bind_id) = unserved_pinned_bind(&pinned, bind_count).filter(|_| waiting > 0)
        else {
            continue;
        };
        let owner = owners
            .get(smpp_connector::cluster::ownership::owner_key(
                &operator, direction, bind_id,
            ))
            .await
            .context("bind owner key")?;
        if owner.is_some_and(|value| !value.is_empty()) {
            continue;
        }
        let swept = sweep_subject(&deps, &js, &operator, direction, bind_id, bind_count).await?;
        tracing::warn!(
            operatorId = %operator,
            direction = %direction,
            bindId = bind_id,
            bindCount = bind_count,
            commands = swept,
            "dispatch commands pinned to a bind the operator does not have were dead-lettered"
        );
        dead_lettered += swept;
    }
    Ok(dead_lettered)
}

/// Dead-letter up to [`SWEEP_BATCH`] messages of one unserved bind's pinned subject, through
/// its durable consumer (`qg-…`: a work queue allows one consumer per subject).
async fn sweep_subject(
    deps: &ChoreDeps,
    js: &async_nats::jetstream::Context,
    operator: &OperatorId,
    direction: Direction,
    bind_id: u16,
    bind_count: u16,
) -> anyhow::Result<u64> {
    let consumer = crate::nats::pinned_consumer(js, &deps.config, operator, direction, bind_id)
        .await
        .context("pinned consumer")?;
    let mut batch = consumer
        .fetch()
        .max_messages(SWEEP_BATCH)
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .context("pinned consumer fetch")?;
    let mut swept = 0;
    while let Some(message) = batch.next().await {
        let message = match message {
            Ok(message) => message,
            Err(err) => return Err(anyhow::anyhow!(err).context("pinned consumer fetch")),
        };
        let (stream_sequence, deliveries) = message
            .info()
            .map(|info| (info.stream_sequence, info.delivered.max(1) as u64))
            .unwrap_or((0, 1));
        let rejection = unserved_pinned_rejection(&message.payload, bind_id, bind_count);
        let letter = DispatchDeadLetter::new(
            rejection,
            message.subject.to_string(),
            stream_sequence,
            deliveries,
            now_rfc3339(),
        );
        // The stream sequence de-duplicates a sweep that stored the letter but died
        // before the ACK (the same id as a bind's dead letter of that message).
        let msg_id = dead_letter_msg_id(stream_sequence);
        deps.publisher
            .publish(subject::DISPATCH_DLQ, &letter, msg_id.as_deref(), None)
            .await
            .context("dead letter")?;
        message
            .ack()
            .await
            .map_err(|err| anyhow::anyhow!(err))
            .context("ack")?;
        metrics::counter!(metric::DEAD_LETTERS, "reason" => letter.reason).increment(1);
        swept += 1;
    }
    Ok(swept)
}
