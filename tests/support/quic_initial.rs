//! Decrypting a QUIC version 1 client Initial packet as the TSPU does
//! (RFC 9001 §5: its keys derive from the Destination Connection ID the
//! packet carries in the clear), to read the ClientHello inside. Used by the
//! in-process QUIC SNI filter and, through `#[path]`, by the interop suite's
//! NFQUEUE filter (`tests/interop/nfq-censor`). Depends on ring only.

use ring::aead::quic::{AES_128, HeaderProtectionKey};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, KeyType, Prk, Salt};

/// RFC 9001 §5.2: the salt of QUIC version 1's Initial secrets.
const INITIAL_SALT: [u8; 20] = [
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad,
    0xcc, 0xbb, 0x7f, 0x0a,
];

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// TLS 1.3's HKDF-Expand-Label with an empty context.
fn expand_label(prk: &Prk, label: &str, len: usize) -> Vec<u8> {
    let full = format!("tls13 {label}");
    let info = [
        &(len as u16).to_be_bytes()[..],
        &[full.len() as u8],
        full.as_bytes(),
        &[0],
    ];
    let mut out = vec![0; len];
    prk.expand(&info, Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF output of a valid length");
    out
}

/// A QUIC variable-length integer at `*at`, advancing past it.
fn varint(p: &[u8], at: &mut usize) -> Option<u64> {
    let first = *p.get(*at)?;
    let n = 1usize << (first >> 6);
    let bytes = p.get(*at..*at + n)?;
    let mut v = u64::from(first & 0x3f);
    for b in &bytes[1..] {
        v = v << 8 | u64::from(*b);
    }
    *at += n;
    Some(v)
}

/// The CRYPTO data at offset 0 of the first packet of a UDP datagram, if
/// that packet is a QUIC v1 client Initial that decrypts (the start of the
/// ClientHello handshake message); `None` for any other packet.
pub fn client_hello(datagram: &[u8]) -> Option<Vec<u8>> {
    let mut p = datagram.to_vec();
    // Long header, fixed bit, type Initial (0); version 1.
    if p.first()? & 0xf0 != 0xc0 || p.get(1..5)? != [0, 0, 0, 1] {
        return None;
    }
    let dcid_len = usize::from(*p.get(5)?);
    let dcid = p.get(6..6 + dcid_len)?.to_vec();
    let mut at = 6 + dcid_len;
    at += 1 + usize::from(*p.get(at)?);
    let token = varint(&p, &mut at)? as usize;
    at += token;
    let length = varint(&p, &mut at)? as usize;
    let pn_at = at;
    let end = pn_at.checked_add(length)?;
    if end > p.len() {
        return None;
    }

    let initial = Salt::new(HKDF_SHA256, &INITIAL_SALT).extract(&dcid);
    let client = expand_label(&initial, "client in", 32);
    let client = Prk::new_less_safe(HKDF_SHA256, &client);
    let key = expand_label(&client, "quic key", 16);
    let iv = expand_label(&client, "quic iv", 12);
    let hp = expand_label(&client, "quic hp", 16);

    // Header protection: the sample starts 4 bytes past the packet number.
    let hp = HeaderProtectionKey::new(&AES_128, &hp).ok()?;
    let mask = hp.new_mask(p.get(pn_at + 4..pn_at + 20)?).ok()?;
    p[0] ^= mask[0] & 0x0f;
    let pn_len = usize::from(p[0] & 0x03) + 1;
    let mut pn = 0u64;
    for i in 0..pn_len {
        p[pn_at + i] ^= mask[1 + i];
        pn = pn << 8 | u64::from(p[pn_at + i]);
    }
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&iv);
    for (n, b) in nonce[4..].iter_mut().zip(pn.to_be_bytes()) {
        *n ^= b;
    }
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).ok()?);
    let (header, rest) = p.split_at_mut(pn_at + pn_len);
    let sealed = &mut rest[..end - pn_at - pn_len];
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&header[..]),
            sealed,
        )
        .ok()?;

    // Frames: PADDING, PING and CRYPTO are all a first Initial carries.
    let mut data = Vec::new();
    let mut at = 0;
    while at < plain.len() {
        match plain[at] {
            0x00 | 0x01 => at += 1,
            0x06 => {
                at += 1;
                let offset = varint(plain, &mut at)? as usize;
                let n = varint(plain, &mut at)? as usize;
                let bytes = plain.get(at..at + n)?;
                if offset == data.len() {
                    data.extend_from_slice(bytes);
                }
                at += n;
            }
            _ => break,
        }
    }
    (!data.is_empty()).then_some(data)
}
