//! The audit trail of the ingest API, through the real server: every kind of write (issue,
//! revoke, hold, release, batch, replay, refusals) is recorded with who (the token's label),
//! from where, what and how it ended; `GET /v1/audit` filters and pages; the trail survives a
//! restart; failed authentications write nothing; `vigie audit` prints it.

mod common;

use common::api::{Api, issue, pem, random_serial};
use common::{Options, Server};
use serde_json::{Value, json};

const CA: &str = "aci-el-org";
const OTHER: &str = "aci-el-pp";
const PROD: &str = "token-of-the-production-ca-0123456789";
const BATCH: &str = "token-of-the-batch-registration-auth";

fn options() -> Options {
    let h = |t: &str| hex::encode(openssl::sha::sha256(t.as_bytes()));
    Options {
        admin_extra: format!(
            "token_sha256 = [\"{}\"]\ntokens = [{{label = \"ca-prod\", sha256 = \"{}\"}}]\n",
            h(BATCH),
            h(PROD)
        ),
        ..Options::default()
    }
}

fn entries(api: &Api, query: &str) -> Vec<Value> {
    let a = api.get(&format!("/v1/audit{query}"));
    assert_eq!(a.status, 200, "{}", a.text());
    a.json().as_array().expect("a JSON array").clone()
}

/// (action, ca, serial, reason, outcome) of each entry.
fn summary(entries: &[Value]) -> Vec<(String, String, String, String, String)> {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    entries
        .iter()
        .map(|e| {
            (
                s(&e["action"]),
                s(&e["ca"]),
                s(&e["serial"]),
                s(&e["reason"]),
                s(&e["outcome"]),
            )
        })
        .collect()
}

fn row(
    action: &str,
    ca: &str,
    serial: &str,
    reason: &str,
    outcome: &str,
) -> (String, String, String, String, String) {
    (
        action.into(),
        ca.into(),
        serial.into(),
        reason.into(),
        outcome.into(),
    )
}

