//! CRL numbers (RFC 5280 §5.2.3): one strictly increasing sequence per CA, shared by full and
//! delta CRLs (§5.2.4), never reused — not after a restart, not after a crash.
//!
//! A [`CrlNumber`] is held as a `u64` (the sequence starts at 1 and grows by one per CRL: a
//! `u64` outlasts any CA) and encoded as a DER INTEGER of at most 20 octets, the limit §5.2.3
//! sets for conforming CRL issuers. Numbers read back from elsewhere (the store, a CRL's DER) go
//! through constructors that refuse what §5.2.3 forbids. Where the next number is kept and how it
//! is persisted with the CRL is [`super::Publisher`]'s business.

use std::fmt;

use super::Error;

/// A CRL number: `CRLNumber ::= INTEGER (0..MAX)`, at most 20 octets (RFC 5280 §5.2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrlNumber(u64);

impl CrlNumber {
    /// The first number vigie gives a CA's CRLs.
    pub const FIRST: CrlNumber = CrlNumber(1);

    /// Any value of the sequence (a `u64` always fits the 20-octet limit).
    pub fn new(value: u64) -> CrlNumber {
        CrlNumber(value)
    }

    /// The value.
    pub fn value(self) -> u64 {
        self.0
    }

    /// The number after this one: strictly greater, or an error when the sequence is exhausted.
    pub fn next(self) -> Result<CrlNumber, Error> {
        self.0
            .checked_add(1)
            .map(CrlNumber)
            .ok_or(Error::NumbersExhausted)
    }

    /// The content octets of the DER INTEGER: minimal two's complement, non-negative.
    pub fn der_content(self) -> Vec<u8> {
        let bytes = self.0.to_be_bytes();
        let first = bytes
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(bytes.len() - 1);
        let mut v = Vec::with_capacity(9);
        if bytes[first] & 0x80 != 0 {
            v.push(0);
        }
        v.extend_from_slice(&bytes[first..]);
        v
    }

    /// From the content octets of a DER INTEGER. Refuses negative values, more than 20 octets
    /// (RFC 5280 §5.2.3), and values beyond this implementation's `u64` sequence.
    pub fn from_der_content(content: &[u8]) -> Result<CrlNumber, Error> {
        let bad = |why: &'static str| Error::BadNumber(hex::encode(content), why);
        match content.first() {
            None => return Err(bad("empty INTEGER")),
            Some(b) if b & 0x80 != 0 => return Err(bad("negative")),
            _ => {}
        }
        if content.len() > 20 {
            return Err(bad("longer than 20 octets (RFC 5280 §5.2.3)"));
        }
        if content.len() > 1 && content[0] == 0 && content[1] & 0x80 == 0 {
            return Err(bad("not minimally encoded"));
        }
        let magnitude: &[u8] = if content[0] == 0 {
            &content[1..]
        } else {
            content
        };
        if magnitude.len() > 8 {
            return Err(bad("beyond the 64-bit sequence vigie keeps"));
        }
        let mut be = [0u8; 8];
        be[8 - magnitude.len()..].copy_from_slice(magnitude);
        Ok(CrlNumber(u64::from_be_bytes(be)))
    }

    /// The 20-octet big-endian form used in store keys, so that key order is number order.
    pub fn key_bytes(self) -> [u8; 20] {
        let mut k = [0u8; 20];
        k[12..].copy_from_slice(&self.0.to_be_bytes());
        k
    }

    /// From the 20-octet key form.
    pub fn from_key_bytes(k: &[u8]) -> Result<CrlNumber, Error> {
        if k.len() != 20 || k[..12].iter().any(|&b| b != 0) {
            return Err(Error::BadNumber(
                hex::encode(k),
                "not a 20-octet key of a 64-bit number",
            ));
        }
        let mut be = [0u8; 8];
        be.copy_from_slice(&k[12..]);
        Ok(CrlNumber(u64::from_be_bytes(be)))
    }
}

impl fmt::Display for CrlNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The numbers of a delta CRL: its own and its base's (the DeltaCRLIndicator, RFC 5280 §5.2.4).
/// The base is always an earlier CRL of the same sequence, so it is strictly lower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaNumbers {
    number: CrlNumber,
    base: CrlNumber,
}

impl DeltaNumbers {
    /// Refuses a base that is not strictly below the delta's own number.
    pub fn new(number: CrlNumber, base: CrlNumber) -> Result<DeltaNumbers, Error> {
        if base >= number {
            return Err(Error::BadDeltaBase { number, base });
        }
        Ok(DeltaNumbers { number, base })
    }

    /// The delta's own CRLNumber.
    pub fn number(self) -> CrlNumber {
        self.number
    }

    /// The base CRL's number (BaseCRLNumber).
    pub fn base(self) -> CrlNumber {
        self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn der_content_is_minimal_and_matches_der_crate() {
        for v in [0u64, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff_ffff, u64::MAX] {
            let n = CrlNumber::new(v);
            let ours = n.der_content();
            let uint = der::asn1::Uint::new(&v.to_be_bytes()).expect("uint");
            let theirs = uint.to_der().expect("encodes");
            // theirs = tag, length, content
            assert_eq!(&theirs[2..], &ours[..], "{v}");
            assert_eq!(CrlNumber::from_der_content(&ours).expect("round trip"), n);
            let back = der::asn1::Uint::from_der(&theirs).expect("decodes");
            assert_eq!(back, uint);
        }
    }

    #[test]
    fn constructors_refuse_invalid_values() {
        assert!(CrlNumber::from_der_content(&[]).is_err());
        assert!(CrlNumber::from_der_content(&[0x80]).is_err(), "negative");
        assert!(CrlNumber::from_der_content(&[0, 1]).is_err(), "not minimal");
        assert!(CrlNumber::from_der_content(&[1; 21]).is_err(), "21 octets");
        assert!(
            CrlNumber::from_der_content(&[1; 9]).is_err(),
            "beyond u64 is refused"
        );
        assert!(CrlNumber::new(u64::MAX).next().is_err());
        let five = CrlNumber::new(5);
        assert!(DeltaNumbers::new(five, five).is_err());
        assert!(DeltaNumbers::new(five, CrlNumber::new(6)).is_err());
        let d = DeltaNumbers::new(five, CrlNumber::new(4)).expect("valid");
        assert_eq!((d.number(), d.base()), (five, CrlNumber::new(4)));
    }

    #[test]
    fn key_bytes_sort_like_numbers() {
        let a = CrlNumber::new(255).key_bytes();
        let b = CrlNumber::new(256).key_bytes();
        assert!(a < b);
        assert_eq!(
            CrlNumber::from_key_bytes(&b).expect("valid"),
            CrlNumber::new(256)
        );
        assert!(CrlNumber::from_key_bytes(&[1; 20]).is_err());
    }
}
