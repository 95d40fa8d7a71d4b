//! An independent SMPP 3.4 decoder for the PDUs an ESME sends, written byte by byte from
//! the specification (§3.2 header, §4 PDU layouts, §5.3 TLVs) without the project's codec
//! or smpp34. The simulator runs every PDU it receives through it as well and counts any
//! violation or disagreement (`golden_errors` in `/stats`), so a bug that our encoder and
//! our decoder share cannot pass the whole-service tests.

use std::fmt;

/// What the golden decoder read from one PDU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoldenPdu {
    Bind {
        command_id: u32,
        system_id: String,
        password_len: usize,
        system_type: String,
        interface_version: u8,
    },
    SubmitSm(GoldenSubmit),
    DeliverSmResp,
    /// enquire_link, enquire_link_resp, unbind, unbind_resp, generic_nack.
    HeaderOnly {
        command_id: u32,
    },
}

/// The fields of a submit_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoldenSubmit {
    pub service_type: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub source_addr: String,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub registered_delivery: u8,
    pub data_coding: u8,
    pub short_message: Vec<u8>,
    pub tlvs: Vec<(u16, Vec<u8>)>,
}

/// A rule of SMPP 3.4 the PDU breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn violation<T>(text: impl Into<String>) -> Result<T, Violation> {
    Err(Violation(text.into()))
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self, field: &str) -> Result<u8, Violation> {
        let Some(&b) = self.bytes.get(self.at) else {
            return violation(format!("{field}: PDU ends early"));
        };
        self.at += 1;
        Ok(b)
    }

    fn u16(&mut self, field: &str) -> Result<u16, Violation> {
        Ok(u16::from(self.u8(field)?) << 8 | u16::from(self.u8(field)?))
    }

    /// A C-Octet String of at most `max` octets including its NUL.
    fn c_string(&mut self, field: &str, max: usize) -> Result<String, Violation> {
        let rest = &self.bytes[self.at..];
        let Some(nul) = rest.iter().position(|b| *b == 0) else {
            return violation(format!("{field}: no NUL terminator"));
        };
        if nul + 1 > max {
            return violation(format!("{field}: {} octets, at most {max}", nul + 1));
        }
        let text = String::from_utf8_lossy(&rest[..nul]).into_owned();
        self.at += nul + 1;
        Ok(text)
    }

    fn take(&mut self, field: &str, n: usize) -> Result<&'a [u8], Violation> {
        if self.bytes.len() - self.at < n {
            return violation(format!("{field}: {n} octets announced, fewer left"));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Decode one whole PDU (header included) as an ESME sends it.
pub fn decode(pdu: &[u8]) -> Result<GoldenPdu, Violation> {
    if pdu.len() < 16 {
        return violation(format!("{} octets, shorter than a header", pdu.len()));
    }
    let word = |i: usize| u32::from_be_bytes([pdu[i], pdu[i + 1], pdu[i + 2], pdu[i + 3]]);
    let (length, command_id, status, sequence) = (word(0), word(4), word(8), word(12));
    if length as usize != pdu.len() {
        return violation(format!("command_length {length} but {} octets", pdu.len()));
    }
    if sequence == 0 || sequence > 0x7FFF_FFFF {
        return violation(format!("sequence_number {sequence} outside 1..=0x7FFFFFFF"));
    }
    let is_response = command_id & 0x8000_0000 != 0;
    if !is_response && status != 0 {
        return violation(format!("request with command_status {status:#x}"));
    }
    let mut body = Cursor {
        bytes: &pdu[16..],
        at: 0,
    };
    let decoded = match command_id {
        0x0000_0001 | 0x0000_0002 | 0x0000_0009 => {
            let system_id = body.c_string("system_id", 16)?;
            let password = body.c_string("password", 9)?;
            let system_type = body.c_string("system_type", 13)?;
            let interface_version = body.u8("interface_version")?;
            if interface_version != 0x34 {
                return violation(format!(
                    "interface_version {interface_version:#04x}, not 0x34"
                ));
            }
            body.u8("addr_ton")?;
            body.u8("addr_npi")?;
            body.c_string("address_range", 41)?;
            GoldenPdu::Bind {
                command_id,
                system_id,
                password_len: password.len(),
                system_type,
                interface_version,
            }
        }
        0x0000_0004 => GoldenPdu::SubmitSm(submit_sm(&mut body)?),
        0x8000_0005 => {
            // message_id: unused, "set to NULL" (one NUL octet).
            let id = body.c_string("message_id", 65)?;
            if !id.is_empty() {
                return violation("deliver_sm_resp message_id must be NULL");
            }
            GoldenPdu::DeliverSmResp
        }
        0x0000_0015 | 0x8000_0015 | 0x0000_0006 | 0x8000_0006 | 0x8000_0000 => {
            GoldenPdu::HeaderOnly { command_id }
        }
        other => {
            return violation(format!(
                "command_id {other:#010x} is not one an ESME sends here"
            ));
        }
    };
    if !body.done() {
        return violation(format!(
            "{} octets after the last field",
            body.bytes.len() - body.at
        ));
    }
    Ok(decoded)
}

fn submit_sm(body: &mut Cursor<'_>) -> Result<GoldenSubmit, Violation> {
    let service_type = body.c_string("service_type", 6)?;
    let source_addr_ton = body.u8("source_addr_ton")?;
    let source_addr_npi = body.u8("source_addr_npi")?;
    let source_addr = body.c_string("source_addr", 21)?;
    let dest_addr_ton = body.u8("dest_addr_ton")?;
    let dest_addr_npi = body.u8("dest_addr_npi")?;
    let destination_addr = body.c_string("destination_addr", 21)?;
    let esm_class = body.u8("esm_class")?;
    body.u8("protocol_id")?;
    body.u8("priority_flag")?;
    for field in ["schedule_delivery_time", "validity_period"] {
        let time = body.c_string(field, 17)?;
        if !time.is_empty() && time.len() != 16 {
            return violation(format!("{field}: {} characters, 0 or 16", time.len()));
        }
    }
    let registered_delivery = body.u8("registered_delivery")?;
    body.u8("replace_if_present_flag")?;
    let data_coding = body.u8("data_coding")?;
    body.u8("sm_default_msg_id")?;
    let sm_length = usize::from(body.u8("sm_length")?);
    let short_message = body.take("short_message", sm_length)?.to_vec();
    if esm_class & 0x40 != 0 {
        // UDHI: the user data header's length must fit the short message.
        let Some(&udhl) = short_message.first() else {
            return violation("esm_class has UDHI but short_message is empty");
        };
        if usize::from(udhl) + 1 > short_message.len() {
            return violation("UDH longer than short_message");
        }
    }
    let mut tlvs = Vec::new();
    while !body.done() {
        let tag = body.u16("tlv tag")?;
        let len = usize::from(body.u16("tlv length")?);
        let value = body.take("tlv value", len)?.to_vec();
        if tag == 0x0424 && !short_message.is_empty() {
            return violation("message_payload with a non-empty short_message");
        }
        tlvs.push((tag, value));
    }
    Ok(GoldenSubmit {
        service_type,
        source_addr_ton,
        source_addr_npi,
        source_addr,
        dest_addr_ton,
        dest_addr_npi,
        destination_addr,
        esm_class,
        registered_delivery,
        data_coding,
        short_message,
        tlvs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let clean: String = text.split_whitespace().collect();
        (0..clean.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn bind_transceiver_by_hand() {
        // length 28, bind_transceiver, status 0, seq 1, "abc\0", "pw\0", "\0", 0x34, 0, 0, "\0"
        let pdu = hex("0000001C 00000009 00000000 00000001 61626300 707700 00 34 00 00 00");
        assert_eq!(
            decode(&pdu),
            Ok(GoldenPdu::Bind {
                command_id: 9,
                system_id: "abc".into(),
                password_len: 2,
                system_type: String::new(),
                interface_version: 0x34
            })
        );
        let mut wrong = pdu.clone();
        wrong[24] = 0x33;
        assert!(decode(&wrong).unwrap_err().0.contains("interface_version"));
    }

    #[test]
    fn submit_sm_with_a_udh_by_hand() {
        // service_type "", src 5/0 "Ghasi", dst 1/1 "93700", esm 0x40, pid 0, prio 0, "", "",
        // rd 1, replace 0, dcs 0, default 0, sm_length 8: UDH 05 00 03 2A 02 01 + "Hi".
        let body = "00 05 00 4768617369 00 01 01 3933373030 00 40 00 00 00 00 01 00 00 00 08 0500032A0201 4869";
        let body = hex(body);
        let mut pdu = Vec::new();
        pdu.extend_from_slice(&((16 + body.len()) as u32).to_be_bytes());
        pdu.extend_from_slice(&hex("00000004 00000000 00000007"));
        pdu.extend_from_slice(&body);
        let GoldenPdu::SubmitSm(submit) = decode(&pdu).expect("valid") else {
            panic!("not a submit_sm");
        };
        assert_eq!(submit.source_addr, "Ghasi");
        assert_eq!(submit.destination_addr, "93700");
        assert_eq!(submit.esm_class, 0x40);
        assert_eq!(submit.short_message, hex("0500032A0201 4869"));
        assert!(submit.tlvs.is_empty());
        // sm_length one too many: the PDU ends early.
        let mut bad = pdu.clone();
        let sm_length_at = 16 + body.len() - 9;
        bad[sm_length_at] = 9;
        assert!(decode(&bad).is_err());
    }

    #[test]
    fn header_rules() {
        assert!(
            decode(&hex("00000010 00000015 00000000 00000000")).is_err(),
            "seq 0"
        );
        assert!(
            decode(&hex("00000011 00000015 00000000 00000001")).is_err(),
            "length"
        );
        assert!(
            decode(&hex("00000010 00000015 00000001 00000001")).is_err(),
            "status"
        );
        assert_eq!(
            decode(&hex("00000010 00000015 00000000 00000001")),
            Ok(GoldenPdu::HeaderOnly { command_id: 0x15 })
        );
        assert_eq!(
            decode(&hex("00000011 80000005 00000000 00000002 00")),
            Ok(GoldenPdu::DeliverSmResp)
        );
        assert!(
            decode(&hex("00000010 80000005 00000000 00000002")).is_err(),
            "no message_id"
        );
    }
}
