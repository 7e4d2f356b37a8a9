//! The JavaScript side of [`Host`] and [`Options`]: the host object built by
//! `js/index.js`, and the page's options object read through `Reflect`.

use js_sys::{Array, Reflect, RegExp};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

use crate::config::{OptValue, Options};
use crate::filter::Pattern;
use crate::host::Host;

#[wasm_bindgen]
extern "C" {
    /// The host object of `js/index.js` (`now`, `send`, `beacon`, `schedule`, `store`,
    /// `online`); its methods never throw.
    pub type JsHost;

    #[wasm_bindgen(method, js_name = now)]
    fn js_now(this: &JsHost) -> f64;
    #[wasm_bindgen(method, js_name = send)]
    fn js_send(this: &JsHost, seq: u32, url: &str, body: &str);
    #[wasm_bindgen(method, js_name = beacon)]
    fn js_beacon(this: &JsHost, url: &str, body: &str) -> bool;
    #[wasm_bindgen(method, js_name = schedule)]
    fn js_schedule(this: &JsHost, delay_ms: f64);
    #[wasm_bindgen(method, js_name = store)]
    fn js_store(this: &JsHost, text: &str);
    #[wasm_bindgen(method, js_name = online)]
    fn js_online(this: &JsHost) -> bool;
}

impl std::fmt::Debug for JsHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsHost")
    }
}

impl Host for JsHost {
    fn now(&self) -> f64 {
        self.js_now()
    }
    fn send(&self, seq: u32, url: &str, body: &str) {
        self.js_send(seq, url, body);
    }
    fn beacon(&self, url: &str, body: &str) -> bool {
        self.js_beacon(url, body)
    }
    fn schedule(&self, delay_ms: f64) {
        self.js_schedule(delay_ms);
    }
    fn store(&self, text: &str) {
        self.js_store(text);
    }
    fn online(&self) -> bool {
        self.js_online()
    }
}

/// The options object passed to `init()`.
pub(crate) struct JsOptions<'a>(pub(crate) &'a JsValue);

impl JsOptions<'_> {
    fn get(&self, key: &str) -> JsValue {
        // A throwing getter or a Proxy trap reads as absent.
        Reflect::get(self.0, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }
}

impl Options for JsOptions<'_> {
    fn value(&self, key: &str) -> OptValue {
        let v = self.get(key);
        if v.is_undefined() || v.is_null() {
            OptValue::Missing
        } else if let Some(s) = v.as_string() {
            OptValue::Str(s)
        } else if let Some(n) = v.as_f64() {
            OptValue::Num(n)
        } else {
            OptValue::Other
        }
    }

    fn patterns(&self, key: &str) -> Result<Vec<Pattern>, String> {
        let v = self.get(key);
        if v.is_undefined() || v.is_null() {
            return Ok(Vec::new());
        }
        let bad = || String::from("must be an array of strings and RegExps");
        if !Array::is_array(&v) {
            return Err(bad());
        }
        let mut out = Vec::new();
        for item in v.unchecked_into::<Array>().iter() {
            if let Some(s) = item.as_string() {
                out.push(Pattern::Text(s));
            } else {
                out.push(Pattern::Regex(
                    item.dyn_into::<RegExp>().map_err(|_| bad())?,
                ));
            }
        }
        Ok(out)
    }

    fn is_function(&self, key: &str) -> bool {
        self.get(key).is_function()
    }
}
