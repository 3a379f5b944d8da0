//! JSON bodies checked against the schemas of `openapi.yaml` (read with `serde_yaml`, so the
//! spec file itself is the reference, not a copy of it).
//!
//! Validates the part of JSON Schema 2020-12 the spec uses: `$ref` (local), `type` (one or a
//! list, with `"null"`), `required`, `properties`, `additionalProperties: false`, `enum`,
//! `const`, `items`, `minItems`/`maxItems`, `minimum`/`maximum`, `oneOf`, `allOf`, and the OpenAPI
//! 3.0 `nullable`. `format` is an annotation (JSON Schema 2020-12 §7.2) and `pattern` needs a regex
//! engine the project does not depend on: neither is checked here (the schemathesis run,
//! `tests/schemathesis.rs`, checks both). A keyword
//! outside this list fails the check, so the validator cannot silently accept what it does not
//! understand.
#![allow(dead_code)]

use std::sync::OnceLock;

use serde_json::Value;

/// A spec file at the repository root (`openapi.yaml`, `openapi-public.yaml`), as JSON.
pub fn load(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file} is not YAML: {e}"))
}

/// `openapi.yaml`, as JSON.
pub fn openapi() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("openapi.yaml"))
}

/// `components.schemas.{name}` of the spec.
pub fn component(name: &str) -> &'static Value {
    let s = &openapi()["components"]["schemas"][name];
    assert!(s.is_object(), "openapi.yaml has no schema {name}");
    s
}

/// Panics, listing every violation, unless `value` is valid against `components.schemas.{name}`.
pub fn assert_valid(name: &str, value: &Value, what: &str) {
    let errors = violations(component(name), value);
    assert!(
        errors.is_empty(),
        "{what} violates the {name} schema of openapi.yaml:\n  {}\nvalue: {value}",
        errors.join("\n  ")
    );
}

/// Every way `value` violates `schema` (empty when valid).
pub fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, value, "$", &mut out);
    out
}

const KNOWN: &[&str] = &[
    "$ref",
    "type",
    "required",
    "properties",
    "additionalProperties",
    "enum",
    "const",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "oneOf",
    "allOf",
    "nullable",
    "format",
    "description",
    "title",
    "example",
    "pattern",
];

fn resolve(reference: &str) -> &'static Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local $ref are supported: {reference}"));
    openapi()
        .pointer(pointer)
        .unwrap_or_else(|| panic!("dangling $ref {reference}"))
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        other => panic!("unknown JSON Schema type {other}"),
    }
}

fn check(schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        // `true` accepts anything; `false` nothing.
        if schema == &Value::Bool(false) {
            out.push(format!("{at}: no value is allowed here"));
        }
        return;
    };
    for k in s.keys() {
        assert!(
            KNOWN.contains(&k.as_str()),
            "schema keyword {k} at {at} is not understood by tests/common/schema.rs"
        );
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        check(resolve(r), v, at, out);
    }
    if v.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(one) => type_matches(one, v),
            Value::Array(list) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|one| type_matches(one, v)),
            _ => panic!("bad type keyword at {at}"),
        };
        if !ok {
            out.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        out.push(format!(
            "{at}: {v} is not one of {}",
            Value::Array(e.clone())
        ));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        out.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            out.push(format!("{at}: {n} < minimum {min}"));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            out.push(format!("{at}: {n} > maximum {max}"));
        }
    }
    if let Some(obj) = v.as_object() {
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    out.push(format!("{at}: required member {r:?} missing"));
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, member) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(ps, member, &format!("{at}.{k}"), out),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    out.push(format!("{at}: member {k:?} is not allowed"));
                }
                None => {}
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(is) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(is, item, &format!("{at}[{i}]"), out);
            }
        }
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            out.push(format!("{at}: fewer than {min} items"));
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
            && (items.len() as u64) > max
        {
            out.push(format!("{at}: more than {max} items"));
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            check(sub, v, at, out);
        }
    }
    if let Some(one) = s.get("oneOf").and_then(Value::as_array) {
        let matching = one.iter().filter(|sub| violations_at(sub, v)).count();
        if matching != 1 {
            out.push(format!(
                "{at}: {v} matches {matching} of the oneOf alternatives, not exactly one"
            ));
        }
    }
}

fn violations_at(schema: &Value, v: &Value) -> bool {
    let mut out = Vec::new();
    check(schema, v, "$", &mut out);
    out.is_empty()
}
