//! How a phone app finds the car's companion transports, as pure byte codecs (no sockets):
//! the SDP query an Android phone makes for the companion UUID's RFCOMM channel, and the two
//! ATT requests an iPhone's GATT client makes for the companion service's PSM
//! characteristic (docs/companion-protocol.md, section 2).
//!
//! `phone-standin` speaks them over its own L2CAP sockets: in the VM tier the car and the
//! phone share one bluetoothd, whose profile and GATT client APIs would hand the car's own
//! registrations back to it.

/// The SDP PSM on BR/EDR.
pub const SDP_PSM: u16 = 0x0001;

/// The ATT fixed channel on LE.
pub const ATT_CID: u16 = 0x0004;

/// The ATT MTU every LE link starts with; requests here fit in it.
pub const ATT_DEFAULT_MTU: u16 = 23;

/// What went wrong reading an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The answer is cut short or does not parse.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// The car answered with an error.
    #[error("{what}: error {code:#04x}")]
    Refused {
        /// The request.
        what: &'static str,
        /// The protocol's error code.
        code: u16,
    },
    /// The car has no such service (or characteristic).
    #[error("not found: {0}")]
    NotFound(&'static str),
}

/// A UUID written `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as 16 bytes, most significant first.
pub fn uuid_bytes(uuid: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = uuid.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// SDP

/// An SDP ServiceSearchAttributeRequest (PDU 0x06) for the service class `uuid`, asking only
/// for attribute 0x0004, the ProtocolDescriptorList.
pub fn sdp_search_request(transaction: u16, uuid: [u8; 16]) -> Vec<u8> {
    let mut params = vec![0x35, 0x11, 0x1C];
    params.extend_from_slice(&uuid);
    // Maximum attribute byte count.
    params.extend_from_slice(&0x0400u16.to_be_bytes());
    // Attribute id list: uint16 0x0004.
    params.extend_from_slice(&[0x35, 0x03, 0x09, 0x00, 0x04]);
    // No continuation state.
    params.push(0x00);
    let mut pdu = vec![0x06];
    pdu.extend_from_slice(&transaction.to_be_bytes());
    pdu.extend_from_slice(&(params.len() as u16).to_be_bytes());
    pdu.extend_from_slice(&params);
    pdu
}

/// The RFCOMM channel in an SDP ServiceSearchAttributeResponse (PDU 0x07) to
/// [`sdp_search_request`]: the `uint8` after the RFCOMM protocol UUID (0x0003).
pub fn sdp_rfcomm_channel(response: &[u8]) -> Result<u8, DiscoveryError> {
    const WHAT: &str = "SDP response";
    match response.first() {
        Some(0x07) => {}
        Some(0x01) => {
            let code = response
                .get(5..7)
                .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
            return Err(DiscoveryError::Refused { what: WHAT, code });
        }
        _ => return Err(DiscoveryError::Malformed(WHAT)),
    }
    let count = response
        .get(5..7)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or(DiscoveryError::Malformed(WHAT))?;
    let lists = response
        .get(7..7 + count)
        .ok_or(DiscoveryError::Malformed(WHAT))?;
    let (element, _) = parse_element(lists).ok_or(DiscoveryError::Malformed(WHAT))?;
    find_rfcomm_channel(&element).ok_or(DiscoveryError::NotFound("companion RFCOMM channel"))
}

/// An SDP data element, as far as finding a channel needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Element {
    Uint(u64),
    Uuid(Vec<u8>),
    Sequence(Vec<Element>),
    Other,
}

/// Parses one data element; returns it and the bytes after it.
fn parse_element(bytes: &[u8]) -> Option<(Element, &[u8])> {
    let (&header, rest) = bytes.split_first()?;
    let kind = header >> 3;
    let (len, rest) = match header & 0x07 {
        0 if kind == 0 => (0, rest),
        0 => (1, rest),
        1 => (2, rest),
        2 => (4, rest),
        3 => (8, rest),
        4 => (16, rest),
        5 => (usize::from(*rest.first()?), rest.get(1..)?),
        6 => (
            usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            rest.get(2..)?,
        ),
        _ => {
            let b = rest.get(..4)?;
            (
                u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
                rest.get(4..)?,
            )
        }
    };
    let body = rest.get(..len)?;
    let after = rest.get(len..)?;
    let element = match kind {
        1 if len <= 8 => Element::Uint(body.iter().fold(0, |v, b| (v << 8) | u64::from(*b))),
        3 => Element::Uuid(body.to_vec()),
        6 | 7 => {
            let mut items = Vec::new();
            let mut inner = body;
            while !inner.is_empty() {
                let (item, next) = parse_element(inner)?;
                items.push(item);
                inner = next;
            }
            Element::Sequence(items)
        }
        _ => Element::Other,
    };
    Some((element, after))
}

/// The channel of the first `{UUID 0x0003, uint8}` protocol descriptor, depth first.
fn find_rfcomm_channel(element: &Element) -> Option<u8> {
    let Element::Sequence(items) = element else {
        return None;
    };
    if let [Element::Uuid(uuid), Element::Uint(channel), ..] = items.as_slice()
        && uuid.as_slice() == [0x00, 0x03]
    {
        return u8::try_from(*channel).ok();
    }
    items.iter().find_map(find_rfcomm_channel)
}

