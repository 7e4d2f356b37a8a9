//! The record contract: field rules, every limit just under and just over, batch forms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use faultline_schema::*;
use serde_json::json;

fn good() -> serde_json::Value {
    json!({
        "ts": "2026-07-01T12:34:56.789Z",
        "service": "api",
        "level": "ERROR",
        "event": "payment_failed",
        "message": "card declined",
        "meta": { "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "user": "u_3f2a9c0d1b7e4a55", "bot_id": 42 }
    })
}

fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
    let mut v = good();
    v[field] = value;
    v
}

fn errors_of(v: serde_json::Value) -> Vec<FieldError> {
    Record::from_value(v).unwrap_err().errors
}

#[test]
fn design_example_is_accepted_as_is() {
    let r = Record::from_value(good()).unwrap();
    assert_eq!(r.ts.to_string(), "2026-07-01T12:34:56.789Z");
    assert_eq!(r.service, "api");
    assert_eq!(r.level, Level::Error);
    assert_eq!(r.user(), Some("u_3f2a9c0d1b7e4a55"));
    assert_eq!(r.meta["bot_id"], 42);
    assert_eq!(r.id, None);
}

#[test]
fn every_required_field_is_reported_at_once() {
    let errs = errors_of(json!({}));
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["ts", "service", "level", "event", "message"]);
    assert!(errs.iter().all(|e| e.problem == Problem::Missing));
}

#[test]
fn wrong_types_name_the_field_and_the_type() {
    let errs = errors_of(json!({
        "ts": 1782901234567u64, "service": 7, "level": null, "event": ["x"],
        "message": {"a": 1}, "meta": "nope", "id": 5
    }));
    let text = InvalidRecord {
        errors: errs.clone(),
    }
    .to_string();
    assert!(
        text.contains("ts: must be an RFC 3339 string, got a number"),
        "{text}"
    );
    assert!(
        text.contains("service: must be a string, got a number"),
        "{text}"
    );
    assert!(text.contains("level: is required"), "{text}");
    assert!(
        text.contains("meta: must be an object, got a string"),
        "{text}"
    );
    assert!(text.contains("id: must be a UUID string"), "{text}");
    assert_eq!(errs.len(), 7);
}

#[test]
fn not_an_object_is_one_error() {
    let err = Record::from_value(json!([1, 2])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "record: must be a JSON object, got an array"
    );
}

#[test]
fn level_aliases_are_normalized_and_unknown_rejected() {
    for (alias, level) in [
        ("warn", Level::Warning),
        ("FATAL", Level::Critical),
        ("trace", Level::Debug),
        ("Err", Level::Error),
        ("info", Level::Info),
        ("critical", Level::Critical),
    ] {
        let r = Record::from_value(with("level", json!(alias))).unwrap();
        assert_eq!(r.level, level);
        assert!(
            r.to_json()
                .contains(&format!("\"level\":\"{}\"", level.as_str()))
        );
    }
    let errs = errors_of(with("level", json!("verbose")));
    assert_eq!(errs[0].field, "level");
    assert!(errs[0].message.contains("unknown level \"verbose\""));
}

#[test]
fn ts_with_offset_is_normalized_to_utc_millis() {
    let r = Record::from_value(with("ts", json!("2026-07-01T14:34:56.789123+02:00"))).unwrap();
    assert_eq!(r.ts.to_string(), "2026-07-01T12:34:56.789Z");
    let errs = errors_of(with("ts", json!("yesterday")));
    assert_eq!(errs[0].field, "ts");
    assert!(errs[0].message.contains("RFC 3339"));
}

#[test]
fn service_limit_and_characters() {
    let at = "a".repeat(MAX_SERVICE_CHARS);
    assert!(Record::from_value(with("service", json!(at))).is_ok());
    let over = "a".repeat(MAX_SERVICE_CHARS + 1);
    let errs = errors_of(with("service", json!(over)));
    assert_eq!(
        (errs[0].field.as_str(), errs[0].problem),
        ("service", Problem::TooLong)
    );
    for ok in ["ui", "api-v2", "worker_1", "billing.eu"] {
        assert!(
            Record::from_value(with("service", json!(ok))).is_ok(),
            "{ok}"
        );
    }
    for bad in ["", "API", "my service", "ui/panel", "ünï"] {
        let errs = errors_of(with("service", json!(bad)));
        assert_eq!(errs[0].field, "service", "{bad}");
    }
}

