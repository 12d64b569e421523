//! Reading a TLS ClientHello as a censor's DPI does: its SNI and whether
//! it carries an extension (such as encrypted_client_hello, 0xfe0d). Used
//! by the in-process filters and, through `#[path]`, by the interop
//! suite's NFQUEUE filter (`tests/interop/nfq-censor`): one parser for both.
//! No dependencies beyond std.

/// The encrypted_client_hello extension's type (draft-ietf-tls-esni).
pub const ECH_EXTENSION: u16 = 0xfe0d;

/// The extensions of a ClientHello handshake message (`hs` starts at the
/// handshake header, type 1), as (type, body) pairs; `None` when it is not
/// a whole ClientHello.
pub fn extensions(hs: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    if *hs.first()? != 1 {
        return None;
    }
    let len =
        usize::from(*hs.get(1)?) << 16 | usize::from(*hs.get(2)?) << 8 | usize::from(*hs.get(3)?);
    let body = hs.get(4..4 + len)?;
    // version (2), random (32), session id, cipher suites, compression.
    let mut at = 34;
    at += 1 + usize::from(*body.get(at)?);
    at += 2 + usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    at += 1 + usize::from(*body.get(at)?);
    let ext_len = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
    let mut exts = body.get(at + 2..at + 2 + ext_len)?;
    let mut out = Vec::new();
    while exts.len() >= 4 {
        let kind = u16::from_be_bytes([exts[0], exts[1]]);
        let n = usize::from(u16::from_be_bytes([exts[2], exts[3]]));
        out.push((kind, exts.get(4..4 + n)?));
        exts = &exts[4 + n..];
    }
    Some(out)
}

/// The host name of a ClientHello's server_name extension.
pub fn sni(hs: &[u8]) -> Option<String> {
    let (_, ext) = extensions(hs)?.into_iter().find(|(k, _)| *k == 0)?;
    // server_name_list length (2), name type (1: host_name = 0), length (2).
    if *ext.get(2)? != 0 {
        return None;
    }
    let n = usize::from(u16::from_be_bytes([*ext.get(3)?, *ext.get(4)?]));
    String::from_utf8(ext.get(5..5 + n)?.to_vec()).ok()
}

/// Whether a ClientHello carries an extension of type `kind`.
pub fn has_extension(hs: &[u8], kind: u16) -> bool {
    extensions(hs).is_some_and(|e| e.iter().any(|(k, _)| *k == kind))
}

/// The ClientHello in the first TLS record of a TCP stream's first bytes
/// (a handshake record, content type 22), if the record is whole.
pub fn from_record(bytes: &[u8]) -> Option<&[u8]> {
    if *bytes.first()? != 22 {
        return None;
    }
    let n = usize::from(u16::from_be_bytes([*bytes.get(3)?, *bytes.get(4)?]));
    bytes.get(5..5 + n)
}
