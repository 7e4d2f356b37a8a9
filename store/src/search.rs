//! Search terms of `/logs/recent` beyond the fixed fields: `meta.KEY=VALUE` filters and the
//! cursor that pages through results.
//!
//! A `meta` filter names a value by its **flattened path**: the keys from `meta` down to the
//! value joined by `.`, so `meta.code.lineno` finds both `{"code": {"lineno": 42}}` and an
//! OTLP attribute stored flat as `{"code.lineno": 42}`. Only scalar values are found (a
//! string, number or boolean; arrays are not searched). The filter's value is text and
//! matches:
//!
//! - a string equal to it, byte for byte;
//! - a number equal to it, when the text is a JSON number (`500` finds `500` and `500.0`);
//! - a boolean, when the text is `true` or `false`.
//!
//! So `meta.status=500` finds the number 500 and the string `"500"`, as alert rules'
//! `meta = { status = "500" }` and most log search tools do.

use std::fmt;
use std::str::FromStr;

use faultline_schema::{Map, Timestamp, Uuid, Value};

/// The most `.`-separated parts a filter's key may have (a PostgreSQL query tries every way
/// of splitting the key into nested keys: `2^(parts - 1)` of them).
pub const MAX_META_KEY_PARTS: usize = 8;
/// The most `meta` filters one query takes.
pub const MAX_META_FILTERS: usize = 10;

/// One `meta.KEY=VALUE` filter: the value at the flattened path `key` equals `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaFilter {
    /// The flattened path, without `meta.`: `http.status`.
    pub key: String,
    /// The value as text.
    pub value: String,
}