// ---------------------------------------------------------------------------------------------
// ATT

/// ATT Find By Type Value Request (0x06): where the primary service `service` is.
pub fn att_find_service_request(service: [u8; 16]) -> Vec<u8> {
    let mut pdu = vec![0x06, 0x01, 0x00, 0xFF, 0xFF];
    // Attribute type: primary service declaration, 0x2800.
    pdu.extend_from_slice(&0x2800u16.to_le_bytes());
    pdu.extend(service.iter().rev());
    pdu
}

/// ATT Read By Type Request (0x08): the value of characteristic `characteristic` within
/// `range`.
pub fn att_read_by_type_request(range: (u16, u16), characteristic: [u8; 16]) -> Vec<u8> {
    let mut pdu = vec![0x08];
    pdu.extend_from_slice(&range.0.to_le_bytes());
    pdu.extend_from_slice(&range.1.to_le_bytes());
    pdu.extend(characteristic.iter().rev());
    pdu
}

/// One PDU the car's ATT bearer sent, sorted by what the phone does with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttIncoming {
    /// A response (or error response) to the phone's request with this opcode.
    Response {
        /// The opcode of the request it answers.
        request: u8,
        /// The whole PDU.
        pdu: Vec<u8>,
    },
    /// A request or indication of the car's own (its GATT client looking at the phone):
    /// send this answer.
    Answer(Vec<u8>),
    /// Nothing to do (a command or notification).
    Ignore,
}

/// Sorts a PDU from the car. The stand-in has no GATT server of its own on this bearer: the
/// car's requests get "request not supported", its MTU exchange the default MTU.
pub fn att_classify(pdu: &[u8]) -> AttIncoming {
    let Some(&opcode) = pdu.first() else {
        return AttIncoming::Ignore;
    };
    match opcode {
        0x01 => AttIncoming::Response {
            request: pdu.get(1).copied().unwrap_or(0),
            pdu: pdu.to_vec(),
        },
        // Exchange MTU request.
        0x02 => {
            let mut answer = vec![0x03];
            answer.extend_from_slice(&ATT_DEFAULT_MTU.to_le_bytes());
            AttIncoming::Answer(answer)
        }
        // Indication: confirm it.
        0x1D => AttIncoming::Answer(vec![0x1E]),
        // Commands (bit 6) and notifications need no answer.
        op if op & 0x40 != 0 || op == 0x1B => AttIncoming::Ignore,
        // Responses have odd opcodes; they answer the request one below.
        op if op & 0x01 == 1 => AttIncoming::Response {
            request: op - 1,
            pdu: pdu.to_vec(),
        },
        // Any other request: error "request not supported" (0x06), handle 0.
        op => AttIncoming::Answer(vec![0x01, op, 0x00, 0x00, 0x06]),
    }
}

/// The handle range of the first service in a Find By Type Value Response (0x07).
pub fn att_service_range(pdu: &[u8]) -> Result<(u16, u16), DiscoveryError> {
    const WHAT: &str = "companion GATT service";
    att_error(pdu, WHAT)?;
    match pdu {
        [0x07, a, b, c, d, ..] => Ok((u16::from_le_bytes([*a, *b]), u16::from_le_bytes([*c, *d]))),
        _ => Err(DiscoveryError::Malformed(WHAT)),
    }
}

/// The first value in a Read By Type Response (0x09).
pub fn att_read_by_type_value(pdu: &[u8]) -> Result<Vec<u8>, DiscoveryError> {
    const WHAT: &str = "PSM characteristic";
    att_error(pdu, WHAT)?;
    match pdu {
        [0x09, len, rest @ ..] if *len >= 2 && rest.len() >= usize::from(*len) => {
            Ok(rest[2..usize::from(*len)].to_vec())
        }
        _ => Err(DiscoveryError::Malformed(WHAT)),
    }
}

/// The PSM in a PSM characteristic's value: `u16` little-endian.
pub fn psm_from_value(value: &[u8]) -> Result<u16, DiscoveryError> {
    match value {
        [lo, hi] => Ok(u16::from_le_bytes([*lo, *hi])),
        _ => Err(DiscoveryError::Malformed("PSM value (2 bytes expected)")),
    }
}

