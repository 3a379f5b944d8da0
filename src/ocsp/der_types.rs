//! OCSP ASN.1 structures (RFC 6960 §4.1.1 requests, §4.2.1 responses) as borrowed `der` types.
//!
//! They borrow from the request bytes, so parsing a request allocates only the list of CertIDs,
//! and a response echoes each CertID by re-encoding exactly what was parsed: `der` accepts only
//! canonical DER, so the re-encoding is byte-for-byte the client's (hash algorithm with or without
//! NULL parameters, both hashes, serial) — RFC 6960 §4.2.1 and the field observation that some
//! clients reject a CertID that differs from theirs.
//!
//! The owned types of the `x509-ocsp` crate are used where nothing needs to be borrowed
//! (`CertStatus`, `OcspResponseStatus`).

use der::Sequence;
use der::asn1::{AnyRef, BitStringRef, GeneralizedTime, IntRef, ObjectIdentifier, OctetStringRef};
use spki::AlgorithmIdentifierRef;
use x509_ocsp::{CertStatus, OcspResponseStatus};

/// `OCSPRequest` (RFC 6960 §4.1.1). The optional signature is accepted and not checked.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspRequestDer<'a> {
    /// `tbsRequest`.
    pub tbs_request: TbsRequestDer<'a>,
    /// `optionalSignature [0] EXPLICIT Signature OPTIONAL`.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub optional_signature: Option<AnyRef<'a>>,
}

/// `TBSRequest` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TbsRequestDer<'a> {
    /// `version [0] EXPLICIT Version DEFAULT v1`; read as optional so an explicit v1 is tolerated.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub version: Option<u8>,
    /// `requestorName [1] EXPLICIT GeneralName OPTIONAL`.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub requestor_name: Option<AnyRef<'a>>,
    /// `requestList SEQUENCE OF Request`.
    pub request_list: Vec<RequestDer<'a>>,
    /// `requestExtensions [2] EXPLICIT Extensions OPTIONAL`.
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    pub request_extensions: Option<Vec<ExtensionDer<'a>>>,
}

/// `Request` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RequestDer<'a> {
    /// `reqCert`.
    pub req_cert: CertIdDer<'a>,
    /// `singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL` (none are acted on).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub single_request_extensions: Option<AnyRef<'a>>,
}

/// `CertID` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertIdDer<'a> {
    /// `hashAlgorithm`.
    pub hash_algorithm: AlgorithmIdentifierRef<'a>,
    /// `issuerNameHash`.
    pub issuer_name_hash: OctetStringRef<'a>,
    /// `issuerKeyHash`.
    pub issuer_key_hash: OctetStringRef<'a>,
    /// `serialNumber`.
    pub serial_number: IntRef<'a>,
}

/// `Extension` (RFC 5280 §4.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ExtensionDer<'a> {
    /// `extnID`.
    pub extn_id: ObjectIdentifier,
    /// `critical BOOLEAN DEFAULT FALSE`; read as optional so an explicit FALSE is tolerated.
    pub critical: Option<bool>,
    /// `extnValue`.
    pub extn_value: OctetStringRef<'a>,
}

/// `ResponseData` (RFC 6960 §4.2.1), version v1 (omitted, DEFAULT), ResponderID byKey.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseDataDer<'a> {
    /// `responderID`, the `byKey [2] KeyHash` alternative.
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    pub responder_key_hash: OctetStringRef<'a>,
    /// `producedAt`.
    pub produced_at: GeneralizedTime,
    /// `responses`.
    pub responses: Vec<SingleResponseDer<'a>>,
    /// `responseExtensions [1] EXPLICIT Extensions OPTIONAL`.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub response_extensions: Option<Vec<ExtensionDer<'a>>>,
}

/// `SingleResponse` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SingleResponseDer<'a> {
    /// `certID`, echoed.
    pub cert_id: CertIdDer<'a>,
    /// `certStatus`.
    pub cert_status: CertStatus,
    /// `thisUpdate`.
    pub this_update: GeneralizedTime,
    /// `nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL`.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub next_update: Option<GeneralizedTime>,
    /// `singleExtensions [1] EXPLICIT Extensions OPTIONAL`.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub single_extensions: Option<Vec<ExtensionDer<'a>>>,
}

/// `BasicOCSPResponse` (RFC 6960 §4.2.1), assembled from already-encoded parts.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct BasicOcspResponseDer<'a> {
    /// `tbsResponseData`, the exact bytes that were signed.
    pub tbs_response_data: AnyRef<'a>,
    /// `signatureAlgorithm`.
    pub signature_algorithm: AnyRef<'a>,
    /// `signature`.
    pub signature: BitStringRef<'a>,
    /// `certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL`: the delegated signer's certificate.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<AnyRef<'a>>>,
}

/// `OCSPResponse` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspResponseDer<'a> {
    /// `responseStatus`.
    pub response_status: OcspResponseStatus,
    /// `responseBytes [0] EXPLICIT ResponseBytes OPTIONAL`.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub response_bytes: Option<ResponseBytesDer<'a>>,
}

/// `ResponseBytes` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseBytesDer<'a> {
    /// `responseType`: id-pkix-ocsp-basic.
    pub response_type: ObjectIdentifier,
    /// `response`: the DER of a BasicOCSPResponse.
    pub response: OctetStringRef<'a>,
}
