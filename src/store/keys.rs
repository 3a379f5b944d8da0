//! Byte layout of the store's keys. Every key starts with the CA id, length-prefixed, so one CA's
//! entries are contiguous; serials are length-prefixed big-endian magnitudes, so that key order
//! is numeric order (what CRLs are sorted by).

use crate::model::{CaId, Serial};

/// `len ‖ id`.
pub fn ca_prefix(ca: &CaId) -> Vec<u8> {
    let id = ca.as_str().as_bytes();
    let mut k = Vec::with_capacity(1 + id.len() + 22);
    k.push(id.len() as u8);
    k.extend_from_slice(id);
    k
}

/// `certs` and `revoked` CF key: `ca ‖ len ‖ serial`.
pub fn cert(ca: &CaId, serial: &Serial) -> Vec<u8> {
    let mut k = ca_prefix(ca);
    push_serial(&mut k, serial);
    k
}

fn push_serial(k: &mut Vec<u8>, serial: &Serial) {
    let m = serial.magnitude();
    k.push(m.len() as u8);
    k.extend_from_slice(m);
}

/// The serial at the end of a `certs`/`revoked` key, `None` if the key is not one.
pub fn serial_of(key: &[u8]) -> Option<Serial> {
    let id_len = *key.first()? as usize;
    let rest = key.get(1 + id_len..)?;
    let (&len, mag) = rest.split_first()?;
    if mag.len() != len as usize {
        return None;
    }
    Serial::from_magnitude(mag).ok()
}

/// How many variants an answer can have: the CertID's hash algorithm (SHA-1, SHA-256, SHA-384,
/// SHA-512), + 4 when its parameters are absent rather than NULL.
pub const OCSP_VARIANTS: u8 = 8;

/// `ocsp` CF key: `ca ‖ len ‖ serial ‖ variant` (variant: which hash algorithm and parameter
/// encoding the CertID used, below [`OCSP_VARIANTS`]).
pub fn ocsp(ca: &CaId, serial: &Serial, variant: u8) -> Vec<u8> {
    let mut k = cert(ca, serial);
    k.push(variant);
    k
}

/// The serial and variant of an `ocsp` CF key.
pub fn parse_ocsp(key: &[u8]) -> Option<(Serial, u8)> {
    let (&variant, rest) = key.split_last()?;
    Some((serial_of(rest)?, variant))
}

/// `events` CF key: `ca ‖ seq (u64 BE)`.
pub fn event(ca: &CaId, seq: u64) -> Vec<u8> {
    let mut k = ca_prefix(ca);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `meta` CF key: `ca ‖ name`.
pub fn meta(ca: &CaId, name: &str) -> Vec<u8> {
    let mut k = ca_prefix(ca);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `meta` CF key of a store-wide value: `0 ‖ name` (no CA id is empty).
pub fn global_meta(name: &str) -> Vec<u8> {
    let mut k = vec![0u8];
    k.extend_from_slice(name.as_bytes());
    k
}

/// `crl` CF key of a CRL's DER: `ca ‖ kind ‖ number (20 bytes BE)`; kind 0 = full, 1 = delta.
pub fn crl(ca: &CaId, delta: bool, number: &[u8; 20]) -> Vec<u8> {
    let mut k = ca_prefix(ca);
    k.push(u8::from(delta));
    k.extend_from_slice(number);
    k
}

/// `crl` CF key of a CRL's record (what vigie needs to know about it besides its DER):
/// `ca ‖ kind ‖ number`, kind 2 = full, 3 = delta.
pub fn crl_record(ca: &CaId, delta: bool, number: &[u8; 20]) -> Vec<u8> {
    let mut k = ca_prefix(ca);
    k.push(2 + u8::from(delta));
    k.extend_from_slice(number);
    k
}

/// Prefix of every `crl` CF key of one kind (0 full DER, 1 delta DER, 2 full record, 3 delta
/// record) of one CA.
pub fn crl_kind_prefix(ca: &CaId, kind: u8) -> Vec<u8> {
    let mut k = ca_prefix(ca);
    k.push(kind);
    k
}

/// `audit` CF key: `at (u64 BE, seconds; times before 1970 as 0) ‖ id (u64 BE)`. Time first, so
/// that "since" is one seek; the id, unique in the store, orders records of the same second.
pub fn audit(at: crate::model::UnixTime, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&u64::try_from(at.0).unwrap_or(0).to_be_bytes());
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The time (seconds) and id of an `audit` key.
pub fn parse_audit(key: &[u8]) -> Option<(u64, u64)> {
    let at = u64::from_be_bytes(key.get(..8)?.try_into().ok()?);
    let id = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
    (key.len() == 16).then_some((at, id))
}

/// The smallest key strictly greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_keys_sort_numerically() {
        let ca = CaId::new("x").expect("valid");
        let mut serials: Vec<Serial> = ["01", "ff", "0100", "7f", "80", "ffff", "010000"]
            .iter()
            .map(|h| Serial::from_hex(h).expect("valid"))
            .collect();
        let mut keys: Vec<Vec<u8>> = serials.iter().map(|s| cert(&ca, s)).collect();
        keys.sort();
        serials.sort();
        let back: Vec<Serial> = keys
            .iter()
            .map(|k| serial_of(k).expect("a cert key"))
            .collect();
        assert_eq!(back, serials);
    }

    #[test]
    fn ocsp_keys_round_trip() {
        let ca = CaId::new("aci").expect("valid");
        let s = Serial::from_hex("1234").expect("valid");
        assert_eq!(parse_ocsp(&ocsp(&ca, &s, 5)), Some((s, 5)));
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), vec![1, 3]);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
    }
}