impl MetaFilter {
    /// A filter on `key` (without `meta.`), refused when a part of it is empty or it has
    /// more than [`MAX_META_KEY_PARTS`] parts.
    pub fn new(key: &str, value: &str) -> Result<MetaFilter, String> {
        if key.is_empty() {
            return Err("meta filter without a key: write meta.KEY=VALUE".into());
        }
        if key.split('.').any(str::is_empty) {
            return Err(format!(
                "meta.{key}: a key part is empty (two dots, or a dot at an end)"
            ));
        }
        if key.split('.').count() > MAX_META_KEY_PARTS {
            return Err(format!(
                "meta.{key}: at most {MAX_META_KEY_PARTS} dot-separated parts"
            ));
        }
        Ok(MetaFilter {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The number the value stands for, if it is a JSON number.
    fn number(&self) -> Option<f64> {
        json_number(&self.value).and_then(|n| n.as_f64())
    }

    /// The boolean the value stands for, if it is `true` or `false`.
    fn boolean(&self) -> Option<bool> {
        match self.value.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// Whether `value` (a scalar at the filter's path) is what the filter asks for.
    fn accepts(&self, value: &Value) -> bool {
        match value {
            Value::String(s) => *s == self.value,
            Value::Number(n) => n
                .as_f64()
                .zip(self.number())
                .is_some_and(|(have, want)| have == want),
            Value::Bool(b) => self.boolean() == Some(*b),
            _ => false,
        }
    }

    /// Whether `meta` holds the value at the filter's path, read either way a dotted key
    /// can be stored (nested objects, keys with dots, or a mix).
    pub fn matches(&self, meta: &Map<String, Value>) -> bool {
        self.matches_in(meta, &self.key)
    }

    fn matches_in(&self, object: &Map<String, Value>, rest: &str) -> bool {
        // Every prefix of `rest` that ends at a dot or at its end may be one key.
        let ends = rest
            .match_indices('.')
            .map(|(i, _)| i)
            .chain(std::iter::once(rest.len()));
        for end in ends {
            let Some(value) = object.get(&rest[..end]) else {
                continue;
            };
            if end == rest.len() {
                if self.accepts(value) {
                    return true;
                }
            } else if let Value::Object(inner) = value
                && self.matches_in(inner, &rest[end + 1..])
            {
                return true;
            }
        }
        false
    }

    /// The scalar values the filter finds, as JSON: the string, and the number or boolean
    /// the text also stands for.
    pub fn json_values(&self) -> Vec<Value> {
        let mut values = vec![Value::String(self.value.clone())];
        if let Some(n) = json_number(&self.value) {
            values.push(Value::Number(n));
        }
        if let Some(b) = self.boolean() {
            values.push(Value::Bool(b));
        }
        values
    }

    /// Every `meta` object that holds the value at the path, one per way of splitting the
    /// key into nested keys and per JSON type of the value: `meta @>` any of them is a
    /// match (PostgreSQL's containment, served by the `GIN (meta jsonb_path_ops)` index).
    pub fn containments(&self) -> Vec<Value> {
        let parts: Vec<&str> = self.key.split('.').collect();
        let splits = 1usize << (parts.len() - 1).min(MAX_META_KEY_PARTS);
        let mut out = Vec::with_capacity(splits * 3);
        for mask in 0..splits {
            // Bit i set: parts i and i + 1 are one key (joined by the dot between them).
            let mut keys: Vec<String> = vec![parts[0].to_owned()];
            for (i, part) in parts.iter().enumerate().skip(1) {
                if mask & (1 << (i - 1)) != 0 {
                    let last = keys.len() - 1;
                    keys[last].push('.');
                    keys[last].push_str(part);
                } else {
                    keys.push((*part).to_owned());
                }
            }
            for value in self.json_values() {
                let mut doc = value;
                for key in keys.iter().rev() {
                    let mut object = Map::new();
                    object.insert(key.clone(), doc);
                    doc = Value::Object(object);
                }
                out.push(doc);
            }
        }
        out
    }

    /// The hashes (see [`leaf_hash`]) of the values the filter finds: a segment whose
    /// filter has none of them holds no match.
    pub(crate) fn hashes(&self) -> Vec<u64> {
        let mut out = vec![leaf_hash(&self.key, &Value::String(self.value.clone()))];
        if let Some(n) = self.number() {
            out.push(number_hash(&self.key, n));
        }
        if let Some(b) = self.boolean() {
            out.push(leaf_hash(&self.key, &Value::Bool(b)));
        }
        out
    }

    /// Bytes every stored line that matches must contain, to skip lines before parsing
    /// them: the value as JSON writes a string, when the value cannot also be a number (a
    /// number may be written differently: `5e2`) and needs no escaping.
    pub(crate) fn needle(&self) -> Option<&[u8]> {
        let plain = !self.value.is_empty()
            && self
                .value
                .chars()
                .all(|c| c != '"' && c != '\\' && !c.is_control());
        (plain && self.number().is_none()).then_some(self.value.as_bytes())
    }
}

/// `text` as a JSON number, written exactly so (no spaces around it).
fn json_number(text: &str) -> Option<serde_json::Number> {
    if text.trim() != text {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// A stable 64-bit hash of one scalar of `meta` at its flattened `path` (the same in every
/// process and version: segment filters on disk are built from it). Numbers hash by their
/// value as `f64`, so `500` and `500.0` hash alike.
pub(crate) fn leaf_hash(path: &str, value: &Value) -> u64 {
    let mut h = Fnv::new();
    h.write(path.as_bytes());
    match value {
        Value::String(s) => {
            h.write(b"\0s");
            h.write(s.as_bytes());
        }
        Value::Bool(b) => h.write(if *b { b"\0bt" } else { b"\0bf" }),
        Value::Number(n) => return number_hash(path, n.as_f64().unwrap_or(f64::NAN)),
        _ => h.write(b"\0z"),
    }
    h.finish()
}

fn number_hash(path: &str, n: f64) -> u64 {
    let mut h = Fnv::new();
    h.write(path.as_bytes());
    h.write(b"\0n");
    // -0.0 == 0.0 as numbers, so they hash alike.
    let n = if n == 0.0 { 0.0 } else { n };
    h.write(&n.to_bits().to_le_bytes());
    h.finish()
}

/// Calls `f` with the [`leaf_hash`] of every scalar in `meta` (objects are walked, arrays
/// are not).
pub(crate) fn for_each_leaf_hash(meta: &Map<String, Value>, f: &mut impl FnMut(u64)) {
    let mut path = String::new();
    walk(meta, &mut path, f);
}

fn walk(object: &Map<String, Value>, path: &mut String, f: &mut impl FnMut(u64)) {
    for (key, value) in object {
        let len = path.len();
        if len > 0 {
            path.push('.');
        }
        path.push_str(key);
        match value {
            Value::Object(inner) => walk(inner, path, f),
            Value::Array(_) | Value::Null => {}
            scalar => f(leaf_hash(path, scalar)),
        }
        path.truncate(len);
    }
}

/// FNV-1a, 64 bits, finished with a SplitMix64 step so nearby inputs spread over all bits.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        mix(self.0)
    }
}

/// SplitMix64's finalizer.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where a page of `/logs/recent` ended: the last record's `ts` and id. The next page holds
/// the records ranked below it (newest `ts` first, then larger id first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The last record's `ts`.
    pub ts: Timestamp,
    /// Its id.
    pub id: Uuid,
}

impl Cursor {
    /// Whether a record with this `ts` and id comes after the cursor (on a later page).
    pub fn before(&self, ts: Timestamp, id: Option<Uuid>) -> bool {
        (ts, id) < (self.ts, Some(self.id))
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.ts.unix_millis(), self.id.simple())
    }
}

impl FromStr for Cursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a cursor: pass the `next` of the previous answer");
        let (ts, id) = s.split_once('_').ok_or_else(bad)?;
        let ts: i64 = ts.parse().map_err(|_| bad())?;
        if id.len() != 32 {
            return Err(bad());
        }
        let id = Uuid::try_parse(id).map_err(|_| bad())?;
        Ok(Cursor {
            ts: Timestamp::from_unix_millis(ts),
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn f(key: &str, value: &str) -> MetaFilter {
        MetaFilter::new(key, value).unwrap()
    }

    #[test]
    fn types_are_read_from_the_text() {
        let m = meta(json!({"s": "500", "n": 500, "x": 500.0, "b": true, "t": "true", "z": null}));
        assert!(f("s", "500").matches(&m));
        assert!(f("n", "500").matches(&m));
        assert!(f("x", "500").matches(&m), "500.0 is 500");
        assert!(f("b", "true").matches(&m));
        assert!(f("t", "true").matches(&m));
        assert!(!f("b", "1").matches(&m));
        assert!(!f("n", "500 ").matches(&m));
        assert!(!f("s", "5e2").matches(&m), "strings compare as written");
        assert!(f("n", "5e2").matches(&m), "numbers compare as numbers");
        assert!(!f("z", "null").matches(&m));
    }

    #[test]
    fn dotted_keys_match_nested_flat_and_mixed() {
        let nested = meta(json!({"a": {"b": {"c": "v"}}}));
        let flat = meta(json!({"a.b.c": "v"}));
        let mixed = meta(json!({"a": {"b.c": "v"}}));
        let array = meta(json!({"a": [{"b": {"c": "v"}}]}));
        for m in [&nested, &flat, &mixed] {
            assert!(f("a.b.c", "v").matches(m), "{m:?}");
            let hit = f("a.b.c", "v").hashes();
            let mut leaves = Vec::new();
            for_each_leaf_hash(m, &mut |h| leaves.push(h));
            assert!(hit.iter().any(|h| leaves.contains(h)), "{m:?}");
        }
        assert!(!f("a.b", "v").matches(&nested));
        assert!(!f("a.b.c", "v").matches(&array), "arrays are not searched");
    }

    #[test]
    fn containments_cover_every_split() {
        let docs = f("a.b.c", "7").containments();
        // 4 splits x (string, number).
        assert_eq!(docs.len(), 8);
        assert!(docs.contains(&json!({"a": {"b": {"c": 7}}})));
        assert!(docs.contains(&json!({"a.b.c": "7"})));
        assert!(docs.contains(&json!({"a.b": {"c": 7}})));
        assert!(docs.contains(&json!({"a": {"b.c": "7"}})));
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(MetaFilter::new("", "x").is_err());
        assert!(MetaFilter::new("a..b", "x").is_err());
        assert!(MetaFilter::new("a.", "x").is_err());
        assert!(MetaFilter::new("a.b.c.d.e.f.g.h", "x").is_ok());
        assert!(MetaFilter::new("a.b.c.d.e.f.g.h.i", "x").is_err());
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            ts: Timestamp::from_unix_millis(1_700_000_000_123),
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00ff),
        };
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        for bad in [
            "",
            "x",
            "12_",
            "_0190",
            "12_zz",
            "a_01900000000070008000000000000ff",
        ] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
        assert!(c.before(c.ts, None));
        assert!(!c.before(c.ts, Some(c.id)));
        assert!(c.before(Timestamp::from_unix_millis(0), Some(c.id)));
    }
}
