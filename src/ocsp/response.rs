//! Building OCSP responses (RFC 6960 §4.2): the ResponseData to sign, then the BasicOCSPResponse
//! and OCSPResponse around its signature. Signing itself is the caller's (off the HTTP workers).

use der::Encode;
use der::asn1::{BitStringRef, GeneralizedTime, OctetStringRef};
use x509_cert::ext::pkix::CrlReason;
use x509_ocsp::{CertStatus, OcspGeneralizedTime, OcspResponseStatus, RevokedInfo};

use super::Error;
use super::der_types::{
    BasicOcspResponseDer, CertIdDer, ExtensionDer, OcspResponseDer, ResponseBytesDer,
    ResponseDataDer, SingleResponseDer,
};
use crate::model::{RevocationReason, UnixTime};
use crate::pki::OcspSigner;

/// The status given for one CertID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SingleStatus {
    /// good.
    Good,
    /// revoked.
    Revoked {
        /// revocationTime.
        at: UnixTime,
        /// revocationReason; omitted when `None` or unspecified.
        reason: Option<RevocationReason>,
        /// InvalidityDate singleExtension (RFC 5280 §5.3.2, RFC 6960 §4.4 allows CRL entry
        /// extensions as singleExtensions).
        invalidity_date: Option<UnixTime>,
    },
    /// unknown.
    Unknown,
}

impl SingleStatus {
    /// `good`, `revoked` or `unknown`, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            SingleStatus::Good => "good",
            SingleStatus::Revoked { .. } => "revoked",
            SingleStatus::Unknown => "unknown",
        }
    }
}

/// The times of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Times {
    /// producedAt: when it is signed.
    pub produced_at: UnixTime,
    /// thisUpdate: when the status is known to be correct.
    pub this_update: UnixTime,
    /// nextUpdate: after this, newer information is available; never served past it.
    pub next_update: UnixTime,
}

impl Times {
    /// Checks RFC 6960 §4.2.2.1's order: thisUpdate ≤ producedAt is not required, but
    /// nextUpdate must follow thisUpdate.
    pub fn new(
        produced_at: UnixTime,
        this_update: UnixTime,
        next_update: UnixTime,
    ) -> Result<Times, Error> {
        if next_update <= this_update {
            return Err(Error::Internal(format!(
                "nextUpdate {next_update} is not after thisUpdate {this_update}"
            )));
        }
        Ok(Times {
            produced_at,
            this_update,
            next_update,
        })
    }
}

/// id-pkix-ocsp-extended-revoke (RFC 6960 §4.4.8).
const EXTENDED_REVOKE_OID: const_oid::ObjectIdentifier =
    const_oid::db::rfc6960::ID_PKIX_OCSP_EXTENDED_REVOKE;
/// DER NULL, the extended-revoke extension's value.
const DER_NULL: &[u8] = &[0x05, 0x00];
/// id-pkix-ocsp-basic.
const BASIC_OID: const_oid::ObjectIdentifier = const_oid::db::rfc6960::ID_PKIX_OCSP_BASIC;

fn gtime(t: UnixTime) -> Result<GeneralizedTime, Error> {
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(t.0.max(0) as u64))
        .map_err(|e| Error::Internal(format!("time {t} not encodable: {e}")))
}

fn crl_reason(r: RevocationReason) -> Option<CrlReason> {
    Some(match r {
        // RFC 5280 §5.3.1: absent rather than unspecified.
        RevocationReason::Unspecified => return None,
        RevocationReason::KeyCompromise => CrlReason::KeyCompromise,
        RevocationReason::CaCompromise => CrlReason::CaCompromise,
        RevocationReason::AffiliationChanged => CrlReason::AffiliationChanged,
        RevocationReason::Superseded => CrlReason::Superseded,
        RevocationReason::CessationOfOperation => CrlReason::CessationOfOperation,
        RevocationReason::CertificateHold => CrlReason::CertificateHold,
        RevocationReason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise => CrlReason::AaCompromise,
    })
}

