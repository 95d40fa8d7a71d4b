//! Concatenated MO parts in Redis: [`StoreMoPart`], [`FinishMo`] and [`ClaimExpiredMo`],
//! each one script, so parts arriving on several binds or pods at once are decided one at
//! a time by Redis.
//!
//! A message is a hash `smpp:mo:{op}:{digest}` (fields in
//! [`smpp_connector::inbound::reassembly::field`]: the parts by sequence number, the meta, the
//! index it is listed in, the count, the state) listed in its first part's bind's open
//! index `smpp:mo:open:{op}:{bindId}` with the time its window ends. Times are the Redis
//! server's (`TIME`), so pods agree on windows whatever their clocks say.
//!
//! Life of a message:
//! 1. parts are stored (a repeat of a stored part changes nothing);
//! 2. the part that makes it complete gets every part back; the caller publishes the event
//!    and then [`FinishMo`] (`c`) takes it out of the index and keeps the hash a while as
//!    a tombstone, so a part the SMSC delivers again is recognised as a repeat instead of
//!    starting a new message;
//! 3. or its window ends first: the bind's expiry scan [`ClaimExpiredMo`] marks it `x`
//!    and pushes its index entry a lease ahead (another pod retries if this one dies
//!    before publishing), publishes it partial, and [`FinishMo`] (`p`). A part arriving
//!    while it is `x` is refused (the SMSC retries: by then the partial is out and the
//!    late part starts a message of its own — nothing is lost, nothing is in two events).
//!
//! Every script declares the keys it touches, and all of an operator's MO keys carry its
//! hash tag (one slot), so they run on Redis Cluster as on a standalone Redis. The expiry
//! scan takes two calls for that: [`DUE_SCRIPT`] names the messages whose window ended,
//! [`CLAIM_SCRIPT`] claims them, named as keys (and checked again: still listed, still
//! due). Messages stored under the names from before the hash tags are scanned and
//! published too, from their own (legacy) index.

use std::time::Duration;

use actix::prelude::*;
use fred::types::Value;
use smpp_connector::backends::RedisTopology;
use smpp_connector::inbound::reassembly::{
    MoKey, PartMeta, StoredMessage, legacy_open_index_key, open_index_key,
};

use super::{ThrottleActor, ThrottleError};

/// How long a claimed expired message may take to be published before another scan may
/// claim it again.
pub const CLAIM_LEASE: Duration = Duration::from_secs(30);

/// Expired messages one scan claims at most.
pub const CLAIM_LIMIT: u32 = 100;

/// How long an open message's hash lives beyond its window, if no scan ever comes (no pod
/// owns its bind): a guard against leaks, not the window.
const OPEN_GRACE: Duration = Duration::from_secs(3600);

/// ARGV: seq, stored value, meta JSON, window ms, total, hash TTL ms.
/// KEYS: the message hash, this bind's open index.
/// Returns `{0, stored}` waiting, `{1, fields}` complete (also for a repeated part once
/// complete: its publish had failed), `{2}` repeat of a stored part (of a finished
/// message: of a part whose SHA-1 the tombstone keeps), `{3}` being published partial (retry later), `{4, fields}` another message
/// under the same key is still open (publish it partial first).
pub const STORE_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'd')
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if state == 'x' then return {3} end
if state then
  if existing == redis.sha1hex(ARGV[2]) then return {2} end
  redis.call('DEL', KEYS[1])
  existing = false
elseif existing and existing ~= ARGV[2] then
  return {4, redis.call('HGETALL', KEYS[1])}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'm', ARGV[3], 'i', KEYS[2], 'n', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), KEYS[1])
end
if not existing then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[1], 'n', 1)
end
local n = tonumber(redis.call('HGET', KEYS[1], 'n'))
if n >= tonumber(ARGV[5]) then return {1, redis.call('HGETALL', KEYS[1])} end
if existing then return {2} end
return {0, n}
"#;

