//! SMPP 3.4 PDUs: framing, our types, and their conversion to and from `smpp34`.
//!
//! This module owns every byte that crosses the wire. It frames the TCP stream with
//! tokio-util's [`LengthDelimitedCodec`] (4-byte `command_length` that includes the
//! header, capped by a configured maximum: a peer's claimed length is never allocated
//! before it is checked), dispatches on the raw command id, and turns a body that does
//! not decode into [`Inbound::Malformed`] so the session can answer `generic_nack` and
//! stay bound. smpp34 decodes the bodies of `submit_sm`, `deliver_sm`, `submit_sm_resp`
//! and the bind PDUs (it is lenient with the sloppy PDUs operators send) and encodes
//! `submit_sm` / `deliver_sm`; the PDUs whose constructors smpp34 keeps private (bind
//! requests with interface_version 0x34, `unbind`, `generic_nack`, empty responses) are
//! encoded here by hand. Field lengths are checked before any smpp34 constructor that
//! would assert.
//!
//! It must not: do I/O, read clocks, or log message content (the `Debug` of
//! [`SmBody`] and [`BindRequest`] redacts addresses, text and the password).

use std::fmt;
use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

/// Length of the PDU header: command_length, command_id, command_status, sequence_number.
pub const HEADER_LEN: usize = 16;
/// Default cap on `command_length`: room for a 64 KiB `message_payload` plus the body.
pub const DEFAULT_MAX_PDU_LEN: usize = 72 * 1024;
/// SMPP interface version we announce in every bind request.
pub const INTERFACE_VERSION: u8 = 0x34;
/// Largest `short_message` (its length field is one octet; 255 is reserved).
pub const MAX_SHORT_MESSAGE_LEN: usize = 254;
/// Largest sequence number (SMPP 3.4 §2.2.1 / §3.2).
pub const MAX_SEQUENCE_NUMBER: u32 = 0x7FFF_FFFF;

/// Optional parameter tags we read or write (SMPP 3.4 §5.3.2).
pub mod tlv_tag {
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const MESSAGE_STATE: u16 = 0x0427;
    pub const NETWORK_ERROR_CODE: u16 = 0x0423;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const SAR_MSG_REF_NUM: u16 = 0x020C;
    pub const SAR_TOTAL_SEGMENTS: u16 = 0x020E;
    pub const SAR_SEGMENT_SEQNUM: u16 = 0x020F;
    pub const SC_INTERFACE_VERSION: u16 = 0x0210;
}

/// SMPP command ids we know (SMPP 3.4 §5.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CommandId {
    GenericNack = 0x8000_0000,
    BindReceiver = 0x0000_0001,
    BindReceiverResp = 0x8000_0001,
    BindTransmitter = 0x0000_0002,
    BindTransmitterResp = 0x8000_0002,
    QuerySm = 0x0000_0003,
    QuerySmResp = 0x8000_0003,
    SubmitSm = 0x0000_0004,
    SubmitSmResp = 0x8000_0004,
    DeliverSm = 0x0000_0005,
    DeliverSmResp = 0x8000_0005,
    Unbind = 0x0000_0006,
    UnbindResp = 0x8000_0006,
    ReplaceSm = 0x0000_0007,
    ReplaceSmResp = 0x8000_0007,
    CancelSm = 0x0000_0008,
    CancelSmResp = 0x8000_0008,
    BindTransceiver = 0x0000_0009,
    BindTransceiverResp = 0x8000_0009,
    Outbind = 0x0000_000B,
    EnquireLink = 0x0000_0015,
    EnquireLinkResp = 0x8000_0015,
    SubmitMulti = 0x0000_0021,
    SubmitMultiResp = 0x8000_0021,
    AlertNotification = 0x0000_0102,
    DataSm = 0x0000_0103,
    DataSmResp = 0x8000_0103,
}

impl CommandId {
    /// The command id for a raw value, `None` for ids SMPP 3.4 does not define.
    pub fn from_u32(raw: u32) -> Option<Self> {
        use CommandId::*;
        Some(match raw {
            0x8000_0000 => GenericNack,
            0x0000_0001 => BindReceiver,
            0x8000_0001 => BindReceiverResp,
            0x0000_0002 => BindTransmitter,
            0x8000_0002 => BindTransmitterResp,
            0x0000_0003 => QuerySm,
            0x8000_0003 => QuerySmResp,
            0x0000_0004 => SubmitSm,
            0x8000_0004 => SubmitSmResp,
            0x0000_0005 => DeliverSm,
            0x8000_0005 => DeliverSmResp,
            0x0000_0006 => Unbind,
            0x8000_0006 => UnbindResp,
            0x0000_0007 => ReplaceSm,
            0x8000_0007 => ReplaceSmResp,
            0x0000_0008 => CancelSm,
            0x8000_0008 => CancelSmResp,
            0x0000_0009 => BindTransceiver,
            0x8000_0009 => BindTransceiverResp,
            0x0000_000B => Outbind,
            0x0000_0015 => EnquireLink,
            0x8000_0015 => EnquireLinkResp,
            0x0000_0021 => SubmitMulti,
            0x8000_0021 => SubmitMultiResp,
            0x0000_0102 => AlertNotification,
            0x0000_0103 => DataSm,
            0x8000_0103 => DataSmResp,
            _ => return None,
        })
    }