#[test]
fn every_kind_of_write_is_audited_durably_with_who_and_from_where() {
    let mut s = Server::start_with(&options());
    let prod = Api::new(&s, Some(PROD));
    let batch = Api::new(&s, Some(BATCH));
    let (issued, kc, held, b1, b2) = (
        random_serial(),
        random_serial(),
        random_serial(),
        random_serial(),
        random_serial(),
    );
    let started = common::now();
    assert!(entries(&prod, "").is_empty(), "nothing yet");

    // Issue, revoke, hold, release.
    let cert = issue(CA, &issued, None);
    let r = prod.request(
        "POST",
        "/v1/certificates",
        Some("application/pem-certificate-chain"),
        Some(pem(&cert).as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let issue_seq = r.json()["results"][0]["event_seq"].clone();
    let r = prod.revoke(&json!({"ca": CA, "serial": kc, "reason": "keyCompromise"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = prod.revoke(&json!({"ca": CA, "serial": held, "reason": "certificateHold"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let r = prod.release(CA, &held);
    assert_eq!(r.status, 200, "{}", r.text());
    // A batch over two CAs, by the unlabelled token.
    let r = batch.revoke(&json!([
        {"ca": CA, "serial": b1, "reason": "superseded"},
        {"ca": OTHER, "serial": b2},
    ]));
    assert_eq!(r.status, 200, "{}", r.text());
    // A replay: nothing changes, but it is recorded.
    let r = prod.revoke(&json!({"ca": CA, "serial": kc, "reason": "keyCompromise"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["unchanged"], 1);
    // Refusals: a conflict, a body that does not parse, a release of an unknown CA.
    prod.revoke(&json!({"ca": CA, "serial": kc, "reason": "superseded"}))
        .problem(409);
    prod.request(
        "POST",
        "/v1/revocations",
        Some("application/json"),
        Some(b"{not json"),
    )
    .problem(400);
    prod.release("no-such-ca", "01").problem(404);
    // Failed authentication is not recorded (an unauthenticated client writes nothing).
    Api::new(&s, Some("wrong"))
        .revoke(&json!({"ca": CA, "serial": random_serial()}))
        .problem(401);

    let all = entries(&prod, "");
    assert_eq!(
        summary(&all),
        vec![
            row("issue", CA, &issued, "-", "applied"),
            row("revoke", CA, &kc, "keyCompromise", "applied"),
            row("hold", CA, &held, "certificateHold", "applied"),
            row("release", CA, &held, "-", "applied"),
            row("revoke", CA, &b1, "superseded", "applied"),
            row("revoke", OTHER, &b2, "-", "applied"),
            row("revoke", CA, &kc, "keyCompromise", "replayed"),
            row("revoke", CA, &kc, "superseded", "refused"),
            row("revoke", "-", "-", "-", "refused"),
            row("release", "no-such-ca", "01", "-", "refused"),
        ]
    );
    let actors: Vec<&str> = all
        .iter()
        .map(|e| e["actor"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actors,
        vec![
            "ca-prod",
            "ca-prod",
            "ca-prod",
            "ca-prod",
            "token_sha256[0]",
            "token_sha256[0]",
            "ca-prod",
            "ca-prod",
            "ca-prod",
            "ca-prod"
        ]
    );
    for e in &all {
        assert!(
            e["address"]
                .as_str()
                .is_some_and(|a| a.starts_with("127.0.0.1:")),
            "{e}"
        );
        let at =
            vigie::model::UnixTime::parse_rfc3339(e["at"].as_str().expect("at")).expect("RFC 3339");
        assert!(at >= started.minus(1) && at <= common::now(), "{e}");
    }
    assert_eq!(all[0]["event_seq"], issue_seq);
    assert_eq!(all[4]["request_items"], 2);
    assert_eq!(all[6]["event_seq"], Value::Null);
    assert_eq!(all[7]["problem"]["kind"], "conflict");
    assert_eq!(all[7]["problem"]["status"], 409);
    assert_eq!(all[8]["problem"]["kind"], "bad-request");
    assert_eq!(all[9]["problem"]["status"], 404);

    // Filters and pages.
    assert_eq!(
        summary(&entries(&prod, &format!("?ca={OTHER}"))),
        vec![row("revoke", OTHER, &b2, "-", "applied")]
    );
    let later = common::now().plus(3600).to_rfc3339();
    assert!(entries(&prod, &format!("?since={}", later.replace('+', "%2B"))).is_empty());
    prod.get("/v1/audit?since=yesterday").problem(422);
    prod.get("/v1/audit?ca=nope").problem(422);
    let agent = ureq::AgentBuilder::new().build();
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!("{}/v1/audit?limit=3&after={a}", s.admin),
            None => format!("{}/v1/audit?limit=3", s.admin),
        };
        let resp = agent
            .get(&url)
            .set("Authorization", &format!("Bearer {PROD}"))
            .call()
            .expect("200");
        let next = resp.header("Vigie-Audit-Next").map(str::to_owned);
        let page: Vec<Value> = resp.into_json().expect("JSON");
        assert!(page.len() <= 3);
        paged.extend(page);
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(paged, all, "pages of 3 give the same entries, once each");

    // Durable: the same trail after a restart.
    s.restart();
    let prod = Api::new(&s, Some(PROD));
    assert_eq!(entries(&prod, ""), all);

    // `vigie audit` prints it.
    let out = common::vigie()
        .args(["audit", "--url", &s.admin, "--ca", CA])
        .env("VIGIE_TOKEN", PROD)
        .env("VIGIE_LOG", "warn")
        .output()
        .expect("vigie runs");
    assert!(out.status.success(), "{}", common::text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(
        lines[1].contains("ca-prod\t127.0.0.1:")
            && lines[1].contains(&format!("revoke\t{CA}\t{kc}\tkeyCompromise\tapplied")),
        "{text}"
    );
    assert!(lines[6].contains("refused\t409 conflict:"), "{text}");
    s.stop();
}