#[test]
fn event_limit_counts_characters() {
    let at = "é".repeat(MAX_EVENT_CHARS);
    assert!(Record::from_value(with("event", json!(at))).is_ok());
    let over = "e".repeat(MAX_EVENT_CHARS + 1);
    assert_eq!(
        errors_of(with("event", json!(over)))[0].problem,
        Problem::TooLong
    );
    assert_eq!(
        errors_of(with("event", json!("")))[0].problem,
        Problem::Invalid
    );
    assert_eq!(
        errors_of(with("event", json!("a\nb")))[0].problem,
        Problem::Invalid
    );
}

#[test]
fn message_at_limit_is_kept_and_over_limit_is_truncated_with_marker() {
    let at = "m".repeat(MAX_MESSAGE_BYTES);
    let r = Record::from_value(with("message", json!(at.clone()))).unwrap();
    assert_eq!(r.message, at);

    let over = "m".repeat(MAX_MESSAGE_BYTES + 1);
    let r = Record::from_value(with("message", json!(over))).unwrap();
    assert_eq!(r.message.len(), MAX_MESSAGE_BYTES);
    assert!(r.message.ends_with(TRUNCATION_MARKER));

    // A multi-byte character straddling the cut is dropped whole, never split.
    let wide = "€".repeat(MAX_MESSAGE_BYTES);
    let r = Record::from_value(with("message", json!(wide))).unwrap();
    assert!(r.message.len() <= MAX_MESSAGE_BYTES);
    assert!(r.message.ends_with(TRUNCATION_MARKER));
}

#[test]
fn meta_size_limit_just_under_and_over() {
    // {"k":"…"} is 8 bytes of punctuation and key around the value.
    let fits = "x".repeat(MAX_META_BYTES - 8);
    assert!(Record::from_value(with("meta", json!({ "k": fits }))).is_ok());
    let over = "x".repeat(MAX_META_BYTES - 7);
    let errs = errors_of(with("meta", json!({ "k": over })));
    assert_eq!(
        (errs[0].field.as_str(), errs[0].problem),
        ("meta", Problem::TooLarge)
    );
    assert!(errs[0].message.contains("16385 bytes"));
}

/// Guards records the sampler weighted after their check: `meta.sample_weight` is not
/// counted in the limit, so a record at the limit still reads back once it is added.
#[test]
fn a_sample_weight_added_at_the_meta_limit_still_reads_back() {
    let fits = "x".repeat(MAX_META_BYTES - 8);
    let mut r = Record::from_value(with("meta", json!({ "k": fits }))).unwrap();
    r.meta.insert(SAMPLE_WEIGHT_KEY.into(), json!(u64::MAX));
    let back = Record::from_json(r.to_json().as_bytes()).unwrap();
    assert_eq!(back.sample_weight(), u64::MAX);
    let mut just_weight = Record::from_value(good()).unwrap();
    just_weight.meta = [(SAMPLE_WEIGHT_KEY.to_owned(), json!(7))]
        .into_iter()
        .collect();
    assert!(just_weight.validate().is_ok());
    // Anything else at the limit still counts.
    r.meta.insert("y".into(), json!(1));
    assert_eq!(
        r.validate().unwrap_err().errors[0].problem,
        Problem::TooLarge
    );
}

fn nested(levels: usize) -> serde_json::Value {
    (0..levels).fold(json!({}), |inner, _| json!({ "n": inner }))
}

#[test]
fn meta_depth_limit_just_under_and_over() {
    // meta is level 1; nested(k) adds k + 1 levels below it.
    assert!(Record::from_value(with("meta", json!({ "a": nested(MAX_META_DEPTH - 2) }))).is_ok());
    let errs = errors_of(with("meta", json!({ "a": nested(MAX_META_DEPTH - 1) })));
    assert_eq!(errs[0].problem, Problem::TooDeep);
    let errs = errors_of(with("meta", json!({ "a": [[[[[[[[1]]]]]]]] })));
    assert_eq!(errs[0].problem, Problem::TooDeep);
}

#[test]
fn reserved_meta_keys_are_type_checked() {
    let errs = errors_of(with(
        "meta",
        json!({ "user": 42, "stack": "at x", "count": -1 }),
    ));
    let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["meta.user", "meta.stack", "meta.count"]);
    assert!(errs[1].message.contains("meta.stack_text"));
}