    /// True for response ids (bit 31 set).
    pub fn is_response(self) -> bool {
        (self as u32) & 0x8000_0000 != 0
    }

    /// The snake_case SMPP name, for logs and metric labels.
    pub fn name(self) -> &'static str {
        use CommandId::*;
        match self {
            GenericNack => "generic_nack",
            BindReceiver => "bind_receiver",
            BindReceiverResp => "bind_receiver_resp",
            BindTransmitter => "bind_transmitter",
            BindTransmitterResp => "bind_transmitter_resp",
            QuerySm => "query_sm",
            QuerySmResp => "query_sm_resp",
            SubmitSm => "submit_sm",
            SubmitSmResp => "submit_sm_resp",
            DeliverSm => "deliver_sm",
            DeliverSmResp => "deliver_sm_resp",
            Unbind => "unbind",
            UnbindResp => "unbind_resp",
            ReplaceSm => "replace_sm",
            ReplaceSmResp => "replace_sm_resp",
            CancelSm => "cancel_sm",
            CancelSmResp => "cancel_sm_resp",
            BindTransceiver => "bind_transceiver",
            BindTransceiverResp => "bind_transceiver_resp",
            Outbind => "outbind",
            EnquireLink => "enquire_link",
            EnquireLinkResp => "enquire_link_resp",
            SubmitMulti => "submit_multi",
            SubmitMultiResp => "submit_multi_resp",
            AlertNotification => "alert_notification",
            DataSm => "data_sm",
            DataSmResp => "data_sm_resp",
        }
    }
}

/// A `command_status` value. Unknown (reserved or vendor-specific) values are kept as
/// they are; [`CommandStatus::name`] renders them as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandStatus(pub u32);