/// ARGV: final state (`c` or `p`), tombstone TTL ms. KEYS: the message hash, the index
/// that lists it. The hash stays as a tombstone (a repeated part is recognised) without
/// the numbers or the text: the meta goes, each part is kept as its SHA-1 only.
pub const FINISH_SCRIPT: &str = r#"
redis.call('ZREM', KEYS[2], KEYS[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  local fields = redis.call('HGETALL', KEYS[1])
  for i = 1, #fields, 2 do
    local f = fields[i]
    if f == 'm' then
      redis.call('HDEL', KEYS[1], 'm')
    elseif f ~= 'd' and f ~= 'i' and f ~= 'n' then
      redis.call('HSET', KEYS[1], f, redis.sha1hex(fields[i + 1]))
    end
  end
  redis.call('HSET', KEYS[1], 'd', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"#;

/// ARGV: limit. KEYS: the open index.
/// Returns `{open messages in the index, {hash key, ...}}`: the messages whose window has
/// ended, at most `limit`.
pub const DUE_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {redis.call('ZCARD', KEYS[1]), redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))}
"#;

/// ARGV: lease ms. KEYS: the open index, then the message hashes [`DUE_SCRIPT`] named.
/// Returns `{open messages in the index, {key, fields, key, fields, ...}, gone}`. A
/// message no longer listed or not due any more (another pod claimed it meanwhile) is
/// left alone.
pub const CLAIM_SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
local gone = 0
for i = 2, #KEYS do
  local key = KEYS[i]
  local due = redis.call('ZSCORE', KEYS[1], key)
  if due and tonumber(due) <= now then
    local state = redis.call('HGET', key, 'd')
    if redis.call('EXISTS', key) == 0 or (state and state ~= 'x') then
      if redis.call('EXISTS', key) == 0 then gone = gone + 1 end
      redis.call('ZREM', KEYS[1], key)
    else
      redis.call('HSET', key, 'd', 'x')
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), key)
      table.insert(out, key)
      table.insert(out, redis.call('HGETALL', key))
    end
  end
end
return {redis.call('ZCARD', KEYS[1]), out, gone}
"#;

/// Store one part of a concatenated MO.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Stored, ThrottleError>")]
pub struct StoreMoPart {
    pub key: MoKey,
    /// The bind the part came in on (its index lists the message if this part is first).
    pub bind_id: u16,
    pub seq: u8,
    /// [`smpp_connector::inbound::reassembly::stored_value`].
    pub value: Vec<u8>,
    pub window: Duration,
}

/// What became of a stored part.
#[derive(Clone)]
pub enum Stored {
    /// Stored; the message waits for more (`received` distinct parts so far).
    Waiting { received: u32 },
    /// This part completed the message: every part, to publish.
    Complete(StoredMessage),
    /// A repeat of a part already stored (the message waits for others, or is already
    /// published).
    Repeat,
    /// The message is being published partial right now: answer so the SMSC retries.
    Busy,
    /// A different message is open under the same key (its reference was reused before it
    /// completed): publish that one partial, [`FinishMo`] it, and store again.
    Conflict(StoredMessage),
}

impl std::fmt::Debug for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stored::Waiting { received } => write!(f, "Waiting({received})"),
            Stored::Complete(m) => write!(f, "Complete({} parts)", m.parts.len()),
            Stored::Repeat => f.write_str("Repeat"),
            Stored::Busy => f.write_str("Busy"),
            Stored::Conflict(m) => write!(f, "Conflict({} parts)", m.parts.len()),
        }
    }
}

/// One MO part to store ([`STORE_SCRIPT`]'s keys and arguments, typed).
#[derive(Clone)]
pub struct MoPartWrite {
    /// The message hash (`MoKey::redis_key`).
    pub hash_key: String,
    /// The open index of the bind the part came in on.
    pub index_key: String,
    pub seq: u8,
    /// `smpp_connector::inbound::reassembly::stored_value`.
    pub value: Vec<u8>,
    /// `PartMeta` as JSON.
    pub meta: String,
    /// The message's concatenation window, from its first part.
    pub window: Duration,
    /// Parts the message has.
    pub total: u8,
    /// How long the hash lives if no scan ever comes (window plus a grace).
    pub keep_open: Duration,
}

