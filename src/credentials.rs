//! The SMPP credentials contract (`contracts/smpp-credentials.schema.json`), as
//! operator-management-service serves it, and what a bind makes of it: the sessions to
//! open, their bind request and timers, the submit profile.
//!
//! Parsing and validation live here so that every limit the wire format depends on is
//! checked before a socket is opened. Errors name fields, never values: a credentials
//! document holds the SMPP password.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Direction, Secret, Timers};
use crate::dispatch::SubmitProfile;
use crate::encoding::{RefBits, Strategy};
use crate::inbound::dlr::IdFormat;
use crate::protocol::pdu::{BindMode, BindRequest, INTERFACE_VERSION};
use crate::protocol::session::SessionConfig;

/// How to bind when the direction is `trx` (schema `bindMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum BindModePreference {
    /// bind_transceiver, falling back to TX + RX on ESME_RINVCMDID.
    #[default]
    #[serde(rename = "TRX")]
    Trx,
    /// bind_transmitter + bind_receiver straight away.
    #[serde(rename = "TX_RX")]
    TxRx,
}

/// The credentials document (contracts/smpp-credentials.schema.json).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub operator_id: String,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: bool,
    pub system_id: String,
    pub password: Secret,
    #[serde(default)]
    pub system_type: String,
    #[serde(default)]
    pub bind_mode: BindModePreference,
    #[serde(default = "default_bind_count")]
    pub bind_count: u16,
    #[serde(default = "default_window")]
    pub window: u32,
    #[serde(default)]
    pub tps_limit: Option<u32>,
    #[serde(default)]
    pub backup_operator_id: Option<String>,
    #[serde(default = "default_strategy")]
    pub long_message_strategy: Strategy,
    #[serde(default = "default_concat_ref_bits")]
    pub concat_ref_bits: u8,
    #[serde(default)]
    pub msg_id_format: IdFormat,
    #[serde(default)]
    pub dlr_id_format: IdFormat,
    #[serde(default)]
    pub source_addr: Option<String>,
    #[serde(default = "default_source_ton")]
    pub source_ton: u8,
    #[serde(default)]
    pub source_npi: u8,
    #[serde(default = "default_one")]
    pub dest_ton: u8,
    #[serde(default = "default_one")]
    pub dest_npi: u8,
    #[serde(default = "default_enquire_link_seconds")]
    pub enquire_link_seconds: u64,
}

fn default_strategy() -> Strategy {
    Strategy::Csms
}
/// The largest `bindCount` (the credentials contract's maximum).
pub const MAX_BIND_COUNT: u16 = 64;

fn default_bind_count() -> u16 {
    1
}
fn default_window() -> u32 {
    100
}
fn default_concat_ref_bits() -> u8 {
    8
}
fn default_source_ton() -> u8 {
    5
}
fn default_one() -> u8 {
    1
}
/// The longest enquire_link interval accepted from OMS (a day).
pub const MAX_ENQUIRE_LINK_SECONDS: u64 = 86_400;