/// An ATT Error Response: "attribute not found" (0x0A) is [`DiscoveryError::NotFound`].
fn att_error(pdu: &[u8], what: &'static str) -> Result<(), DiscoveryError> {
    match pdu {
        [0x01, _, _, _, 0x0A, ..] => Err(DiscoveryError::NotFound(what)),
        [0x01, _, _, _, code, ..] => Err(DiscoveryError::Refused {
            what,
            code: u16::from(*code),
        }),
        [0x01, ..] => Err(DiscoveryError::Malformed(what)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const COMPANION: &str = "c0d71e00-5a5e-4c61-9b1a-6f8b2a3e0001";

    #[test]
    fn uuids_parse_most_significant_first() {
        let u = uuid_bytes(COMPANION).unwrap();
        assert_eq!(u[0], 0xC0);
        assert_eq!(u[15], 0x01);
        assert!(uuid_bytes("c0d71e00").is_none());
        assert!(uuid_bytes("zzd71e00-5a5e-4c61-9b1a-6f8b2a3e0001").is_none());
    }

    #[test]
    fn sdp_request_asks_for_the_protocol_descriptor_list() {
        let pdu = sdp_search_request(1, uuid_bytes(COMPANION).unwrap());
        assert_eq!(&pdu[..5], &[0x06, 0x00, 0x01, 0x00, 0x1B]);
        assert_eq!(pdu.len(), 5 + 0x1B);
        assert_eq!(&pdu[5..8], &[0x35, 0x11, 0x1C]);
        assert_eq!(&pdu[pdu.len() - 6..], &[0x35, 0x03, 0x09, 0x00, 0x04, 0x00]);
    }

    #[test]
    fn rfcomm_channel_is_found_in_a_bluez_answer() {
        // As bluetoothd 5.66 answers for a profile registered with Channel 0 (it took 3):
        // {{0x0004: {{L2CAP}, {RFCOMM, 3}}}}
        let lists = [
            0x35, 0x13, 0x35, 0x11, 0x09, 0x00, 0x04, 0x35, 0x0C, 0x35, 0x03, 0x19, 0x01, 0x00,
            0x35, 0x05, 0x19, 0x00, 0x03, 0x08, 0x03,
        ];
        let mut pdu = vec![0x07, 0x00, 0x01];
        pdu.extend_from_slice(&((lists.len() + 3) as u16).to_be_bytes());
        pdu.extend_from_slice(&(lists.len() as u16).to_be_bytes());
        pdu.extend_from_slice(&lists);
        pdu.push(0x00);
        assert_eq!(sdp_rfcomm_channel(&pdu), Ok(3));
        // No record: an empty list.
        let empty = [0x07, 0x00, 0x01, 0x00, 0x05, 0x00, 0x02, 0x35, 0x00, 0x00];
        assert_eq!(
            sdp_rfcomm_channel(&empty),
            Err(DiscoveryError::NotFound("companion RFCOMM channel"))
        );
        assert!(matches!(
            sdp_rfcomm_channel(&[0x01, 0, 1, 0, 2, 0, 3]),
            Err(DiscoveryError::Refused { code: 3, .. })
        ));
        assert!(sdp_rfcomm_channel(&[0x07, 0, 1, 0, 9, 0, 20, 0x35]).is_err());
    }

    #[test]
    fn att_requests_put_uuids_little_endian() {
        let service = uuid_bytes("c0d71e00-5a5e-4c61-9b1a-6f8b2a3e0002").unwrap();
        let pdu = att_find_service_request(service);
        assert_eq!(&pdu[..7], &[0x06, 0x01, 0x00, 0xFF, 0xFF, 0x00, 0x28]);
        assert_eq!((pdu[7], pdu[22]), (0x02, 0xC0));
        let pdu = att_read_by_type_request((0x0010, 0x0015), service);
        assert_eq!(&pdu[..5], &[0x08, 0x10, 0x00, 0x15, 0x00]);
        assert_eq!(pdu.len(), 21);
    }

    #[test]
    fn att_answers_are_read() {
        assert_eq!(
            att_service_range(&[0x07, 0x10, 0x00, 0x15, 0x00]),
            Ok((0x10, 0x15))
        );
        assert_eq!(
            att_service_range(&[0x01, 0x06, 0x01, 0x00, 0x0A]),
            Err(DiscoveryError::NotFound("companion GATT service"))
        );
        let value = att_read_by_type_value(&[0x09, 0x04, 0x12, 0x00, 0x81, 0x00]).unwrap();
        assert_eq!(psm_from_value(&value), Ok(0x0081));
        assert!(att_read_by_type_value(&[0x09, 0x04, 0x12]).is_err());
        assert!(psm_from_value(&[1, 2, 3]).is_err());
    }

    #[test]
    fn the_cars_own_att_requests_get_answers() {
        assert_eq!(
            att_classify(&[0x02, 0x00, 0x02]),
            AttIncoming::Answer(vec![0x03, 23, 0])
        );
        assert_eq!(
            att_classify(&[0x10, 0x01, 0x00, 0xFF, 0xFF, 0x00, 0x28]),
            AttIncoming::Answer(vec![0x01, 0x10, 0x00, 0x00, 0x06])
        );
        assert_eq!(att_classify(&[0x1D, 1, 0]), AttIncoming::Answer(vec![0x1E]));
        assert_eq!(att_classify(&[0x52, 1, 0]), AttIncoming::Ignore);
        assert_eq!(att_classify(&[0x1B, 1, 0]), AttIncoming::Ignore);
        assert!(matches!(
            att_classify(&[0x07, 1, 0, 2, 0]),
            AttIncoming::Response { request: 0x06, .. }
        ));
        assert!(matches!(
            att_classify(&[0x01, 0x08, 1, 0, 0x0A]),
            AttIncoming::Response { request: 0x08, .. }
        ));
    }
}
