//! Intake and MO: a command planned, the reference fallback, MO parts lost.

// Events live for one `emit`, often borrowing an error as `&dyn Display`: no `Debug`.
#![allow(missing_debug_implementations)]

use super::InternalEvent;
use crate::telemetry::metric;

/// A command planned into parts: its encoding, its parts, GSM7_FORCE replacements and
/// a segment fingerprint that differs from ours (billing parity).
pub struct SubmitPlanned<'a> {
    pub plan: &'a smpp_connector::dispatch::SubmitPlan,
    pub message_id: &'a str,
    pub operator_id: &'a str,
}

impl InternalEvent for SubmitPlanned<'_> {
    fn emit(self) {
        let plan = self.plan;
        let detection = match plan.detection {
            smpp_connector::encoding::Detection::Auto => "auto",
            smpp_connector::encoding::Detection::Forced => "forced",
        };
        metrics::counter!(metric::ENCODING, "encoding" => plan.encoded_as.as_str(), "detection" => detection).increment(1);
        let long = plan.bodies.len() > 1
            || plan
                .bodies
                .first()
                .is_some_and(|b| b.short_message.is_empty() && !b.tlvs.is_empty());
        if long {
            metrics::counter!(metric::LONG_MESSAGE_SEGMENTS, "strategy" => plan.strategy.as_str().to_ascii_lowercase())
                .increment(plan.bodies.len() as u64);
        }
        if plan.replaced > 0 {
            metrics::counter!(metric::GSM7_FORCE_REPLACEMENTS).increment(plan.replaced as u64);
            tracing::info!(
                messageId = self.message_id,
                operatorId = self.operator_id,
                replaced = plan.replaced,
                "GSM7_FORCE replaced characters outside GSM 03.38"
            );
        }
        if let Some(check) = plan.fingerprint_check.as_ref().filter(|c| !c.matches) {
            metrics::counter!(metric::FINGERPRINT_MISMATCHES).increment(1);
            tracing::warn!(
                messageId = self.message_id,
                operatorId = self.operator_id,
                ours = %check.ours,
                "segmentFingerprint differs from ours (billing parity)"
            );
        }
    }
}

/// No concatenation reference block from Redis: the local counter until one arrives.
pub struct ConcatRefFallback;

impl InternalEvent for ConcatRefFallback {
    fn emit(self) {
        metrics::counter!(metric::CONCAT_REF_FALLBACKS).increment(1);
        tracing::warn!(
            "no concatenation reference block from Redis; using a local counter until one arrives"
        );
    }
}

/// MO parts expired in Redis before their message was published.
pub struct MoPartsLost<'a> {
    pub mno: &'a str,
    pub bind_id: u16,
    pub messages: u64,
}

impl InternalEvent for MoPartsLost<'_> {
    fn emit(self) {
        metrics::counter!(metric::CONCAT_LOST, "mno" => self.mno.to_owned())
            .increment(self.messages);
        tracing::warn!(
            operatorId = self.mno,
            bindId = self.bind_id,
            messages = self.messages,
            "MO parts expired in Redis before their message was published"
        );
    }
}