/// Encodes the ResponseData to be signed (RFC 6960 §4.2.1).
///
/// `nonce` is the request's nonce extnValue, echoed as is (RFC 9654 §2.1). `extended_revoke`
/// adds the extension that must accompany "revoked" for a serial never issued (§4.4.8).
pub fn tbs_response_data(
    signer: &OcspSigner,
    answers: &[(CertIdDer<'_>, SingleStatus)],
    times: Times,
    nonce: Option<&[u8]>,
    extended_revoke: bool,
) -> Result<Vec<u8>, Error> {
    let enc = |e: der::Error| Error::Internal(format!("encoding ResponseData: {e}"));
    // Invalidity dates are encoded first: the extensions below borrow them.
    let invalidity: Vec<Option<Vec<u8>>> = answers
        .iter()
        .map(|(_, s)| match s {
            SingleStatus::Revoked {
                invalidity_date: Some(d),
                ..
            } => gtime(*d).and_then(|g| g.to_der().map_err(enc)).map(Some),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    let mut responses = Vec::with_capacity(answers.len());
    for ((cert_id, status), inv) in answers.iter().zip(&invalidity) {
        let cert_status = match status {
            SingleStatus::Good => CertStatus::good(),
            SingleStatus::Unknown => CertStatus::unknown(),
            SingleStatus::Revoked { at, reason, .. } => CertStatus::revoked(RevokedInfo {
                revocation_time: OcspGeneralizedTime(gtime(*at)?),
                revocation_reason: reason.and_then(crl_reason),
            }),
        };
        let single_extensions = match inv {
            Some(bytes) => Some(vec![ExtensionDer {
                extn_id: const_oid::db::rfc5280::ID_CE_INVALIDITY_DATE,
                critical: None,
                extn_value: OctetStringRef::new(bytes).map_err(enc)?,
            }]),
            None => None,
        };
        responses.push(SingleResponseDer {
            cert_id: cert_id.clone(),
            cert_status,
            this_update: gtime(times.this_update)?,
            next_update: Some(gtime(times.next_update)?),
            single_extensions,
        });
    }
    let mut extensions = Vec::new();
    if let Some(n) = nonce {
        extensions.push(ExtensionDer {
            extn_id: super::request::NONCE_OID,
            critical: None,
            extn_value: OctetStringRef::new(n).map_err(enc)?,
        });
    }
    if extended_revoke {
        extensions.push(ExtensionDer {
            extn_id: EXTENDED_REVOKE_OID,
            critical: None,
            extn_value: OctetStringRef::new(DER_NULL).map_err(enc)?,
        });
    }
    let data = ResponseDataDer {
        responder_key_hash: OctetStringRef::new(&signer.key_hash).map_err(enc)?,
        produced_at: gtime(times.produced_at)?,
        responses,
        response_extensions: if extensions.is_empty() {
            None
        } else {
            Some(extensions)
        },
    };
    data.to_der().map_err(enc)
}

/// Wraps signed ResponseData into a complete, successful OCSPResponse, with the delegated
/// signer's certificate (RFC 6960 §4.2.2.2).
pub fn assemble(signer: &OcspSigner, tbs: &[u8], signature: &[u8]) -> Result<Vec<u8>, Error> {
    let enc = |e: der::Error| Error::Internal(format!("encoding BasicOCSPResponse: {e}"));
    let basic = BasicOcspResponseDer {
        tbs_response_data: der::Decode::from_der(tbs).map_err(enc)?,
        signature_algorithm: der::Decode::from_der(signer.signer.algorithm_der()).map_err(enc)?,
        signature: BitStringRef::from_bytes(signature).map_err(enc)?,
        certs: Some(vec![der::Decode::from_der(&signer.cert_der).map_err(enc)?]),
    };
    let basic_der = basic.to_der().map_err(enc)?;
    OcspResponseDer {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytesDer {
            response_type: BASIC_OID,
            response: OctetStringRef::new(&basic_der).map_err(enc)?,
        }),
    }
    .to_der()
    .map_err(enc)
}

/// The OCSPResponse for an error status: `30 03 0a 01 <status>` (RFC 6960 §4.2.1).
pub fn error_response(status: OcspResponseStatus) -> &'static [u8] {
    match status {
        OcspResponseStatus::MalformedRequest => &[0x30, 0x03, 0x0a, 0x01, 0x01],
        OcspResponseStatus::InternalError => &[0x30, 0x03, 0x0a, 0x01, 0x02],
        OcspResponseStatus::TryLater => &[0x30, 0x03, 0x0a, 0x01, 0x03],
        OcspResponseStatus::SigRequired => &[0x30, 0x03, 0x0a, 0x01, 0x05],
        OcspResponseStatus::Unauthorized => &[0x30, 0x03, 0x0a, 0x01, 0x06],
        // A successful status always comes with response bytes; this arm is never taken for it.
        OcspResponseStatus::Successful => &[0x30, 0x03, 0x0a, 0x01, 0x02],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_are_the_der_the_crate_encodes() {
        for status in [
            OcspResponseStatus::MalformedRequest,
            OcspResponseStatus::InternalError,
            OcspResponseStatus::TryLater,
            OcspResponseStatus::Unauthorized,
        ] {
            let r = OcspResponseDer {
                response_status: status,
                response_bytes: None,
            };
            assert_eq!(r.to_der().expect("encodes"), error_response(status));
        }
    }

    #[test]
    fn times_must_be_ordered() {
        assert!(Times::new(UnixTime(10), UnixTime(10), UnixTime(10)).is_err());
        assert!(Times::new(UnixTime(10), UnixTime(5), UnixTime(100)).is_ok());
    }
}