impl std::fmt::Debug for MoPartWrite {
    // The meta names the subscribers and the value is message text: never in a Debug.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoPartWrite")
            .field("hash_key", &self.hash_key)
            .field("seq", &self.seq)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// A message is out (published complete or partial): leave it as a tombstone.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ThrottleError>")]
pub struct FinishMo {
    /// The message hash ([`MoKey::redis_key`]).
    pub redis_key: String,
    /// The index that lists it (`smpp_connector::inbound::reassembly::index_of`).
    pub index_key: String,
    pub complete: bool,
    /// How long the tombstone recognises repeats.
    pub keep: Duration,
}

/// Claim a bind's messages whose window ended.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Claimed, ThrottleError>")]
pub struct ClaimExpiredMo {
    pub operator_id: String,
    pub bind_id: u16,
    /// The bind's index from before the hash tags (messages an earlier version stored).
    pub legacy: bool,
}

/// The answer to [`ClaimExpiredMo`].
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    /// Messages still listed in the bind's index (the claimed ones included).
    pub open: u64,
    /// (hash key, what it holds), each claimed for [`CLAIM_LEASE`].
    pub messages: Vec<(String, StoredMessage)>,
    /// Entries whose hash was gone (expired unpublished: parts lost).
    pub gone: u64,
}

fn protocol(what: &str) -> fred::error::Error {
    fred::error::Error::new(
        fred::error::ErrorKind::Parse,
        format!("unexpected reply of the MO {what} script"),
    )
}

/// `HGETALL` as a flat array of names and values.
fn fields(value: Value) -> StoredMessage {
    let mut items = value.into_array().into_iter();
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (items.next(), items.next()) {
        let bytes = |v: &Value| v.as_bytes().map(<[u8]>::to_vec).unwrap_or_default();
        pairs.push((bytes(&name), bytes(&value)));
    }
    StoredMessage::from_fields(pairs)
}

pub(super) fn parse_stored(reply: Value) -> Result<Stored, fred::error::Error> {
    let mut items = reply.into_array().into_iter();
    let code = items.next().and_then(|c| c.as_i64());
    let mut rest = || items.next().ok_or_else(|| protocol("store"));
    Ok(match code {
        Some(0) => Stored::Waiting {
            received: rest()?.as_i64().unwrap_or(0).clamp(0, 255) as u32,
        },
        Some(1) => Stored::Complete(fields(rest()?)),
        Some(2) => Stored::Repeat,
        Some(3) => Stored::Busy,
        Some(4) => Stored::Conflict(fields(rest()?)),
        _ => return Err(protocol("store")),
    })
}

pub(super) fn parse_claimed(reply: Value) -> Result<Claimed, fred::error::Error> {
    let mut items = reply.into_array().into_iter();
    let open = items
        .next()
        .and_then(|v| v.as_i64())
        .ok_or_else(|| protocol("claim"))?;
    let listed = items.next().ok_or_else(|| protocol("claim"))?;
    let gone = items.next().and_then(|v| v.as_i64()).unwrap_or(0);
    let mut listed = listed.into_array().into_iter();
    let mut messages = Vec::new();
    while let (Some(key), Some(hash)) = (listed.next(), listed.next()) {
        let key = key
            .as_str()
            .map(|k| k.to_string())
            .ok_or_else(|| protocol("claim"))?;
        messages.push((key, fields(hash)));
    }
    Ok(Claimed {
        open: open.max(0) as u64,
        messages,
        gone: gone.max(0) as u64,
    })
}

impl Handler<StoreMoPart> for ThrottleActor {
    type Result = ResponseActFuture<Self, Result<Stored, ThrottleError>>;

    fn handle(&mut self, msg: StoreMoPart, _ctx: &mut Context<Self>) -> Self::Result {
        let part = MoPartWrite {
            hash_key: msg.key.redis_key(),
            index_key: open_index_key(&msg.key.operator_id, msg.bind_id),
            seq: msg.seq,
            meta: PartMeta::new(&msg.key, msg.bind_id).to_json(),
            value: msg.value,
            window: msg.window,
            total: msg.key.total,
            keep_open: msg.window + OPEN_GRACE,
        };
        Box::pin(self.call(move |redis| redis.store_mo_part(part)))
    }
}