fn default_enquire_link_seconds() -> u64 {
    30
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("operator_id", &self.operator_id)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("system_id", &self.system_id)
            .field("password", &self.password)
            .field("bind_count", &self.bind_count)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parse and validate a credentials document fetched for `operator_id`.
    pub fn from_json(body: &[u8], operator_id: &str) -> Result<Self, CredentialsError> {
        // serde_json's messages can quote the offending value (a password): keep only the
        // kind of error and its position.
        let credentials: Credentials =
            serde_json::from_slice(body).map_err(|e| CredentialsError::Json {
                category: match e.classify() {
                    serde_json::error::Category::Io => "io",
                    serde_json::error::Category::Syntax => "syntax",
                    serde_json::error::Category::Data => "data",
                    serde_json::error::Category::Eof => "eof",
                },
                line: e.line(),
                column: e.column(),
            })?;
        if credentials.operator_id != operator_id {
            return Err(CredentialsError::OperatorMismatch);
        }
        credentials.validate()?;
        Ok(credentials)
    }

    /// Check the limits of the schema that the wire format depends on.
    pub fn validate(&self) -> Result<(), CredentialsError> {
        let invalid = |field: &'static str, problem: &'static str| {
            Err(CredentialsError::Invalid { field, problem })
        };
        if self.system_id.is_empty() || self.system_id.len() > 15 {
            return invalid("systemId", "must be 1..15 characters");
        }
        if self.password.expose().len() > 8 {
            return invalid("password", "must be at most 8 octets");
        }
        if self.system_type.len() > 12 {
            return invalid("systemType", "must be at most 12 characters");
        }
        if self.host.is_empty() || self.port == 0 {
            return invalid("host/port", "must name a reachable SMSC");
        }
        if !(1..=MAX_BIND_COUNT).contains(&self.bind_count) {
            return invalid("bindCount", "must be 1..64");
        }
        if !(1..=10_000).contains(&self.window) {
            return invalid("window", "must be 1..10000");
        }
        if !matches!(self.concat_ref_bits, 8 | 16) {
            return invalid("concatRefBits", "must be 8 or 16");
        }
        // The contract sets no maximum; a day is far beyond any SMSC's idle timeout, and
        // a larger value would overflow the session's deadline arithmetic.
        if !(5..=MAX_ENQUIRE_LINK_SECONDS).contains(&self.enquire_link_seconds) {
            return invalid("enquireLinkSeconds", "must be 5..86400");
        }
        if self.tps_limit == Some(0) {
            return invalid("tpsLimit", "must be at least 1 when set");
        }
        // SMPP 3.4 §5.2.5 / §5.2.6: TON 0..6, NPI 0..18 (the contract's bounds).
        for (field, value, max) in [
            ("sourceTon", self.source_ton, 6),
            ("sourceNpi", self.source_npi, 18),
            ("destTon", self.dest_ton, 6),
            ("destNpi", self.dest_npi, 18),
        ] {
            if value > max {
                return invalid(
                    field,
                    if max == 6 {
                        "must be 0..6 (SMPP TON)"
                    } else {
                        "must be 0..18 (SMPP NPI)"
                    },
                );
            }
        }
        if self.source_addr.as_ref().is_some_and(|s| s.len() > 20) {
            return invalid("sourceAddr", "must be at most 20 characters");
        }
        Ok(())
    }

    /// The sessions a bind of `direction` opens: one transceiver, or a transmitter and a
    /// receiver when the operator asks for them or refused bind_transceiver (`split`).
    pub fn bind_modes(&self, direction: Direction, split: bool) -> Vec<BindMode> {
        match direction {
            Direction::Tx => vec![BindMode::Transmitter],
            Direction::Rx => vec![BindMode::Receiver],
            Direction::Trx if split || self.bind_mode == BindModePreference::TxRx => {
                vec![BindMode::Transmitter, BindMode::Receiver]
            }
            Direction::Trx => vec![BindMode::Transceiver],
        }
    }

    /// The session of one bind `mode`: its bind request and timers (a configured
    /// enquire_link interval overrides the operator's `enquireLinkSeconds`).
    pub fn session_config(&self, mode: BindMode, timers: &Timers) -> SessionConfig {
        SessionConfig {
            mode,
            bind: BindRequest {
                system_id: self.system_id.clone(),
                password: self.password.expose().to_owned(),
                system_type: self.system_type.clone(),
                interface_version: INTERFACE_VERSION,
                addr_ton: 0,
                addr_npi: 0,
                address_range: String::new(),
            },
            bind_timeout: timers.bind_timeout,
            enquire_link_interval: timers
                .enquire_link_interval
                .unwrap_or(Duration::from_secs(self.enquire_link_seconds)),
            enquire_link_timeout: timers.enquire_link_timeout,
            submit_timeout: timers.submit_resp_timeout,
            unbind_timeout: timers.bind_timeout,
            window: self.window as usize,
            // The service's own limit (`INBOUND_WINDOW`), set by its caller.
            inbound_window: crate::protocol::session::DEFAULT_INBOUND_WINDOW,
        }
    }

    /// How this operator's submit_sm are built.
    pub fn submit_profile(&self) -> SubmitProfile {
        SubmitProfile {
            default_source_addr: self.source_addr.clone(),
            source_ton: self.source_ton,
            source_npi: self.source_npi,
            dest_ton: self.dest_ton,
            dest_npi: self.dest_npi,
            strategy: self.long_message_strategy,
            ref_bits: if self.concat_ref_bits == 16 {
                RefBits::Sixteen
            } else {
                RefBits::Eight
            },
        }
    }
}