macro_rules! statuses {
    ($($name:ident = $value:expr),* $(,)?) => {
        impl CommandStatus {
            $(pub const $name: CommandStatus = CommandStatus($value);)*

            /// The SMPP name (`ESME_RTHROTTLED`), or `None` for a value SMPP 3.4 does not name.
            pub fn known_name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    ESME_ROK = 0x0000_0000,
    ESME_RINVMSGLEN = 0x0000_0001,
    ESME_RINVCMDLEN = 0x0000_0002,
    ESME_RINVCMDID = 0x0000_0003,
    ESME_RINVBNDSTS = 0x0000_0004,
    ESME_RALYBND = 0x0000_0005,
    ESME_RINVPRTFLG = 0x0000_0006,
    ESME_RINVREGDLVFLG = 0x0000_0007,
    ESME_RSYSERR = 0x0000_0008,
    ESME_RINVSRCADR = 0x0000_000A,
    ESME_RINVDSTADR = 0x0000_000B,
    ESME_RINVMSGID = 0x0000_000C,
    ESME_RBINDFAIL = 0x0000_000D,
    ESME_RINVPASWD = 0x0000_000E,
    ESME_RINVSYSID = 0x0000_000F,
    ESME_RCANCELFAIL = 0x0000_0011,
    ESME_RREPLACEFAIL = 0x0000_0013,
    ESME_RMSGQFUL = 0x0000_0014,
    ESME_RINVSERTYP = 0x0000_0015,
    ESME_RINVNUMDESTS = 0x0000_0033,
    ESME_RINVDLNAME = 0x0000_0034,
    ESME_RINVDESTFLAG = 0x0000_0040,
    ESME_RINVSUBREP = 0x0000_0042,
    ESME_RINVESMCLASS = 0x0000_0043,
    ESME_RCNTSUBDL = 0x0000_0044,
    ESME_RSUBMITFAIL = 0x0000_0045,
    ESME_RINVSRCTON = 0x0000_0048,
    ESME_RINVSRCNPI = 0x0000_0049,
    ESME_RINVDSTTON = 0x0000_0050,
    ESME_RINVDSTNPI = 0x0000_0051,
    ESME_RINVSYSTYP = 0x0000_0053,
    ESME_RINVREPFLAG = 0x0000_0054,
    ESME_RINVNUMMSGS = 0x0000_0055,
    ESME_RTHROTTLED = 0x0000_0058,
    ESME_RINVSCHED = 0x0000_0061,
    ESME_RINVEXPIRY = 0x0000_0062,
    ESME_RINVDFTMSGID = 0x0000_0063,
    ESME_RX_T_APPN = 0x0000_0064,
    ESME_RX_P_APPN = 0x0000_0065,
    ESME_RX_R_APPN = 0x0000_0066,
    ESME_RQUERYFAIL = 0x0000_0067,
    ESME_RINVOPTPARSTREAM = 0x0000_00C0,
    ESME_ROPTPARNOTALLWD = 0x0000_00C1,
    ESME_RINVPARLEN = 0x0000_00C2,
    ESME_RMISSINGOPTPARAM = 0x0000_00C3,
    ESME_RINVOPTPARAMVAL = 0x0000_00C4,
    ESME_RDELIVERYFAILURE = 0x0000_00FE,
    ESME_RUNKNOWNERR = 0x0000_00FF,
}

impl CommandStatus {
    /// True for ESME_ROK.
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// The SMPP name, or `other` for a value SMPP 3.4 does not name: a metric label, whose
    /// values must form a bounded set whatever an SMSC sends (issue 21).
    pub fn label(self) -> &'static str {
        self.known_name().unwrap_or("other")
    }

    /// The SMPP name, or `0x%08X` for an unnamed value (for logs and events, not labels:
    /// an SMSC can send any of 2³² values).
    pub fn name(self) -> String {
        match self.known_name() {
            Some(name) => name.to_owned(),
            None => format!("0x{:08X}", self.0),
        }
    }

    /// `0x0000000B` form, as the DLR contract's `errorCode` wants it.
    pub fn hex(self) -> String {
        format!("0x{:08X}", self.0)
    }
}

impl fmt::Debug for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One optional parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

impl Tlv {
    pub fn new(tag: u16, value: impl Into<Vec<u8>>) -> Self {
        Tlv {
            tag,
            value: value.into(),
        }
    }

    pub fn from_u8(tag: u16, value: u8) -> Self {
        Tlv::new(tag, vec![value])
    }

    pub fn from_u16(tag: u16, value: u16) -> Self {
        Tlv::new(tag, value.to_be_bytes().to_vec())
    }

    /// A C-Octet-String TLV, NUL-terminated on the wire.
    pub fn from_c_string(tag: u16, value: &str) -> Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        Tlv::new(tag, bytes)
    }

    /// The value as one octet, if it is exactly one octet long.
    pub fn as_u8(&self) -> Option<u8> {
        match self.value.as_slice() {
            [b] => Some(*b),
            _ => None,
        }
    }

    /// The value as a big-endian u16, if it is exactly two octets long.
    pub fn as_u16(&self) -> Option<u16> {
        match self.value.as_slice() {
            [hi, lo] => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        }
    }

    /// The value as text: a trailing NUL (if any) is dropped, anything after an inner NUL
    /// is ignored, and bytes that are not UTF-8 are replaced (operators send Latin-1).
    pub fn as_text(&self) -> String {
        let end = self
            .value
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(self.value.len());
        String::from_utf8_lossy(&self.value[..end]).into_owned()
    }
}

/// Find a TLV by tag.
pub fn find_tlv(tlvs: &[Tlv], tag: u16) -> Option<&Tlv> {
    tlvs.iter().find(|t| t.tag == tag)
}

/// The role a bind takes (SMPP 3.4 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BindMode {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindMode {
    pub fn request_id(self) -> CommandId {
        match self {
            BindMode::Transmitter => CommandId::BindTransmitter,
            BindMode::Receiver => CommandId::BindReceiver,
            BindMode::Transceiver => CommandId::BindTransceiver,
        }
    }

    pub fn can_submit(self) -> bool {
        matches!(self, BindMode::Transmitter | BindMode::Transceiver)
    }

    pub fn can_receive(self) -> bool {
        matches!(self, BindMode::Receiver | BindMode::Transceiver)
    }

    pub fn name(self) -> &'static str {
        match self {
            BindMode::Transmitter => "tx",
            BindMode::Receiver => "rx",
            BindMode::Transceiver => "trx",
        }
    }
}

/// The body of bind_transmitter / bind_receiver / bind_transceiver.
#[derive(Clone, PartialEq, Eq)]
pub struct BindRequest {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

impl fmt::Debug for BindRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BindRequest")
            .field("system_id", &self.system_id)
            .field("password", &"<redacted>")
            .field("system_type", &self.system_type)
            .field("interface_version", &self.interface_version)
            .finish_non_exhaustive()
    }
}

/// The body of a bind response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindResponse {
    pub system_id: Option<String>,
    pub sc_interface_version: Option<u8>,
}

/// The common body of `submit_sm` (§4.4.1) and `deliver_sm` (§4.6.1): same layout.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SmBody {
    pub service_type: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub source_addr: String,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

