//! A minimal STUN codec (RFC 5389 / 8489): Binding requests out, any
//! response in.
//!
//! A request is the bare 20-byte header (type `0x0001`, length 0, the magic
//! cookie, a 12-byte transaction id). [`decode`] accepts any well-formed
//! response — success *or* error class, of any method, since relays answer
//! a plain Binding with an error and WhatsApp's use non-standard types —
//! whose cookie and transaction id match, and reads the reflexive address
//! (XOR-MAPPED-ADDRESS, or the older MAPPED-ADDRESS) and ERROR-CODE.
//!
//! It is hand-written because this is all the exporter needs: a header and an
//! attribute walk, about a hundred lines, where a STUN crate would add a
//! random-number and hashing stack for message integrity we never use.
//! [`decode`] never panics on any input (a test feeds it millions).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The magic cookie of RFC 5389.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Length of a STUN header, and of a Binding request.
pub const HEADER_LEN: usize = 20;

const BINDING_REQUEST: u16 = 0x0001;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A transaction id.
pub type TransactionId = [u8; 12];

/// A Binding request with transaction id `id`.
pub fn binding_request(id: &TransactionId) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Length 0: no attributes.
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..20].copy_from_slice(id);
    out
}

/// A decoded STUN response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The transaction id it answers.
    pub id: TransactionId,
    /// The method (1 for Binding; others from non-standard servers).
    pub method: u16,
    /// `None` for a success response, else the ERROR-CODE (e.g. 401), or 0
    /// for an error response without one.
    pub error: Option<u16>,
    /// Our address as the server saw it, if it said.
    pub mapped: Option<SocketAddr>,
}

/// Why bytes are not a STUN response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the header, or than the length the header declares.
    Truncated,
    /// The first two bits are not zero, or the length is not a multiple of 4.
    NotStun,
    /// The magic cookie is wrong.
    BadCookie,
    /// A request or indication, not a response.
    NotResponse,
    /// An attribute overruns the message.
    BadAttribute,
}

/// The total message length the 20-byte `header` declares, for reading a
/// message from a stream. `None` if it is not a STUN header.
pub fn message_len(header: &[u8]) -> Option<usize> {
    if header.len() < HEADER_LEN || header[0] & 0xC0 != 0 {
        return None;
    }
    let body = usize::from(u16::from_be_bytes([header[2], header[3]]));
    (body % 4 == 0).then_some(HEADER_LEN + body)
}

/// What the bytes read so far from a stream amount to, for reading one
/// message of at most `max` bytes ([`frame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Not enough bytes yet to tell.
    More,
    /// The first message is complete: it is `buf[..n]`.
    Complete(usize),
    /// Not a STUN message (or longer than `max`): a stream cannot be
    /// resynchronised, so reading stops.
    Malformed,
}

/// Frames the first message of the stream bytes `buf`: the first two bits
/// and the magic cookie are checked as soon as they are in, the length once
/// the header is.
pub fn frame(buf: &[u8], max: usize) -> Framing {
    let Some(&first) = buf.first() else {
        return Framing::More;
    };
    if first & 0xC0 != 0 || (buf.len() >= 8 && buf[4..8] != MAGIC_COOKIE.to_be_bytes()) {
        return Framing::Malformed;
    }
    if buf.len() < HEADER_LEN {
        return Framing::More;
    }
    match message_len(buf) {
        Some(total) if total <= max && buf.len() >= total => Framing::Complete(total),
        Some(total) if total <= max => Framing::More,
        _ => Framing::Malformed,
    }
}

