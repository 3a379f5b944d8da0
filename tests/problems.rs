//! The JSON problem bodies clients see, against the contract: every golden error body
//! (`tests/golden/errors/*.json`) and the body of every kind of `ApiError` is valid against the
//! `Problem` schema of `openapi.yaml`, and golden error files are named one way —
//! `errors/<type>[-<case>].json`, kebab-case, starting with the problem's `type` — so a file
//! says which problem it holds.

mod common;

use common::schema;
use serde_json::Value;
use vigie::http::ApiError;

fn kebab(stem: &str) -> bool {
    !stem.is_empty()
        && stem.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[test]
fn golden_error_bodies_are_named_by_type_and_valid_problems() {
    let dir = common::golden::dir().join("errors");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/golden/errors") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 name")
            .to_owned();
        let stem = name
            .strip_suffix(".json")
            .unwrap_or_else(|| panic!("{name}: golden error bodies are .json files"));
        assert!(kebab(stem), "{name}: not kebab-case");
        let body: Value = serde_json::from_slice(&std::fs::read(&path).expect("readable"))
            .unwrap_or_else(|e| panic!("{name}: not JSON: {e}"));
        schema::assert_valid("Problem", &body, &name);
        let kind = body["type"].as_str().expect("type is a string");
        assert!(
            stem == kind || stem.starts_with(&format!("{kind}-")),
            "{name} holds a {kind:?} problem: name it {kind}.json or {kind}-<case>.json"
        );
        seen += 1;
    }
    assert!(
        seen >= 10,
        "only {seen} golden error bodies found in {}",
        dir.display()
    );
}

#[test]
fn every_kind_of_api_error_is_a_valid_problem() {
    let all = [
        ApiError::NotFound("no such resource".into()),
        ApiError::MethodNotAllowed,
        ApiError::TooLarge(4096),
        ApiError::UnsupportedMediaType("text/plain".into()),
        ApiError::BadRequest("not JSON".into()),
        ApiError::Unprocessable {
            field: "serial".into(),
            message: "not hexadecimal".into(),
        },
        ApiError::Conflict("already revoked".into()),
        ApiError::Unauthorized,
        ApiError::Forbidden("replica".into()),
        ApiError::Unavailable("CRL expired".into()),
        ApiError::UnknownCertificate("serial 1badc0ffee was never registered".into()),
        ApiError::StoreUnavailable("No space left on device".into()),
        ApiError::Internal("detail not sent".into()),
    ];
    for e in &all {
        let body: Value =
            serde_json::from_slice(&vigie::http::error::problem_body(e)).expect("JSON");
        schema::assert_valid("Problem", &body, e.kind());
        assert_eq!(body["type"], e.kind());
        let status = actix_web::ResponseError::status_code(e).as_u16();
        assert_eq!(body["status"], status, "{}", e.kind());
    }
}

/// The validator itself refuses what the schema refuses (a validator that accepts everything
/// would make the tests above pass for nothing).
#[test]
fn the_schema_check_refuses_a_broken_problem() {
    let problem = schema::component("Problem");
    let good =
        serde_json::json!({"type": "conflict", "title": "Conflict", "status": 409, "detail": "x"});
    assert!(schema::violations(problem, &good).is_empty());
    for bad in [
        serde_json::json!({"type": "conflict", "title": "Conflict", "status": 409}),
        serde_json::json!({"type": "no-such-type", "title": "T", "status": 409, "detail": "x"}),
        serde_json::json!({"type": "conflict", "title": "Conflict", "status": "409", "detail": "x"}),
        serde_json::json!({"type": "conflict", "title": "Conflict", "status": 409, "detail": "x", "field": 3}),
    ] {
        assert!(
            !schema::violations(problem, &bad).is_empty(),
            "accepted {bad}"
        );
    }
}

/// The public listener's spec repeats the Problem schema (each spec stands alone for its
/// clients): both say the same.
#[test]
fn both_specs_define_the_same_problem() {
    let public = schema::load("openapi-public.yaml");
    let a = &public["components"]["schemas"]["Problem"];
    let b = schema::component("Problem");
    assert_eq!(a["required"], b["required"]);
    let (pa, pb) = (
        a["properties"].as_object().expect("properties"),
        b["properties"].as_object().expect("properties"),
    );
    assert_eq!(pa.keys().collect::<Vec<_>>(), pb.keys().collect::<Vec<_>>());
    for (k, v) in pa {
        assert_eq!(v["type"], pb[k]["type"], "{k}");
        assert_eq!(v["enum"], pb[k]["enum"], "{k}");
    }
}