#[test]
fn unknown_top_level_keys_move_into_meta() {
    let mut v = good();
    v["logger"] = json!("payments");
    v["bot_id"] = json!(7);
    let r = Record::from_value(v).unwrap();
    assert_eq!(r.meta["logger"], "payments");
    assert_eq!(r.meta["bot_id"], 42, "an existing meta key wins");
}

#[test]
fn nul_characters_are_replaced_for_postgres() {
    let mut v = with("message", json!("a\u{0}b"));
    v["meta"] = json!({ "k\u{0}": ["x\u{0}"] });
    let r = Record::from_value(v).unwrap();
    assert_eq!(r.message, "a\u{FFFD}b");
    assert_eq!(r.meta["k\u{FFFD}"][0], "x\u{FFFD}");
}

/// Guards batches PostgreSQL refused whole: `jsonb` takes no NUL anywhere, nested object
/// keys included, and one such record failed its batch with a 503 on every retry.
#[test]
fn nul_in_nested_meta_keys_is_replaced_at_every_depth() {
    let v = with(
        "meta",
        json!({ "x": { "a\u{0}": 1, "l": [ { "b\u{0}c": { "\u{0}": "v\u{0}" } } ] } }),
    );
    let fast = Record::from_json(v.to_string().as_bytes()).unwrap();
    let slow = Record::from_value(v).unwrap();
    assert_eq!(fast, slow);
    assert_eq!(fast.meta["x"]["a\u{FFFD}"], 1);
    assert_eq!(
        fast.meta["x"]["l"][0]["b\u{FFFD}c"]["\u{FFFD}"],
        "v\u{FFFD}"
    );
    assert!(!fast.to_json().contains("\\u0000"), "{}", fast.to_json());
}

#[test]
fn id_is_kept_and_validated() {
    let id = "0190a8f4-5b1c-7cc0-9a6b-1d2e3f405162";
    let r = Record::from_value(with("id", json!(id))).unwrap();
    assert_eq!(r.id.unwrap().to_string(), id);
    assert!(r.to_json().starts_with(&format!("{{\"id\":\"{id}\"")));
    assert_eq!(errors_of(with("id", json!("not-a-uuid")))[0].field, "id");
    let nil = "00000000-0000-0000-0000-000000000000";
    assert_eq!(errors_of(with("id", json!(nil)))[0].field, "id");
}

#[test]
fn validate_applies_the_same_rules_to_records_built_in_code() {
    let mut r = Record::new(
        Timestamp::from_unix_millis(0),
        "Bad Service",
        Level::Info,
        "e",
        "m",
    );
    let err = r.validate().unwrap_err();
    assert_eq!(err.errors[0].field, "service");
    let mut r = Record::new(
        Timestamp::from_unix_millis(0),
        "api",
        Level::Info,
        "e",
        "x".repeat(9000),
    );
    r.validate().unwrap();
    assert_eq!(r.message.len(), MAX_MESSAGE_BYTES);
}

// ---- batches ----

fn body_of(records: &[serde_json::Value]) -> Vec<u8> {
    serde_json::to_vec(records).unwrap()
}

fn mixed() -> Vec<serde_json::Value> {
    vec![
        good(),
        with("level", json!("loud")),
        good(),
        json!("just a string"),
        with("service", json!("Bad")),
        good(),
    ]
}

fn assert_mixed(batch: &Batch) {
    assert_eq!(batch.records.len(), 3);
    let idx: Vec<_> = batch.rejected.iter().map(|r| r.index).collect();
    assert_eq!(idx, [1, 3, 4]);
    assert_eq!(batch.rejected[0].error.errors[0].field, "level");
    assert_eq!(batch.rejected[1].error.errors[0].field, "record");
    assert_eq!(batch.rejected[2].error.errors[0].field, "service");
}

#[test]
fn array_batch_keeps_good_records_and_indexes_bad_ones() {
    let batch = decode_batch(&body_of(&mixed())).unwrap();
    assert_eq!(batch.format, BatchFormat::Array);
    assert_mixed(&batch);
}

#[test]
fn wrapped_batch_pretty_printed() {
    let body = serde_json::to_vec_pretty(&json!({ "records": mixed() })).unwrap();
    let batch = decode_batch(&body).unwrap();
    assert_eq!(batch.format, BatchFormat::Wrapped);
    assert_mixed(&batch);
}

