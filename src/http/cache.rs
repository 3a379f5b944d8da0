//! HTTP caching of signed objects — OCSP GET answers (RFC 9919 §5) and CRLs — in one place:
//! freshness (`Cache-Control: max-age` never beyond nextUpdate, and capped), validators
//! (`ETag`, `Last-Modified` = thisUpdate), `Expires` = nextUpdate, and the answer to a
//! conditional request (RFC 9110 §13.1.2, §13.1.3: `If-None-Match` first, else
//! `If-Modified-Since`).

use actix_web::HttpRequest;
use actix_web::HttpResponseBuilder;
use actix_web::http::header::{self, HeaderValue};

use crate::model::UnixTime;

/// Header naming what an answer is about, for CDNs that purge by tag: `<ca>/<serial>` on OCSP
/// answers, `<ca>/crl` on CRLs.
pub const CACHE_TAG: &str = "Cache-Tag";

/// What a cacheable signed object tells caches.
#[derive(Clone, Copy, Debug)]
pub struct Validity<'a> {
    /// Strong validator, quoted.
    pub etag: &'a str,
    /// thisUpdate.
    pub this_update: UnixTime,
    /// nextUpdate.
    pub next_update: UnixTime,
    /// thisUpdate as an HTTP date.
    pub last_modified: &'a str,
    /// nextUpdate as an HTTP date.
    pub expires: &'a str,
}

/// `max-age` for an object valid until `next_update`: what is left of its validity, at most
/// `cap` seconds, never negative.
pub fn max_age(next_update: UnixTime, now: UnixTime, cap: i64) -> i64 {
    (next_update.0 - now.0).clamp(0, cap.max(0))
}

/// Whether the request's conditions say the client already holds this representation:
/// `If-None-Match` (any listed tag, weak comparison, or `*`) when present, otherwise
/// `If-Modified-Since` not before thisUpdate.
pub fn not_modified(req: &HttpRequest, v: &Validity<'_>) -> bool {
    match req.headers().get(header::IF_NONE_MATCH) {
        Some(inm) => inm
            .to_str()
            .map(|list| {
                list.split(',').any(|t| {
                    let t = t.trim();
                    t == "*" || t.trim_start_matches("W/") == v.etag
                })
            })
            .unwrap_or(false),
        None => req
            .headers()
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| httpdate::parse_http_date(h).ok())
            .is_some_and(|since| since >= v.this_update.to_system_time()),
    }
}

/// Adds `Cache-Control` (`max-age=…, public, no-transform, must-revalidate`), `ETag`,
/// `Last-Modified` and `Expires`.
pub fn add_headers(b: &mut HttpResponseBuilder, v: &Validity<'_>, now: UnixTime, cap: i64) {
    let cache_control = format!(
        "max-age={}, public, no-transform, must-revalidate",
        max_age(v.next_update, now, cap)
    );
    b.insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((
            header::ETAG,
            HeaderValue::from_str(v.etag).unwrap_or(HeaderValue::from_static("\"\"")),
        ))
        .insert_header((header::LAST_MODIFIED, v.last_modified))
        .insert_header((header::EXPIRES, v.expires));
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn v() -> Validity<'static> {
        Validity {
            etag: "\"7-abc\"",
            this_update: UnixTime(1_700_000_000),
            next_update: UnixTime(1_700_086_400),
            last_modified: "Tue, 14 Nov 2023 22:13:20 GMT",
            expires: "Wed, 15 Nov 2023 22:13:20 GMT",
        }
    }

    #[test]
    fn max_age_is_bounded_by_next_update_and_cap() {
        assert_eq!(max_age(UnixTime(100), UnixTime(40), 3600), 60);
        assert_eq!(max_age(UnixTime(100_000), UnixTime(40), 3600), 3600);
        assert_eq!(max_age(UnixTime(100), UnixTime(400), 3600), 0);
    }

    #[test]
    fn conditional_requests() {
        let r = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"x\", W/\"7-abc\""))
            .to_http_request();
        assert!(not_modified(&r, &v()));
        let r = TestRequest::default()
            .insert_header((header::IF_NONE_MATCH, "\"x\""))
            .insert_header((header::IF_MODIFIED_SINCE, "Wed, 15 Nov 2023 00:00:00 GMT"))
            .to_http_request();
        assert!(!not_modified(&r, &v()), "If-None-Match takes precedence");
        let r = TestRequest::default()
            .insert_header((header::IF_MODIFIED_SINCE, "Wed, 15 Nov 2023 00:00:00 GMT"))
            .to_http_request();
        assert!(not_modified(&r, &v()));
        let r = TestRequest::default()
            .insert_header((header::IF_MODIFIED_SINCE, "Mon, 13 Nov 2023 00:00:00 GMT"))
            .to_http_request();
        assert!(!not_modified(&r, &v()));
    }
}