/// Decodes one STUN response occupying all of `buf`.
pub fn decode(buf: &[u8]) -> Result<Response, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let total = message_len(buf).ok_or(DecodeError::NotStun)?;
    if buf.len() < total {
        return Err(DecodeError::Truncated);
    }
    if buf.len() > total {
        return Err(DecodeError::NotStun);
    }
    let cookie = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if cookie != MAGIC_COOKIE {
        return Err(DecodeError::BadCookie);
    }
    let ty = u16::from_be_bytes([buf[0], buf[1]]);
    // Class bits C1 (0x0100) and C0 (0x0010): 10 success, 11 error.
    let is_response = ty & 0x0100 != 0;
    if !is_response {
        return Err(DecodeError::NotResponse);
    }
    let is_error = ty & 0x0010 != 0;
    let method = (ty & 0x000F) | ((ty & 0x00E0) >> 1) | ((ty & 0x3E00) >> 2);
    let mut id = [0u8; 12];
    id.copy_from_slice(&buf[8..20]);

    let mut error = is_error.then_some(0);
    let mut xor_mapped = None;
    let mut mapped = None;
    let mut rest = &buf[HEADER_LEN..];
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(DecodeError::BadAttribute);
        }
        let a_type = u16::from_be_bytes([rest[0], rest[1]]);
        let a_len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let padded = a_len.div_ceil(4) * 4;
        if rest.len() < 4 + padded {
            return Err(DecodeError::BadAttribute);
        }
        let value = &rest[4..4 + a_len];
        match a_type {
            ATTR_XOR_MAPPED_ADDRESS => xor_mapped = address(value, Some(&id)),
            ATTR_MAPPED_ADDRESS => mapped = address(value, None),
            // The number is the code modulo 100 (RFC 5389 §15.6): one
            // past 99 is a malformed attribute, ignored as a malformed
            // address is (the response still proves the path).
            ATTR_ERROR_CODE if is_error && value.len() >= 4 && value[3] <= 99 => {
                error = Some(u16::from(value[2] & 0x07) * 100 + u16::from(value[3]));
            }
            _ => {}
        }
        rest = &rest[4 + padded..];
    }
    Ok(Response {
        id,
        method,
        error,
        mapped: xor_mapped.or(mapped),
    })
}