impl fmt::Debug for SmBody {
    // Addresses and content are personal data: never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmBody")
            .field("esm_class", &self.esm_class)
            .field("data_coding", &self.data_coding)
            .field("registered_delivery", &self.registered_delivery)
            .field("short_message_len", &self.short_message.len())
            .field(
                "tlv_tags",
                &self.tlvs.iter().map(|t| t.tag).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The body of `submit_sm_resp`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubmitSmResp {
    pub message_id: Option<String>,
}

/// A PDU we send or receive. Requests we never send and never accept (query_sm,
/// data_sm, …) arrive as [`Inbound::Malformed`] with ESME_RINVCMDID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pdu {
    BindTransmitter(BindRequest),
    BindTransmitterResp(BindResponse),
    BindReceiver(BindRequest),
    BindReceiverResp(BindResponse),
    BindTransceiver(BindRequest),
    BindTransceiverResp(BindResponse),
    SubmitSm(Box<SmBody>),
    SubmitSmResp(SubmitSmResp),
    DeliverSm(Box<SmBody>),
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack,
}

impl Pdu {
    pub fn command_id(&self) -> CommandId {
        match self {
            Pdu::BindTransmitter(_) => CommandId::BindTransmitter,
            Pdu::BindTransmitterResp(_) => CommandId::BindTransmitterResp,
            Pdu::BindReceiver(_) => CommandId::BindReceiver,
            Pdu::BindReceiverResp(_) => CommandId::BindReceiverResp,
            Pdu::BindTransceiver(_) => CommandId::BindTransceiver,
            Pdu::BindTransceiverResp(_) => CommandId::BindTransceiverResp,
            Pdu::SubmitSm(_) => CommandId::SubmitSm,
            Pdu::SubmitSmResp(_) => CommandId::SubmitSmResp,
            Pdu::DeliverSm(_) => CommandId::DeliverSm,
            Pdu::DeliverSmResp => CommandId::DeliverSmResp,
            Pdu::EnquireLink => CommandId::EnquireLink,
            Pdu::EnquireLinkResp => CommandId::EnquireLinkResp,
            Pdu::Unbind => CommandId::Unbind,
            Pdu::UnbindResp => CommandId::UnbindResp,
            Pdu::GenericNack => CommandId::GenericNack,
        }
    }

    /// The bind request PDU for a mode.
    pub fn bind(mode: BindMode, request: BindRequest) -> Pdu {
        match mode {
            BindMode::Transmitter => Pdu::BindTransmitter(request),
            BindMode::Receiver => Pdu::BindReceiver(request),
            BindMode::Transceiver => Pdu::BindTransceiver(request),
        }
    }

    /// The bind response PDU for a mode.
    pub fn bind_resp(mode: BindMode, response: BindResponse) -> Pdu {
        match mode {
            BindMode::Transmitter => Pdu::BindTransmitterResp(response),
            BindMode::Receiver => Pdu::BindReceiverResp(response),
            BindMode::Transceiver => Pdu::BindTransceiverResp(response),
        }
    }
}

/// Our [`BindRequest`] from any of smpp34's three bind request types (same fields).
macro_rules! bind_request {
    ($decoded:expr) => {{
        let b = $decoded;
        BindRequest {
            system_id: b.system_id,
            password: b.password,
            system_type: b.system_type,
            interface_version: b.interface_version,
            addr_ton: b.addr_ton,
            addr_npi: b.addr_npi,
            address_range: b.address_range,
        }
    }};
}

/// Our [`SmBody`] from smpp34's `submit_sm` or `deliver_sm` (same fields).
macro_rules! sm_body {
    ($decoded:expr) => {{
        let m = $decoded;
        SmBody {
            service_type: m.service_type,
            source_addr_ton: m.source_addr_ton,
            source_addr_npi: m.source_addr_npi,
            source_addr: m.source_addr,
            dest_addr_ton: m.dest_addr_ton,
            dest_addr_npi: m.dest_addr_npi,
            destination_addr: m.destination_addr,
            esm_class: m.esm_class,
            protocol_id: m.protocol_id,
            priority_flag: m.priority_flag,
            schedule_delivery_time: m.schedule_delivery_time,
            validity_period: m.validity_period,
            registered_delivery: m.registered_delivery,
            replace_if_present_flag: m.replace_if_present_flag,
            data_coding: m.data_coding,
            sm_default_msg_id: m.sm_default_msg_id,
            short_message: m.short_message,
            tlvs: from_smpp34_tlvs(m.tlvs),
        }
    }};
}

/// A whole PDU: header fields plus the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command_status: CommandStatus,
    pub sequence_number: u32,
    pub pdu: Pdu,
}