#[test]
fn ndjson_batch_skips_blank_lines_and_survives_broken_lines() {
    let mut body = Vec::new();
    for (i, v) in mixed().iter().enumerate() {
        body.extend_from_slice(&serde_json::to_vec(v).unwrap());
        body.extend_from_slice(if i == 2 { b"\r\n\n  \n" } else { b"\n" });
    }
    body.extend_from_slice(b"{\"ts\": broken\n");
    let batch = decode_batch(&body).unwrap();
    assert_eq!(batch.format, BatchFormat::Ndjson);
    assert_eq!(batch.records.len(), 3);
    let idx: Vec<_> = batch.rejected.iter().map(|r| r.index).collect();
    assert_eq!(idx, [1, 3, 4, 6]);
    let last = batch.rejected[3].error.to_string();
    assert!(last.starts_with("record: line 9: not valid JSON"), "{last}");
}

#[test]
fn single_object_is_a_one_record_batch() {
    let batch = decode_batch(&serde_json::to_vec(&good()).unwrap()).unwrap();
    assert_eq!(
        (batch.format, batch.records.len()),
        (BatchFormat::Ndjson, 1)
    );
}

#[test]
fn bom_and_whitespace_are_tolerated() {
    let mut body = b"\xEF\xBB\xBF \n".to_vec();
    body.extend(body_of(&[good()]));
    assert_eq!(decode_batch(&body).unwrap().records.len(), 1);
}

#[test]
fn bodies_that_are_not_json_are_one_clear_error() {
    for body in [
        &b"hello world"[..],
        b"{not json",
        b"[1, 2",
        b"42",
        b"{x}\n{y}\n",
        b"\xff\xfe",
    ] {
        let err = decode_batch(body).unwrap_err();
        assert!(
            matches!(err, BatchError::NotJson { .. }),
            "{body:?}: {err:?}"
        );
        assert!(err.to_string().contains("send a JSON array of records"));
    }
    assert_eq!(decode_batch(b" \n\t").unwrap_err(), BatchError::Empty);
    assert_eq!(
        decode_batch(b"{\"records\": 5}").unwrap_err(),
        BatchError::RecordsNotArray
    );
}

/// `{"records": null}` is a batch whose records are missing, not one record missing every
/// field: the client is told to send an array.
#[test]
fn records_null_is_records_not_an_array() {
    assert_eq!(
        decode_batch(b"{\"records\": null}").unwrap_err(),
        BatchError::RecordsNotArray
    );
}

#[test]
fn too_many_records_fails_before_checking_any() {
    let opts = DecodeOptions { max_records: 2 };
    let three = body_of(&[good(), good(), good()]);
    assert_eq!(
        decode_batch_with(&three, &opts).unwrap_err(),
        BatchError::TooManyRecords { max: 2 }
    );
    let ndjson = "{}\n{}\n{}\n";
    assert!(decode_batch_with(ndjson.as_bytes(), &opts).is_err());
    assert!(decode_batch_with(&body_of(&[good(), good()]), &opts).is_ok());
}

/// Issue 21: an array's elements are counted while it is parsed, and parsing stops at the
/// first one past the limit: ten million zeros cost no more than the limit. What follows
/// that element is never read (here it is not even JSON).
#[test]
fn an_array_is_counted_while_it_is_parsed() {
    let opts = DecodeOptions { max_records: 1000 };
    let past = format!("[{}0, this is never read", "0,".repeat(1000));
    assert_eq!(
        decode_batch_with(past.as_bytes(), &opts).unwrap_err(),
        BatchError::TooManyRecords { max: 1000 }
    );
    for (open, close) in [("[", "]"), ("{\"records\": [", "]}")] {
        let huge = format!("{open}{}0{close}", "0,".repeat(100_000));
        assert_eq!(
            decode_batch_with(huge.as_bytes(), &opts).unwrap_err(),
            BatchError::TooManyRecords { max: 1000 },
            "{open}"
        );
        // At the limit exactly, every element is read (and each zero rejected).
        let at = format!("{open}{}0{close}", "0,".repeat(999));
        let batch = decode_batch_with(at.as_bytes(), &opts).unwrap();
        assert_eq!(batch.rejected.len(), 1000, "{open}");
    }
    // A broken array within the limit is still "not JSON", not "too many".
    assert!(matches!(
        decode_batch_with(b"[0, 0, nope]", &opts),
        Err(BatchError::NotJson { .. })
    ));
}