impl Handler<FinishMo> for ThrottleActor {
    type Result = ResponseActFuture<Self, Result<(), ThrottleError>>;

    fn handle(&mut self, msg: FinishMo, _ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(self.call(move |redis| {
            redis.finish_mo(msg.redis_key, msg.index_key, msg.complete, msg.keep)
        }))
    }
}

impl Handler<ClaimExpiredMo> for ThrottleActor {
    type Result = ResponseActFuture<Self, Result<Claimed, ThrottleError>>;

    fn handle(&mut self, msg: ClaimExpiredMo, _ctx: &mut Context<Self>) -> Self::Result {
        if msg.legacy && self.topology == RedisTopology::Cluster {
            // Redis Cluster was never served under the old names: nothing there.
            return Box::pin(actix::fut::ready(Ok(Claimed::default())));
        }
        let index = if msg.legacy {
            legacy_open_index_key(&msg.operator_id, msg.bind_id)
        } else {
            open_index_key(&msg.operator_id, msg.bind_id)
        };
        Box::pin(self.call(move |redis| async move {
            let (open, due) = redis.due_mo(index.clone(), CLAIM_LIMIT).await?;
            if due.is_empty() {
                return Ok(Claimed {
                    open,
                    ..Claimed::default()
                });
            }
            redis.claim_mo(index, due, CLAIM_LEASE).await
        }))
    }
}

pub(super) fn parse_due(reply: Value) -> Result<(u64, Vec<String>), fred::error::Error> {
    let mut items = reply.into_array().into_iter();
    let open = items
        .next()
        .and_then(|v| v.as_i64())
        .ok_or_else(|| protocol("due"))?;
    let due = items
        .next()
        .ok_or_else(|| protocol("due"))?
        .into_array()
        .into_iter()
        .map(|key| {
            key.as_str()
                .map(|k| k.to_string())
                .ok_or_else(|| protocol("due"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((open.max(0) as u64, due))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::String(s.into())
    }

    #[test]
    fn script_replies_parse() {
        let meta = r#"{"from":"a","to":"b","bindId":0,"reference":7,"total":2}"#;
        let hash = Value::Array(vec![
            bulk("m"),
            bulk(meta),
            bulk("1"),
            Value::Bytes(vec![0x08, 0xD8, 0x3D].into()),
        ]);
        let complete = parse_stored(Value::Array(vec![Value::Integer(1), hash.clone()])).unwrap();
        let Stored::Complete(stored) = complete else {
            panic!("complete expected")
        };
        assert_eq!(stored.parts, vec![(1, vec![0x08, 0xD8, 0x3D])]);
        assert_eq!(stored.meta.unwrap().reference, 7);
        assert!(matches!(
            parse_stored(Value::Array(vec![Value::Integer(0), Value::Integer(2)])).unwrap(),
            Stored::Waiting { received: 2 }
        ));
        assert!(matches!(
            parse_stored(Value::Array(vec![Value::Integer(2)])).unwrap(),
            Stored::Repeat
        ));
        assert!(parse_stored(Value::Array(vec![Value::Integer(9)])).is_err());
        assert!(parse_stored(Value::Array(vec![Value::Integer(1)])).is_err());

        let claimed = parse_claimed(Value::Array(vec![
            Value::Integer(3),
            Value::Array(vec![bulk("smpp:mo:op:1"), hash]),
            Value::Integer(1),
        ]))
        .unwrap();
        assert_eq!((claimed.open, claimed.gone), (3, 1));
        assert_eq!(claimed.messages[0].0, "smpp:mo:op:1");
        assert!(parse_claimed(Value::Array(vec![])).is_err());

        let (open, due) = parse_due(Value::Array(vec![
            Value::Integer(4),
            Value::Array(vec![bulk("smpp:mo:{op}:1"), bulk("smpp:mo:{op}:2")]),
        ]))
        .unwrap();
        assert_eq!((open, due.len()), (4, 2));
        assert!(parse_due(Value::Array(vec![Value::Integer(1)])).is_err());
    }
}