impl Frame {
    /// A request or an OK response.
    pub fn new(sequence_number: u32, pdu: Pdu) -> Self {
        Frame {
            command_status: CommandStatus::ESME_ROK,
            sequence_number,
            pdu,
        }
    }

    /// A response carrying `status`.
    pub fn with_status(sequence_number: u32, command_status: CommandStatus, pdu: Pdu) -> Self {
        Frame {
            command_status,
            sequence_number,
            pdu,
        }
    }

    pub fn command_id(&self) -> CommandId {
        self.pdu.command_id()
    }

    /// Encode to wire bytes. Field lengths are checked first; nothing here panics.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(64);
        self.encode_into(&mut out)?;
        Ok(out.freeze())
    }

    /// Encode, appending to `dst`. On error `dst` is left as it was.
    pub fn encode_into(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        let start = dst.len();
        let result = self.encode_unchecked(dst, start);
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    fn encode_unchecked(&self, dst: &mut BytesMut, start: usize) -> Result<(), EncodeError> {
        let id = self.command_id() as u32;
        match &self.pdu {
            Pdu::SubmitSm(body) | Pdu::DeliverSm(body) => {
                let mut bytes = encode_sm_body(self.command_id(), self.sequence_number, body)?;
                // smpp34 always writes status 0; keep ours like every other PDU.
                bytes[8..12].copy_from_slice(&self.command_status.0.to_be_bytes());
                dst.extend_from_slice(&bytes);
                return Ok(());
            }
            _ => {}
        }
        put_header(dst, 0, id, self.command_status.0, self.sequence_number);
        match &self.pdu {
            Pdu::BindTransmitter(req) | Pdu::BindReceiver(req) | Pdu::BindTransceiver(req) => {
                put_c_string(dst, "system_id", &req.system_id, 16)?;
                put_c_string(dst, "password", &req.password, 9)?;
                put_c_string(dst, "system_type", &req.system_type, 13)?;
                dst.put_u8(req.interface_version);
                dst.put_u8(req.addr_ton);
                dst.put_u8(req.addr_npi);
                put_c_string(dst, "address_range", &req.address_range, 41)?;
            }
            Pdu::BindTransmitterResp(resp)
            | Pdu::BindReceiverResp(resp)
            | Pdu::BindTransceiverResp(resp) => {
                // SMPP 3.4 §4.1.2: the body is omitted on a non-zero status. An OK
                // response without a system_id has no body (decoded back as None).
                if let (true, Some(system_id)) =
                    (self.command_status.is_ok(), resp.system_id.as_deref())
                {
                    put_c_string(dst, "system_id", system_id, 16)?;
                    if let Some(version) = resp.sc_interface_version {
                        put_tlv(dst, &Tlv::from_u8(tlv_tag::SC_INTERFACE_VERSION, version))?;
                    }
                }
            }
            Pdu::SubmitSmResp(resp) => {
                if self.command_status.is_ok() {
                    put_c_string(
                        dst,
                        "message_id",
                        resp.message_id.as_deref().unwrap_or(""),
                        65,
                    )?;
                }
            }
            // deliver_sm_resp carries an unused, empty message_id (§4.6.2).
            Pdu::DeliverSmResp => dst.put_u8(0),
            Pdu::EnquireLink
            | Pdu::EnquireLinkResp
            | Pdu::Unbind
            | Pdu::UnbindResp
            | Pdu::GenericNack => {}
            Pdu::SubmitSm(_) | Pdu::DeliverSm(_) => unreachable!("encoded above"),
        }
        let length = (dst.len() - start) as u32;
        dst[start..start + 4].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }

    /// Decode one whole PDU (`bytes` is exactly one frame, header included).
    pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
        if bytes.len() < HEADER_LEN {
            return Err(DecodeError::TooShort {
                actual: bytes.len(),
            });
        }
        let header = RawHeader::parse(bytes);
        if header.command_length as usize != bytes.len() {
            return Err(DecodeError::LengthMismatch {
                declared: header.command_length,
                actual: bytes.len(),
            });
        }
        let command_id =
            CommandId::from_u32(header.command_id).ok_or(DecodeError::UnknownCommand {
                command_id: header.command_id,
            })?;
        let smpp_header = || smpp34::CommandHeader {
            command_length: header.command_length,
            command_id: header.command_id,
            command_status: header.command_status,
            sequence_number: header.sequence_number,
        };
        let body = &bytes[HEADER_LEN..];
        let status = CommandStatus(header.command_status);
        let invalid = |_| DecodeError::InvalidBody { command_id };
        let pdu = match command_id {
            CommandId::BindTransmitter => Pdu::BindTransmitter(bind_request!(
                smpp34::bind_transmitter::decode(smpp_header(), bytes).map_err(invalid)?
            )),
            CommandId::BindReceiver => Pdu::BindReceiver(bind_request!(
                smpp34::bind_receiver::decode(smpp_header(), bytes).map_err(invalid)?
            )),
            CommandId::BindTransceiver => Pdu::BindTransceiver(bind_request!(
                smpp34::bind_transceiver::decode(smpp_header(), bytes).map_err(invalid)?
            )),
            CommandId::BindTransmitterResp => {
                Pdu::BindTransmitterResp(decode_bind_resp(status, body))
            }
            CommandId::BindReceiverResp => Pdu::BindReceiverResp(decode_bind_resp(status, body)),
            CommandId::BindTransceiverResp => {
                Pdu::BindTransceiverResp(decode_bind_resp(status, body))
            }
            CommandId::SubmitSm => Pdu::SubmitSm(Box::new(sm_body!(
                smpp34::submit_sm::decode(smpp_header(), bytes).map_err(invalid)?
            ))),
            CommandId::DeliverSm => {
                let body: SmBody =
                    sm_body!(smpp34::deliver_sm::decode(smpp_header(), bytes).map_err(invalid)?);
                inbound_lengths(CommandId::DeliverSm, &body)?;
                Pdu::DeliverSm(Box::new(body))
            }
            CommandId::SubmitSmResp => {
                // smpp34 requires the NUL; operators sometimes omit it (or send nothing).
                let message_id = if status.is_ok() && !body.is_empty() {
                    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
                    Some(String::from_utf8_lossy(&body[..end]).into_owned())
                } else if status.is_ok() {
                    Some(String::new())
                } else {
                    None
                };
                Pdu::SubmitSmResp(SubmitSmResp { message_id })
            }
            CommandId::DeliverSmResp => Pdu::DeliverSmResp,
            CommandId::EnquireLink => Pdu::EnquireLink,
            CommandId::EnquireLinkResp => Pdu::EnquireLinkResp,
            CommandId::Unbind => Pdu::Unbind,
            CommandId::UnbindResp => Pdu::UnbindResp,
            CommandId::GenericNack => Pdu::GenericNack,
            CommandId::QuerySm
            | CommandId::QuerySmResp
            | CommandId::ReplaceSm
            | CommandId::ReplaceSmResp
            | CommandId::CancelSm
            | CommandId::CancelSmResp
            | CommandId::Outbind
            | CommandId::SubmitMulti
            | CommandId::SubmitMultiResp
            | CommandId::AlertNotification
            | CommandId::DataSm
            | CommandId::DataSmResp => return Err(DecodeError::Unsupported { command_id }),
        };
        Ok(Frame {
            command_status: status,
            sequence_number: header.sequence_number,
            pdu,
        })
    }
}