/// Issue 21: a 20 MB body of records whose `meta` holds arrays of zeros decodes into about
/// 16 times its size. The caller is asked for room as decoded records grow, and can stop
/// the decoding there.
#[test]
fn decoding_asks_for_room_as_records_grow_and_stops_without_it() {
    let mut zeros = good();
    zeros["meta"] = json!({ "a": vec![0; 5000] });
    let body = body_of(&vec![zeros; 10]);
    let mut asked = Vec::new();
    let batch = decode_batch_within(&body, &DecodeOptions::default(), |bytes| {
        asked.push(bytes);
        true
    })
    .unwrap();
    assert_eq!(batch.records.len(), 10);
    assert!(asked.windows(2).all(|w| w[0] < w[1]), "{asked:?}");
    let total: usize = batch.records.iter().map(decoded_size).sum();
    assert!(
        total >= 10 * 5000 * 32,
        "5,000 values of 32 bytes each: {total}"
    );
    assert!(*asked.last().unwrap() >= total, "{asked:?} {total}");

    for body in [body.clone(), ndjson_of(&vec![zeros_record(); 10])] {
        let mut calls = 0;
        let err = decode_batch_within(&body, &DecodeOptions::default(), |bytes| {
            calls += 1;
            bytes < 3 * 5000 * 32
        })
        .unwrap_err();
        assert_eq!(err, BatchError::NoRoom);
        assert!(
            calls <= 5,
            "stopped at the record that did not fit: {calls} calls"
        );
    }
}

fn zeros_record() -> serde_json::Value {
    let mut zeros = good();
    zeros["meta"] = json!({ "a": vec![0; 5000] });
    zeros
}

fn ndjson_of(records: &[serde_json::Value]) -> Vec<u8> {
    records
        .iter()
        .map(|r| format!("{r}\n"))
        .collect::<String>()
        .into_bytes()
}

/// Issue 21: one element of a million values (far more than a record can hold) is refused
/// by counting them, without building them; the records beside it are kept, in an array
/// and in NDJSON.
#[test]
fn an_element_with_more_values_than_a_record_can_hold_is_rejected_unbuilt() {
    let mut huge = good();
    huge["meta"] = json!({ "a": vec![0; 1_000_000] });
    let mut under = good();
    under["meta"] = json!({ "a": vec![0; 30_000] });
    for body in [
        body_of(&[good(), huge.clone(), good(), under.clone()]),
        ndjson_of(&[good(), huge.clone(), good(), under.clone()]),
    ] {
        let batch = decode_batch(&body).unwrap();
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.rejected.len(), 2);
        let refused = &batch.rejected[0];
        assert_eq!(refused.index, 1);
        assert_eq!(refused.error.reason(), "too_large");
        assert!(
            refused.error.to_string().contains("JSON values"),
            "{}",
            refused.error
        );
        // Over the meta limit too, but counted as the record's own check does.
        assert!(
            batch.rejected[1]
                .error
                .to_string()
                .contains("bytes as JSON"),
            "{}",
            batch.rejected[1].error
        );
    }
}

#[test]
fn deep_nesting_in_one_ndjson_line_rejects_only_that_line() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let body = format!("{}\n{deep}\n{}\n", good(), good());
    let batch = decode_batch(body.as_bytes()).unwrap();
    assert_eq!(batch.records.len(), 2);
    assert_eq!(batch.rejected[0].index, 1);
}

#[test]
fn deep_nesting_in_one_array_element_rejects_only_that_element() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let body = format!("[{},{deep},{}]", good(), good());
    let batch = decode_batch(body.as_bytes());
    match batch {
        Ok(b) => {
            assert_eq!(b.records.len(), 2);
            assert_eq!(b.rejected[0].index, 1);
        }
        Err(e) => panic!("whole batch failed: {e}"),
    }
}

#[test]
fn invalid_utf8_in_one_ndjson_line_rejects_only_that_line() {
    let mut body = serde_json::to_vec(&good()).unwrap();
    body.extend_from_slice(b"\n{\"message\": \"\xff\"}\n");
    body.extend(serde_json::to_vec(&good()).unwrap());
    let batch = decode_batch(&body).unwrap();
    assert_eq!(batch.records.len(), 2);
    assert_eq!(batch.rejected[0].index, 1);
}
