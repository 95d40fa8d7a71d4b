//! Why a bind attempt failed or a bound bind went down: one value per cause, carrying
//! what the on-call engineer needs (the SMSC's status, the socket error) and a short,
//! bounded `reason()` code for `operator.health` and metric-friendly fields.

use smpp_connector::protocol::pdu::{CommandId, CommandStatus, EncodeError, FrameError};
use smpp_connector::protocol::session::CloseReason;

use super::io::ConnectError;
use crate::oms::OmsError;

/// A counted failure: it advances the reconnect backoff.
#[derive(Debug, thiserror::Error)]
pub enum BindFailure {
    #[error("credentials unavailable: {0}")]
    Credentials(#[from] OmsError),
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("bind request does not encode: {0}")]
    BindRequest(#[from] EncodeError),
    #[error("{} answered {status}", request.name())]
    BindRejected {
        request: CommandId,
        status: CommandStatus,
    },
    #[error("no enquire_link_resp in time")]
    EnquireLinkTimedOut,
    /// The session ended for another reason (bind timeout, peer unbind, generic_nack…).
    #[error("session closed: {}", .0.as_str())]
    Session(CloseReason),
    #[error("unrecoverable framing error: {0}")]
    Framing(#[from] FrameError),
    #[error("connection closed by SMSC")]
    PeerClosed,
    #[error("write to SMSC failed: {0}")]
    Write(std::io::Error),
    #[error("read from SMSC failed: {0}")]
    Read(std::io::Error),
    /// The flow controller gave up on the session (taxonomy: reconnect).
    #[error("session fault{}", .status.map(|s| format!(" {s}")).unwrap_or_default())]
    SessionFault { status: Option<CommandStatus> },
}

impl BindFailure {
    /// The short reason published in `operator.health` (`reason`) and kept as the
    /// prefix of admin `lastError`.
    pub fn reason(&self) -> String {
        match self {
            BindFailure::Credentials(_) => "credentials_unavailable".into(),
            BindFailure::Connect(ConnectError::Tls { .. } | ConnectError::TlsName { .. }) => {
                "tls_failed".into()
            }
            BindFailure::Connect(_) => "connect_failed".into(),
            BindFailure::BindRequest(_) => "bind_failed".into(),
            BindFailure::BindRejected { status, .. } => CloseReason::BindRejected(*status).as_str(),
            BindFailure::EnquireLinkTimedOut => CloseReason::EnquireLinkTimedOut.as_str(),
            BindFailure::Session(reason) => reason.as_str(),
            BindFailure::Framing(_) => "framing_error".into(),
            BindFailure::PeerClosed | BindFailure::Write(_) | BindFailure::Read(_) => {
                "connection_reset".into()
            }
            BindFailure::SessionFault { .. } => "session_fault".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_short_codes_and_details_say_more() {
        let rejected = BindFailure::BindRejected {
            request: CommandId::BindTransceiver,
            status: CommandStatus(0x0E),
        };
        assert!(
            rejected.reason().starts_with("bind_failed:"),
            "{}",
            rejected.reason()
        );
        assert!(
            rejected.to_string().contains("bind_transceiver"),
            "{rejected}"
        );
        assert_eq!(BindFailure::PeerClosed.reason(), "connection_reset");
        assert_eq!(
            BindFailure::EnquireLinkTimedOut.reason(),
            "enquire_link_timeout"
        );
        let fault = BindFailure::SessionFault {
            status: Some(CommandStatus(0x08)),
        };
        assert_eq!(fault.reason(), "session_fault");
        assert!(fault.to_string().starts_with("session fault "), "{fault}");
        assert_eq!(
            BindFailure::SessionFault { status: None }.to_string(),
            "session fault"
        );
    }
}