/// Reads a (XOR-)MAPPED-ADDRESS value; `xor` carries the transaction id for
/// the XOR form. Malformed values give `None`: the address is a fact we
/// log, not a condition of success.
fn address(v: &[u8], xor: Option<&TransactionId>) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let mut port = u16::from_be_bytes([v[2], v[3]]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let ip = match (v[1], v.len()) {
        (1, 8) => {
            let mut b = [v[4], v[5], v[6], v[7]];
            if xor.is_some() {
                for (x, k) in b.iter_mut().zip(cookie) {
                    *x ^= k;
                }
            }
            IpAddr::V4(Ipv4Addr::from(b))
        }
        (2, 20) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&v[4..20]);
            if let Some(id) = xor {
                let key = cookie.iter().chain(id.iter());
                for (x, k) in b.iter_mut().zip(key) {
                    *x ^= k;
                }
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Encodes a response, for test servers: `error` makes it an error response
/// with that ERROR-CODE; `mapped` adds an XOR-MAPPED-ADDRESS.
pub fn encode_response(
    id: &TransactionId,
    method: u16,
    error: Option<u16>,
    mapped: Option<SocketAddr>,
) -> Vec<u8> {
    let class: u16 = if error.is_some() { 0x0110 } else { 0x0100 };
    let m = method & 0x0FFF;
    let ty = class | (m & 0x000F) | ((m & 0x0070) << 1) | ((m & 0x0F80) << 2);
    let mut attrs = Vec::new();
    if let Some(code) = error {
        attrs.extend_from_slice(&ATTR_ERROR_CODE.to_be_bytes());
        attrs.extend_from_slice(&4u16.to_be_bytes());
        attrs.extend_from_slice(&[0, 0, (code / 100) as u8, (code % 100) as u8]);
    }
    if let Some(addr) = mapped {
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let cookie = MAGIC_COOKIE.to_be_bytes();
        let (family, bytes): (u8, Vec<u8>) = match addr.ip() {
            IpAddr::V4(v4) => (
                1,
                v4.octets().iter().zip(cookie).map(|(a, k)| a ^ k).collect(),
            ),
            IpAddr::V6(v6) => {
                let key: Vec<u8> = cookie.iter().chain(id.iter()).copied().collect();
                (2, v6.octets().iter().zip(key).map(|(a, k)| a ^ k).collect())
            }
        };
        attrs.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
        attrs.extend_from_slice(&((4 + bytes.len()) as u16).to_be_bytes());
        attrs.extend_from_slice(&[0, family]);
        attrs.extend_from_slice(&port.to_be_bytes());
        attrs.extend_from_slice(&bytes);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + attrs.len());
    out.extend_from_slice(&ty.to_be_bytes());
    out.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(id);
    out.extend_from_slice(&attrs);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: TransactionId = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

    #[test]
    fn request_wire_format() {
        let r = binding_request(&ID);
        assert_eq!(&r[..8], &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42]);
        assert_eq!(&r[8..], &ID);
    }

    #[test]
    fn success_with_xor_mapped_address_v4_and_v6() {
        for addr in ["203.0.113.7:54321", "[2001:db8::7]:3478"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let wire = encode_response(&ID, 1, None, Some(addr));
            let r = decode(&wire).unwrap();
            assert_eq!(
                r,
                Response {
                    id: ID,
                    method: 1,
                    error: None,
                    mapped: Some(addr)
                }
            );
        }
    }

    #[test]
    fn known_vector_from_rfc_5769() {
        // RFC 5769 section 2.2: IPv4 response, XOR-MAPPED-ADDRESS 192.0.2.1:32853
        // (the SOFTWARE, MESSAGE-INTEGRITY and FINGERPRINT attributes are skipped).
        let hex = "0101003c2112a442b7e7a701bc34d686fa87dfae802200 0b7465737420766563746f7220\
                   00200008 0001a147e112a643 00080014 2b91f599fd9e90c38c7489f92af9ba53f06be7d7 \
                   80280004 c07d4c96";
        let bytes: Vec<u8> = hex
            .split_whitespace()
            .collect::<String>()
            .as_bytes()
            .chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect();
        let r = decode(&bytes).unwrap();
        assert_eq!(r.error, None);
        assert_eq!(r.method, 1);
        assert_eq!(r.mapped, Some("192.0.2.1:32853".parse().unwrap()));
    }

    #[test]
    fn error_response_and_non_standard_method() {
        let wire = encode_response(&ID, 0x0801, Some(401), None);
        let r = decode(&wire).unwrap();
        assert_eq!(r.error, Some(401));
        assert_eq!(r.method, 0x0801);
        // A number past 99 (class 7, number 136: "836") is no code: an
        // error response without one. Found by bench/fuzz.sh.
        let mut bad = encode_response(&ID, 1, Some(799), None);
        let n = bad.len();
        assert_eq!(bad[n - 1], 99);
        bad[n - 1] = 136;
        assert_eq!(decode(&bad).map(|r| r.error), Ok(Some(0)));
    }

    #[test]
    fn malformed_inputs_are_rejected() {
        let good = encode_response(&ID, 1, None, Some("198.51.100.1:1".parse().unwrap()));
        assert_eq!(decode(&good[..19]), Err(DecodeError::Truncated));
        assert_eq!(decode(&good[..good.len() - 4]), Err(DecodeError::Truncated));
        let mut bad = good.clone();
        bad[4] ^= 0xff;
        assert_eq!(decode(&bad), Err(DecodeError::BadCookie));
        let mut bad = good.clone();
        bad[0] |= 0x80;
        assert_eq!(decode(&bad), Err(DecodeError::NotStun));
        assert_eq!(decode(&binding_request(&ID)), Err(DecodeError::NotResponse));
        let mut bad = good.clone();
        bad[22..24].copy_from_slice(&200u16.to_be_bytes()); // attribute longer than the message
        assert_eq!(decode(&bad), Err(DecodeError::BadAttribute));
    }

    /// xorshift64*: a deterministic stream for the property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
    }

    /// The decoder survives any bytes: a million inputs, half random, half
    /// valid responses with bytes flipped, lengths changed or cut short.
    #[test]
    fn decode_survives_a_million_inputs() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let seeds = [
            encode_response(&ID, 1, None, Some("203.0.113.7:1".parse().unwrap())),
            encode_response(&ID, 1, Some(401), Some("[2001:db8::1]:2".parse().unwrap())),
            encode_response(&ID, 0x0ABC, Some(699), None),
        ];
        let mut decoded = 0usize;
        for i in 0..1_000_000u32 {
            let input: Vec<u8> = if i % 2 == 0 {
                let len = (rng.next() % 96) as usize;
                let mut v: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                if len >= 8 && rng.next() % 2 == 0 {
                    // Often give random bytes a valid cookie and a response type.
                    v[0] &= 0x3F;
                    v[1] |= 0x01;
                    v[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
                }
                v
            } else {
                let mut v = seeds[(rng.next() % 3) as usize].clone();
                for _ in 0..=(rng.next() % 4) {
                    let at = (rng.next() as usize) % v.len();
                    v[at] = rng.next() as u8;
                }
                let cut = (rng.next() as usize) % (v.len() + 1);
                if rng.next() % 3 == 0 {
                    v.truncate(cut);
                }
                v
            };
            if decode(&input).is_ok() {
                decoded += 1;
            }
            let _ = message_len(&input);
        }
        // The mutations keep some inputs valid: the decoder is exercised on
        // both sides.
        assert!(decoded > 10_000, "{decoded}");
    }
}
