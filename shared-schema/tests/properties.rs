//! Property tests: decoding never panics on any input, and a valid record survives
//! encode-then-decode unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use faultline_schema::*;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn level() -> impl Strategy<Value = Level> {
    proptest::sample::select(Level::ALL.to_vec())
}

fn meta_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

prop_compose! {
    fn record()(
        ms in Timestamp::MIN.unix_millis()..=Timestamp::MAX.unix_millis(),
        has_id in any::<bool>(),
        id in any::<u128>(),
        service in "[a-z0-9_.-]{1,64}",
        level in level(),
        event in "[^\\p{Cc}]{1,40}",
        message in ".{0,200}",
        meta in prop::collection::btree_map("[a-z_]{1,8}", meta_value(), 0..5),
    ) -> Record {
        let mut r = Record::new(Timestamp::from_unix_millis(ms), service, level, event, message);
        r.id = (has_id && id != 0).then(|| Uuid::from_u128(id));
        // Reserved keys have types of their own; keep generated meta clear of them.
        r.meta = meta
            .into_iter()
            .filter(|(k, _)| !RESERVED_META_KEYS.iter().any(|(r, _)| r == k))
            .collect::<Map<_, _>>();
        r
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_batch(&body);
    }

    #[test]
    fn decoding_json_shaped_noise_never_panics(body in "[\\[\\]{}\",:0-9a-z\\n \\\\]{0,256}") {
        let _ = decode_batch(body.as_bytes());
    }

    #[test]
    fn parsing_arbitrary_timestamps_never_panics(s in ".{0,40}") {
        let _ = Timestamp::parse(&s);
    }

    #[test]
    fn encode_then_decode_is_identity(mut r in record()) {
        prop_assume!(r.validate().is_ok());
        let json = r.to_json();
        let back = Record::from_json(json.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &r);
        // And through the batch decoder, in each form.
        let batch = decode_batch(format!("[{json}]").as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&batch.records, &vec![r.clone()]);
        let batch = decode_batch(format!("{json}\n{json}\n").as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(batch.records.len(), 2);
    }

    #[test]
    fn timestamp_text_round_trips(ms in Timestamp::MIN.unix_millis()..=Timestamp::MAX.unix_millis()) {
        let ts = Timestamp::from_unix_millis(ms);
        prop_assert_eq!(Timestamp::parse(&ts.to_string()), Ok(ts));
    }
}