/// The field lengths of SMPP 3.4 §4.6.1 a body from the SMSC must keep (the NUL
/// included): nothing longer reaches the service.
fn inbound_lengths(command_id: CommandId, body: &SmBody) -> Result<(), DecodeError> {
    for (field, value, max) in [
        ("service_type", &body.service_type, 6),
        ("source_addr", &body.source_addr, 21),
        ("destination_addr", &body.destination_addr, 21),
    ] {
        let actual = value.len() + 1;
        if actual > max {
            return Err(DecodeError::FieldTooLong {
                command_id,
                field,
                actual,
                max,
            });
        }
    }
    Ok(())
}

fn decode_bind_resp(status: CommandStatus, body: &[u8]) -> BindResponse {
    // Lenient on purpose: a missing NUL, an over-long system_id or a broken TLV must not
    // fail a bind that the SMSC accepted.
    if !status.is_ok() || body.is_empty() {
        return BindResponse::default();
    }
    let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
    let system_id = String::from_utf8_lossy(&body[..end]).into_owned();
    let rest = body.get(end + 1..).unwrap_or(&[]);
    let tlvs = from_smpp34_tlvs(smpp34::decode_tlvs(rest));
    BindResponse {
        system_id: Some(system_id),
        sc_interface_version: find_tlv(&tlvs, tlv_tag::SC_INTERFACE_VERSION).and_then(Tlv::as_u8),
    }
}

fn from_smpp34_tlvs(tlvs: Vec<smpp34::Tlv>) -> Vec<Tlv> {
    tlvs.into_iter()
        .map(|t| Tlv {
            tag: t.tag,
            value: t.value,
        })
        .collect()
}

fn put_header(dst: &mut BytesMut, length: u32, id: u32, status: u32, sequence_number: u32) {
    dst.put_u32(length);
    dst.put_u32(id);
    dst.put_u32(status);
    dst.put_u32(sequence_number);
}

