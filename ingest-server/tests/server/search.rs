//! `/logs/recent` search (issue 27): `meta.KEY=VALUE`, `release` and `environment`, and
//! cursor paging through `next`, on the file store and PostgreSQL with the same answers;
//! malformed filters and cursors are 400s that say what was wrong.

use serde_json::{Value, json};

use crate::common::{TestServer, server_with};
use crate::pg::fresh_db;

async fn server_on(postgres: bool) -> TestServer {
    let url = if postgres {
        Some(fresh_db().await)
    } else {
        None
    };
    server_with(|c| c.database_url = url).await
}

/// Percent-encodes a query value (everything but unreserved ASCII).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn rec(n: i64, message: &str, meta: Value) -> Value {
    let ts = faultline_schema::Timestamp::from_unix_millis(
        faultline_schema::Timestamp::now().unix_millis() - 100_000 + n,
    );
    json!({"ts": ts.to_string(), "service": "api", "level": "INFO", "event": "e",
           "message": message, "meta": meta})
}

async fn found(s: &TestServer, query: &str) -> Vec<String> {
    let mut m: Vec<String> = s
        .recent(&format!("{query}&limit=1000"))
        .await
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect();
    m.sort();
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_release_environment_and_paging_on_both_stores() {
    for postgres in [false, true] {
        let s = server_on(postgres).await;
        let mut batch = vec![
            rec(
                1,
                "num",
                json!({"status": 500, "release": "2.0.1", "environment": "prod"}),
            ),
            rec(
                2,
                "str",
                json!({"status": "500", "release": "2.0.1", "environment": "staging"}),
            ),
            rec(
                3,
                "nested",
                json!({"http": {"route": "/ä?x=1&y", "ok": false}}),
            ),
            rec(4, "flat", json!({"http.route": "/ä?x=1&y"})),
            rec(5, "inject", json!({"q": "' OR 1=1 --"})),
        ];
        for i in 0..95 {
            batch.push(rec(10 + i, &format!("p{i:02}"), json!({"page": true})));
        }
        let (status, body) = s.ingest(Value::Array(batch).to_string()).await;
        assert_eq!(status, 202, "{body}");

        let store = if postgres { "PostgreSQL" } else { "file store" };
        assert_eq!(
            found(&s, "meta.status=500").await,
            ["num", "str"],
            "{store}"
        );
        assert_eq!(found(&s, "release=2.0.1&environment=prod").await, ["num"]);
        assert_eq!(found(&s, "meta.release=2.0.1").await, ["num", "str"]);
        let route = format!("meta.http.route={}", enc("/ä?x=1&y"));
        assert_eq!(found(&s, &route).await, ["flat", "nested"], "{store}");
        assert_eq!(
            found(&s, &format!("{route}&meta.http.ok=false")).await,
            ["nested"]
        );
        assert_eq!(
            found(&s, &format!("meta.q={}", enc("' OR 1=1 --"))).await,
            ["inject"]
        );
        assert!(
            found(&s, &format!("meta.q={}", enc("' OR 1=1")))
                .await
                .is_empty()
        );

        // Pages of 10 through the 95, newest first, while more arrive.
        let mut seen = Vec::new();
        let mut cursor = String::new();
        for page in 0.. {
            let later = rec(200_000 + page, "later", json!({"page": true}));
            assert_eq!(s.ingest(json!([later]).to_string()).await.0, 202);
            let (status, body) = s
                .get(&format!(
                    "/logs/recent?meta.page=true&limit=10&cursor={cursor}"
                ))
                .await;
            assert_eq!(status, 200, "{body}");
            for r in body["records"].as_array().unwrap() {
                let m = r["message"].as_str().unwrap();
                if m != "later" {
                    seen.push(m.to_owned());
                }
            }
            match body["next"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
            assert!(page < 30, "paging does not end");
        }
        let expected: Vec<String> = (0..95).rev().map(|i| format!("p{i:02}")).collect();
        assert_eq!(seen, expected, "{store}: each once, newest first");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_filters_and_cursors_are_400s_that_say_why() {
    let s = server_with(|_| {}).await;
    let many: String = (0..11).map(|i| format!("meta.k{i}=v&")).collect();
    let cases: [(String, &str); 7] = [
        ("meta.=x".into(), "without a key"),
        ("meta.a..b=1".into(), "empty"),
        ("meta.a.b.c.d.e.f.g.h.i=1".into(), "at most 8"),
        ("meta=x".into(), "meta.KEY=VALUE"),
        ("cursor=12_nope".into(), "not a cursor"),
        ("service=a&service=b".into(), "given twice"),
        (many, "at most 10 meta filters"),
    ];
    for (query, says) in cases {
        let (status, body) = s.get(&format!("/logs/recent?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.to_string().contains(says), "{query}: {body}");
    }
}