/// Why a credentials document was refused. Names fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    #[error("not a credentials document ({category} error at line {line} column {column})")]
    Json {
        category: &'static str,
        line: usize,
        column: usize,
    },
    #[error("operatorId does not match the requested operator")]
    OperatorMismatch,
    #[error("{field} {problem}")]
    Invalid {
        field: &'static str,
        problem: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"operatorId": "roshan", "host": "127.0.0.1", "port": 2775,
        "systemId": "ghasi", "password": "s3cr3t!", "bindCount": 2, "window": 50,
        "concatRefBits": 16, "sourceAddr": "Ghasi", "enquireLinkSeconds": 20}"#;

    fn doc(patch: &str) -> Vec<u8> {
        let mut value: serde_json::Value = serde_json::from_str(DOC).unwrap();
        let patch: serde_json::Value = serde_json::from_str(patch).unwrap();
        for (k, v) in patch.as_object().unwrap() {
            value[k] = v.clone();
        }
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn a_document_parses_with_the_schema_defaults() {
        let c = Credentials::from_json(DOC.as_bytes(), "roshan").unwrap();
        assert_eq!(c.bind_mode, BindModePreference::Trx);
        assert_eq!(c.tps_limit, None);
        assert_eq!(c.long_message_strategy, Strategy::Csms);
        assert_eq!((c.source_ton, c.dest_ton, c.dest_npi), (5, 1, 1));
        assert!(!c.tls);
        assert!(
            !format!("{c:?}").contains("s3cr3t!"),
            "Debug redacts the password"
        );
    }

    #[test]
    fn refusals_name_the_field_never_the_value() {
        let cases = [
            (r#"{"password": "toolongpassword"}"#, "password"),
            (r#"{"systemId": ""}"#, "systemId"),
            (r#"{"bindCount": 65}"#, "bindCount"),
            (r#"{"window": 0}"#, "window"),
            (r#"{"concatRefBits": 12}"#, "concatRefBits"),
            (r#"{"enquireLinkSeconds": 1}"#, "enquireLinkSeconds"),
            (r#"{"sourceAddr": "123456789012345678901"}"#, "sourceAddr"),
            (r#"{"port": 0}"#, "host/port"),
            // Numbers from OMS are bounded (issue 21): a huge enquire_link interval
            // overflowed the session's deadline arithmetic.
            (
                r#"{"enquireLinkSeconds": 18446744073709551615}"#,
                "enquireLinkSeconds",
            ),
            (r#"{"enquireLinkSeconds": 86401}"#, "enquireLinkSeconds"),
            (r#"{"tpsLimit": 0}"#, "tpsLimit"),
            (r#"{"sourceTon": 7}"#, "sourceTon"),
            (r#"{"sourceNpi": 19}"#, "sourceNpi"),
            (r#"{"destTon": 200}"#, "destTon"),
            (r#"{"destNpi": 255}"#, "destNpi"),
        ];
        for (patch, field) in cases {
            match Credentials::from_json(&doc(patch), "roshan") {
                Err(CredentialsError::Invalid { field: f, .. }) => assert_eq!(f, field, "{patch}"),
                other => panic!("{patch}: {other:?}"),
            }
        }
        assert_eq!(
            Credentials::from_json(DOC.as_bytes(), "other").unwrap_err(),
            CredentialsError::OperatorMismatch
        );
        // A type error right at the password: the message gives its position only.
        let err = Credentials::from_json(&doc(r#"{"password": 12345678}"#), "roshan").unwrap_err();
        assert!(
            matches!(
                err,
                CredentialsError::Json {
                    category: "data",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(!err.to_string().contains("12345678"), "{err}");
        let err = Credentials::from_json(b"{\"password\": \"s3cr3t!\"", "roshan").unwrap_err();
        assert!(!err.to_string().contains("s3cr3t!"), "{err}");
    }

    #[test]
    fn sessions_follow_the_direction_and_the_bind_mode() {
        let trx = Credentials::from_json(DOC.as_bytes(), "roshan").unwrap();
        let split = Credentials::from_json(&doc(r#"{"bindMode": "TX_RX"}"#), "roshan").unwrap();
        assert_eq!(
            trx.bind_modes(Direction::Trx, false),
            [BindMode::Transceiver]
        );
        assert_eq!(
            trx.bind_modes(Direction::Trx, true),
            [BindMode::Transmitter, BindMode::Receiver]
        );
        assert_eq!(
            split.bind_modes(Direction::Trx, false),
            [BindMode::Transmitter, BindMode::Receiver]
        );
        assert_eq!(
            split.bind_modes(Direction::Tx, false),
            [BindMode::Transmitter]
        );
        assert_eq!(split.bind_modes(Direction::Rx, false), [BindMode::Receiver]);
    }

    #[test]
    fn session_config_and_profile_come_from_the_document() {
        let c = Credentials::from_json(DOC.as_bytes(), "roshan").unwrap();
        let timers = Timers::default();
        let session = c.session_config(BindMode::Transceiver, &timers);
        assert_eq!(session.bind.system_id, "ghasi");
        assert_eq!(session.bind.password, "s3cr3t!");
        assert_eq!(session.window, 50);
        assert_eq!(session.enquire_link_interval, Duration::from_secs(20));
        let scaled = Timers {
            enquire_link_interval: Some(Duration::from_millis(300)),
            ..Timers::default()
        };
        assert_eq!(
            c.session_config(BindMode::Transceiver, &scaled)
                .enquire_link_interval,
            Duration::from_millis(300)
        );
        let profile = c.submit_profile();
        assert_eq!(profile.ref_bits, RefBits::Sixteen);
        assert_eq!(profile.default_source_addr.as_deref(), Some("Ghasi"));
        assert_eq!((profile.source_ton, profile.dest_npi), (5, 1));
    }
}
