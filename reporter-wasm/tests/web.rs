//! The module's exports in a real browser: `wasm-pack test --headless --chrome`.

#![cfg(target_arch = "wasm32")]
#![allow(missing_docs)]

use faultline_reporter::{
    MAX_FRAMES, admit, anonymize, fit_event, fit_message, fold_of, frames, gate_init, meta_over,
    record, scope_set, scrub, scrub_names,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// `frames` output read back with the browser's own JSON parser, as the package does.
fn parsed(json: &str) -> js_sys::Array {
    let value = js_sys::JSON::parse(json).unwrap_or_else(|e| panic!("{e:?}: {json}"));
    js_sys::Array::from(&value)
}

fn field(frame: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(frame, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen_test]
fn a_real_chrome_stack_becomes_frames() {
    // A stack this very browser produced, not a copied one.
    let error = js_sys::Error::new("boom");
    let stack = js_sys::Reflect::get(&error, &JsValue::from_str("stack"))
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    assert!(stack.contains("boom"), "{stack}");
    let frames = parsed(&frames(&stack, "", 0, 0));
    assert!(frames.length() >= 1, "{stack}");
    let first = frames.get(0);
    assert!(field(&first, "file").is_string(), "{stack}");
    assert!(
        field(&first, "line").as_f64().unwrap_or(0.0) >= 1.0,
        "{stack}"
    );
}

#[wasm_bindgen_test]
fn parsed_frames_are_json_the_browser_reads() {
    let stack =
        "TypeError: x\n    at render (https://a.io/app.js:10:5)\n    at https://a.io/\"q\".js:1:2";
    let got = parsed(&frames(stack, "", 0, 0));
    assert_eq!(got.length(), 2);
    assert_eq!(field(&got.get(0), "function"), "render");
    assert_eq!(field(&got.get(0), "column"), 5);
    assert!(field(&got.get(1), "function").is_undefined());
    assert_eq!(field(&got.get(1), "file"), "https://a.io/\"q\".js");
    let long: String = (0..80)
        .map(|i| format!("    at f{i} (https://a.io/a.js:{i}:1)\n"))
        .collect();
    assert_eq!(
        parsed(&frames(&long, "", 0, 0)).length() as usize,
        MAX_FRAMES
    );
    assert_eq!(frames("", "", 0, 0), "");
    assert_eq!(parsed(&frames("", "https://a.io/x.js", 3, 4)).length(), 1);
}

#[wasm_bindgen_test]
fn anonymize_matches_the_schema() {
    let id = anonymize("salt", "user-42");
    assert_eq!(id, faultline_schema::anonymize_user("salt", "user-42"));
    assert!(id.starts_with("u_") && id.len() == 18, "{id}");
    assert!(!id.contains("user-42"));
    assert_ne!(anonymize("other", "user-42"), id);
    // The wasm build's own SHA-256 gives the server's value (`printf 'pub_salt_1user-42' |
    // sha256sum`), long inputs too.
    assert_eq!(anonymize("pub_salt_1", "user-42"), "u_bb05a1271ec30185");
    let long = "x".repeat(200);
    assert_eq!(
        anonymize(&long, "y"),
        anonymize(&long[..100], &format!("{}y", &long[100..]))
    );
}

#[wasm_bindgen_test]
fn scrub_applies_the_schema_rule_and_extra_names() {
    let text = r#"{"url":"https://u:p@a.io/?access_token=x&page=2#id_token=y"}"#;
    let want = faultline_schema::UrlScrubber::default()
        .scrub(text)
        .into_owned();
    assert_eq!(scrub(text), want);
    // Still JSON the browser reads.
    assert!(js_sys::JSON::parse(&scrub(text)).is_ok());
    assert_eq!(scrub("?userEmail=a&ref=1"), "?userEmail=a&ref=1");
    scrub_names("email\nutm");
    assert_eq!(
        scrub("?userEmail=a&utm_source=b&ref=1"),
        "?userEmail=[Filtered]&utm_source=[Filtered]&ref=1"
    );
    scrub_names("");
}

#[wasm_bindgen_test]
fn fitted_fields_pass_the_schema() {
    let event = fit_event(&format!("a\nb{}", "e".repeat(300)), "captureMessage");
    assert!(faultline_schema::check_event(&event).is_ok(), "{event}");
    assert_eq!(fit_event("\n", "captureMessage"), "captureMessage");
    let message = fit_message(&"\u{1F600}".repeat(5_000));
    assert!(message.len() <= faultline_schema::MAX_MESSAGE_BYTES);
    assert!(message.ends_with(faultline_schema::TRUNCATION_MARKER));
    assert_eq!(meta_over(r#"{"a":[[1]]}"#), 0);
    assert_eq!(meta_over(r#"{"a":[[[[[[[[1]]]]]]]]}"#), 2);
    assert_eq!(
        meta_over(&format!(r#"{{"a":"{}"}}"#, "x".repeat(20_000))),
        1
    );
}

#[wasm_bindgen_test]
fn repeats_fold_then_the_cap_holds() {
    gate_init(1_000.0, 1.0, 2.0);
    assert_eq!(fold_of("k", 0.0), "");
    assert_eq!(admit("k", "id-1", 0.0, 0.5), "id-1");
    assert_eq!(fold_of("k", 999.0), "id-1");
    assert_eq!(fold_of("k", 1_000.0), "");
    assert_eq!(admit("j", "id-2", 0.0, 0.5), "id-2");
    assert_eq!(admit("i", "id-3", 0.0, 0.5), "2");
    gate_init(1_000.0, 0.5, 10.0);
    assert_eq!(admit("k", "id-4", 0.0, 0.5), "1");
}

#[wasm_bindgen_test]
fn records_read_back_as_the_browser_and_the_server_read_them() {
    scope_set(7, "salt", "", 5);
    scope_set(0, "team", "\"web\"", 0);
    let user = scope_set(3, "", "user-42", 0);
    assert_eq!(user, faultline_schema::anonymize_user("salt", "user-42"));
    scope_set(
        4,
        "",
        r#"{"category":"ui.click","message":"button#save"}"#,
        0,
    );
    // A stack this very browser produced.
    let error = js_sys::Error::new("boom");
    let stack = js_sys::Reflect::get(&error, &JsValue::from_str("stack"))
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    let fields = r#"{"id":"0b7f6c1e-9a4f-4c1e-8d2b-3f6a1c9e7d20","ts":"2026-12-07T10:00:00.000Z","service":"ui","level":"ERROR","meta":{"url":"https://a.io/"}}"#;
    let json = record(
        true,
        &format!("window.onerror\0Error: boom\0{stack}\0\0{fields}"),
        0,
        0,
    );
    let rec = js_sys::JSON::parse(&json).unwrap_or_else(|e| panic!("{e:?}: {json}"));
    assert_eq!(field(&rec, "event"), "window.onerror");
    assert_eq!(field(&rec, "message"), "Error: boom");
    let meta = field(&rec, "meta");
    assert_eq!(field(&meta, "user"), user.as_str());
    assert_eq!(field(&field(&meta, "tags"), "team"), "web");
    assert!(
        js_sys::Array::from(&field(&meta, "stack")).length() >= 1,
        "{json}"
    );
    assert!(
        js_sys::Array::from(&field(&meta, "breadcrumbs")).length() == 1,
        "{json}"
    );
    assert!(
        faultline_schema::Record::from_json(json.as_bytes()).is_ok(),
        "{json}"
    );
    // Saved and restored: the tag set in between is gone.
    scope_set(5, "", "", 0);
    scope_set(0, "flow", "\"checkout\"", 0);
    scope_set(6, "", "", 0);
    assert!(!record(true, &format!("e\0m\0\0\0{fields}"), 0, 0).contains("checkout"));
}