/// `max` counts the terminating NUL, as the SMPP tables do.
fn check_c_string(field: &'static str, value: &str, max: usize) -> Result<(), EncodeError> {
    if value.len() + 1 > max {
        return Err(EncodeError::FieldTooLong {
            field,
            actual: value.len(),
            max: max - 1,
        });
    }
    if value.as_bytes().contains(&0) {
        return Err(EncodeError::InteriorNul { field });
    }
    Ok(())
}

fn put_c_string(
    dst: &mut BytesMut,
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), EncodeError> {
    check_c_string(field, value, max)?;
    dst.extend_from_slice(value.as_bytes());
    dst.put_u8(0);
    Ok(())
}

fn put_tlv(dst: &mut BytesMut, tlv: &Tlv) -> Result<(), EncodeError> {
    let len = u16::try_from(tlv.value.len()).map_err(|_| EncodeError::TlvTooLong {
        tag: tlv.tag,
        actual: tlv.value.len(),
    })?;
    dst.put_u16(tlv.tag);
    dst.put_u16(len);
    dst.extend_from_slice(&tlv.value);
    Ok(())
}

/// Check every length smpp34's constructors and the SMPP tables impose on a
/// submit_sm / deliver_sm body.
pub fn validate_sm_body(body: &SmBody) -> Result<(), EncodeError> {
    check_c_string("service_type", &body.service_type, 6)?;
    check_c_string("source_addr", &body.source_addr, 21)?;
    check_c_string("destination_addr", &body.destination_addr, 21)?;
    check_c_string("schedule_delivery_time", &body.schedule_delivery_time, 17)?;
    check_c_string("validity_period", &body.validity_period, 17)?;
    if body.short_message.len() > MAX_SHORT_MESSAGE_LEN {
        return Err(EncodeError::ShortMessageTooLong {
            actual: body.short_message.len(),
            max: MAX_SHORT_MESSAGE_LEN,
        });
    }
    for tlv in &body.tlvs {
        if tlv.value.len() > u16::MAX as usize {
            return Err(EncodeError::TlvTooLong {
                tag: tlv.tag,
                actual: tlv.value.len(),
            });
        }
    }
    Ok(())
}

fn encode_sm_body(
    id: CommandId,
    sequence_number: u32,
    body: &SmBody,
) -> Result<Vec<u8>, EncodeError> {
    validate_sm_body(body)?;
    let tlvs = body
        .tlvs
        .iter()
        .map(|t| smpp34::Tlv::new(t.tag, t.value.clone()));
    // smpp34's submit_sm and deliver_sm constructors take the same arguments.
    macro_rules! encode_with {
        ($pdu:path) => {
            <$pdu>::new(
                sequence_number,
                body.service_type.clone(),
                body.source_addr_ton,
                body.source_addr_npi,
                body.source_addr.clone(),
                body.dest_addr_ton,
                body.dest_addr_npi,
                body.destination_addr.clone(),
                body.esm_class,
                body.protocol_id,
                body.priority_flag,
                body.schedule_delivery_time.clone(),
                body.validity_period.clone(),
                body.registered_delivery,
                body.replace_if_present_flag,
                body.data_coding,
                body.sm_default_msg_id,
                body.short_message.clone(),
            )
            .with_tlvs(tlvs)
            .encode()
        };
    }
    let bytes = match id {
        CommandId::SubmitSm => encode_with!(smpp34::submit_sm),
        _ => encode_with!(smpp34::deliver_sm),
    };
    Ok(bytes)
}

/// The four header fields as read off the wire, before anything is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    pub command_length: u32,
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
}

impl RawHeader {
    /// Read the header from the first 16 bytes. Panics only if `bytes` is shorter
    /// than [`HEADER_LEN`]; every caller checks that first.
    pub fn parse(bytes: &[u8]) -> RawHeader {
        let mut b = &bytes[..HEADER_LEN];
        RawHeader {
            command_length: b.get_u32(),
            command_id: b.get_u32(),
            command_status: b.get_u32(),
            sequence_number: b.get_u32(),
        }
    }
}

/// Why a frame's body could not be decoded. The stream itself is still in step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("PDU shorter than its header ({actual} octets)")]
    TooShort { actual: usize },
    #[error("command_length {declared} does not match the frame ({actual} octets)")]
    LengthMismatch { declared: u32, actual: usize },
    #[error("unknown command_id 0x{command_id:08X}")]
    UnknownCommand { command_id: u32 },
    #[error("unsupported command {}", command_id.name())]
    Unsupported { command_id: CommandId },
    #[error("invalid {} body", command_id.name())]
    InvalidBody { command_id: CommandId },
    /// A field longer than SMPP 3.4 allows (its NUL included): refused with the status
    /// SMPP names for that field.
    #[error("{} {field} is {actual} octets, at most {max} allowed", command_id.name())]
    FieldTooLong {
        command_id: CommandId,
        field: &'static str,
        actual: usize,
        max: usize,
    },
}

impl DecodeError {
    /// The status a `generic_nack` for this error carries (SMPP 3.4 §5.1.3).
    pub fn nack_status(&self) -> CommandStatus {
        match self {
            DecodeError::TooShort { .. } | DecodeError::LengthMismatch { .. } => {
                CommandStatus::ESME_RINVCMDLEN
            }
            DecodeError::UnknownCommand { .. } | DecodeError::Unsupported { .. } => {
                CommandStatus::ESME_RINVCMDID
            }
            DecodeError::InvalidBody { .. } => CommandStatus::ESME_RINVMSGLEN,
            DecodeError::FieldTooLong { field, .. } => match *field {
                "source_addr" => CommandStatus::ESME_RINVSRCADR,
                "destination_addr" => CommandStatus::ESME_RINVDSTADR,
                "service_type" => CommandStatus::ESME_RINVSERTYP,
                _ => CommandStatus::ESME_RINVMSGLEN,
            },
        }
    }
}

/// Why a PDU could not be encoded. Checked before any byte is written to a socket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{field} is {actual} octets, at most {max} allowed")]
    FieldTooLong {
        field: &'static str,
        actual: usize,
        max: usize,
    },
    #[error("{field} contains a NUL octet")]
    InteriorNul { field: &'static str },
    #[error("short_message is {actual} octets, at most {max} allowed")]
    ShortMessageTooLong { actual: usize, max: usize },
    #[error("TLV 0x{tag:04X} value is {actual} octets, at most 65535 allowed")]
    TlvTooLong { tag: u16, actual: usize },
}

/// One item read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A PDU we understood.
    Frame(Frame),
    /// A frame whose body did not decode; the stream is still in step. Answer with
    /// `generic_nack` (or the request's response with [`DecodeError::nack_status`]).
    Malformed(Malformed),
}

/// A frame that was framed correctly but could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub command_id: u32,
    pub command_status: u32,
    pub sequence_number: u32,
    pub error: DecodeError,
}

/// Why the stream itself cannot go on: the connection must be closed.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("command_length {length} is below the 16-octet header")]
    LengthTooSmall { length: u32 },
    #[error("command_length {length} exceeds the maximum of {max}")]
    LengthTooLarge { length: u32, max: usize },
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Length-delimited SMPP framing with a maximum PDU size.
///
/// Decodes into [`Inbound`]; encodes already-encoded PDUs ([`Bytes`] from
/// [`Frame::encode`]) so that encoding errors surface before the write, where the
/// caller can still reject one message without breaking the session.
#[derive(Debug)]
pub struct SmppCodec {
    inner: LengthDelimitedCodec,
    max_len: usize,
}

impl SmppCodec {
    /// A codec that refuses any `command_length` above `max_len` (at least the header).
    pub fn new(max_len: usize) -> Self {
        let max_len = max_len.max(HEADER_LEN);
        let inner = LengthDelimitedCodec::builder()
            .big_endian()
            .length_field_offset(0)
            .length_field_length(4)
            .length_adjustment(0)
            .num_skip(0)
            .max_frame_length(max_len)
            .new_codec();
        SmppCodec { inner, max_len }
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }
}

impl Default for SmppCodec {
    fn default() -> Self {
        SmppCodec::new(DEFAULT_MAX_PDU_LEN)
    }
}

impl Decoder for SmppCodec {
    type Item = Inbound;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Inbound>, FrameError> {
        if src.len() >= 4 {
            // Check the claimed length ourselves before the inner codec reserves
            // capacity for it.
            let length = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
            if (length as usize) < HEADER_LEN {
                return Err(FrameError::LengthTooSmall { length });
            }
            if length as usize > self.max_len {
                return Err(FrameError::LengthTooLarge {
                    length,
                    max: self.max_len,
                });
            }
        }
        let Some(frame) = self.inner.decode(src)? else {
            return Ok(None);
        };
        Ok(Some(decode_inbound(&frame)))
    }
}

/// Decode one framed PDU into an [`Inbound`] item.
pub fn decode_inbound(frame: &[u8]) -> Inbound {
    match Frame::decode(frame) {
        Ok(frame) => Inbound::Frame(frame),
        Err(error) => {
            let header = if frame.len() >= HEADER_LEN {
                RawHeader::parse(frame)
            } else {
                RawHeader {
                    command_length: frame.len() as u32,
                    command_id: 0,
                    command_status: 0,
                    sequence_number: 0,
                }
            };
            Inbound::Malformed(Malformed {
                command_id: header.command_id,
                command_status: header.command_status,
                sequence_number: header.sequence_number,
                error,
            })
        }
    }
}

impl Encoder<Bytes> for SmppCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
