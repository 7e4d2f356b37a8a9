//! Corpus of real-shaped `Error.stack` strings from Chrome/V8 (and Node), Firefox and Safari,
//! each checked frame by frame against [`faultline_schema::stack::parse`], and the real-world
//! corpus in `tests/stacks/` (real traces with their sources; see its README), measured as the
//! share of frames parsed exactly right.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use faultline_schema::stack::{Frame, parse};

/// A frame with a full position.
fn f(function: Option<&str>, file: &str, line: u32, col: u32) -> Frame {
    Frame {
        function: function.map(str::to_owned),
        file: Some(file.to_owned()),
        line: Some(line),
        column: Some(col),
        ..Frame::default()
    }
}

/// A frame with a line but no column (Firefox eval call sites, old engines).
fn fl(function: Option<&str>, file: &str, line: u32) -> Frame {
    Frame {
        column: None,
        ..f(function, file, line, 0)
    }
}

/// A frame without a position (native code, `Promise.all`, React host components).
fn nat(function: Option<&str>, file: Option<&str>) -> Frame {
    Frame {
        function: function.map(str::to_owned),
        file: file.map(str::to_owned),
        line: None,
        column: None,
        ..Frame::default()
    }
}

/// A wasm frame: no line, the module byte offset as the column.
fn wasm(function: Option<&str>, file: &str, offset: u32) -> Frame {
    Frame {
        line: None,
        ..f(function, file, 0, offset)
    }
}

#[track_caller]
fn check(case: &str, stack: &str, expected: &[Frame]) {
    assert_eq!(parse(stack), expected, "case `{case}`");
}

const CRA: &str = "https://shop.example.com/static/js/main.8f3a2c1d.js";

// ---------------------------------------------------------------------------------------------
// Chrome / V8 / Node
// ---------------------------------------------------------------------------------------------

#[test]
fn chrome_react_production_build() {
    let stack = "TypeError: Cannot read properties of undefined (reading 'map')
    at ProductList (https://shop.example.com/static/js/main.8f3a2c1d.js:2:184533)
    at ra (https://shop.example.com/static/js/main.8f3a2c1d.js:2:47211)
    at Bs (https://shop.example.com/static/js/main.8f3a2c1d.js:2:93754)
    at wl (https://shop.example.com/static/js/main.8f3a2c1d.js:2:82188)
    at k (https://shop.example.com/static/js/main.8f3a2c1d.js:2:161914)
    at MessagePort.T (https://shop.example.com/static/js/main.8f3a2c1d.js:2:162451)";
    check(
        "cra production",
        stack,
        &[
            f(Some("ProductList"), CRA, 2, 184533),
            f(Some("ra"), CRA, 2, 47211),
            f(Some("Bs"), CRA, 2, 93754),
            f(Some("wl"), CRA, 2, 82188),
            f(Some("k"), CRA, 2, 161914),
            f(Some("MessagePort.T"), CRA, 2, 162451),
        ],
    );
}

#[test]
fn chrome_react_umd_from_unpkg() {
    // `@` in the URL and a long message with a URL in it.
    let stack = "Error: Minified React error #185; visit https://reactjs.org/docs/error-decoder.html?invariant=185 for the full message or use the non-minified dev environment for full errors and additional helpful warnings.
    at Zg (https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js:148:290)
    at Ha (https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js:144:112)
    at Object.enqueueSetState (https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js:128:406)
    at u.setState (https://unpkg.com/react@18.2.0/umd/react.production.min.js:16:118)
    at t.componentDidUpdate (https://app.example.com/assets/index-4b8e21f0.js:40:9921)";
    let dom = "https://unpkg.com/react-dom@18.2.0/umd/react-dom.production.min.js";
    check(
        "react umd",
        stack,
        &[
            f(Some("Zg"), dom, 148, 290),
            f(Some("Ha"), dom, 144, 112),
            f(Some("Object.enqueueSetState"), dom, 128, 406),
            f(
                Some("u.setState"),
                "https://unpkg.com/react@18.2.0/umd/react.production.min.js",
                16,
                118,
            ),
            f(
                Some("t.componentDidUpdate"),
                "https://app.example.com/assets/index-4b8e21f0.js",
                40,
                9921,
            ),
        ],
    );
}

#[test]
fn chrome_react_component_stack() {
    // `errorInfo.componentStack` from a production build: host components have no location.
    let stack = "
    at Ol (https://app.example.com/static/js/main.1a2b3c.js:2:283719)
    at div
    at ErrorBoundary (https://app.example.com/static/js/main.1a2b3c.js:2:120345)
    at App";
    let main = "https://app.example.com/static/js/main.1a2b3c.js";
    check(
        "component stack",
        stack,
        &[
            f(Some("Ol"), main, 2, 283719),
            nat(Some("div"), None),
            f(Some("ErrorBoundary"), main, 2, 120345),
            nat(Some("App"), None),
        ],
    );
}

#[test]
fn chrome_webpack_urls() {
    check(
        "webpack:///",
        "Error: Request failed with status code 404
    at createError (webpack:///./node_modules/axios/lib/core/createError.js?:16:15)
    at settle (webpack:///./node_modules/axios/lib/core/settle.js?:17:12)
    at XMLHttpRequest.onloadend (webpack:///./node_modules/axios/lib/adapters/xhr.js?:54:7)",
        &[
            f(
                Some("createError"),
                "webpack:///./node_modules/axios/lib/core/createError.js?",
                16,
                15,
            ),
            f(
                Some("settle"),
                "webpack:///./node_modules/axios/lib/core/settle.js?",
                17,
                12,
            ),
            f(
                Some("XMLHttpRequest.onloadend"),
                "webpack:///./node_modules/axios/lib/adapters/xhr.js?",
                54,
                7,
            ),
        ],
    );
    // `eval` here is webpack's devtool wrapper, a function name, not an eval location.
    let rdd = "webpack-internal:///./node_modules/react-dom/cjs/react-dom.development.js";
    check(
        "webpack-internal",
        "TypeError: Cannot read properties of null (reading 'addEventListener')
    at eval (webpack-internal:///./src/components/Header.tsx:42:19)
    at commitHookEffectListMount (webpack-internal:///./node_modules/react-dom/cjs/react-dom.development.js:23150:26)
    at invokePassiveEffectMountInDEV (webpack-internal:///./node_modules/react-dom/cjs/react-dom.development.js:25154:13)",
        &[
            f(Some("eval"), "webpack-internal:///./src/components/Header.tsx", 42, 19),
            f(Some("commitHookEffectListMount"), rdd, 23150, 26),
            f(Some("invokePassiveEffectMountInDEV"), rdd, 25154, 13),
        ],
    );
    check(
        "source-mapped tsx",
        "ReferenceError: handleClick is not defined
    at App (webpack:///./src/App.tsx:12:5)
    at renderWithHooks (webpack:///./node_modules/react-dom/cjs/react-dom.development.js:14985:18)",
        &[
            f(Some("App"), "webpack:///./src/App.tsx", 12, 5),
            f(
                Some("renderWithHooks"),
                "webpack:///./node_modules/react-dom/cjs/react-dom.development.js",
                14985,
                18,
            ),
        ],
    );
}

#[test]
fn chrome_angular_zone_minified() {
    let poly = "https://app.example.com/polyfills.8c2a1f.js";
    let main = "https://app.example.com/main.3b1d9e.js";
    check(
        "zone.js",
        r#"Error: Uncaught (in promise): HttpErrorResponse: {"headers":{"normalizedNames":{},"lazyUpdate":null},"status":0}
    at resolvePromise (https://app.example.com/polyfills.8c2a1f.js:1:16453)
    at https://app.example.com/polyfills.8c2a1f.js:1:15590
    at o (https://app.example.com/main.3b1d9e.js:1:873104)
    at e.invokeTask (https://app.example.com/polyfills.8c2a1f.js:1:7321)
    at Object.onInvokeTask (https://app.example.com/main.3b1d9e.js:1:512883)
    at t.invokeTask (https://app.example.com/polyfills.8c2a1f.js:1:8021)"#,
        &[
            f(Some("resolvePromise"), poly, 1, 16453),
            f(None, poly, 1, 15590),
            f(Some("o"), main, 1, 873104),
            f(Some("e.invokeTask"), poly, 1, 7321),
            f(Some("Object.onInvokeTask"), main, 1, 512883),
            f(Some("t.invokeTask"), poly, 1, 8021),
        ],
    );
}

#[test]
fn chrome_async_frames() {
    check(
        "await chain",
        "Error: Request timed out
    at fetchWithTimeout (https://app.example.com/assets/api-9c1d.js:12:11)
    at async loadDashboard (https://app.example.com/assets/dashboard-77ab.js:3:20)
    at async Promise.all (index 0)
    at async init (https://app.example.com/assets/index-1f2e.js:88:5)",
        &[
            f(
                Some("fetchWithTimeout"),
                "https://app.example.com/assets/api-9c1d.js",
                12,
                11,
            ),
            f(
                Some("loadDashboard"),
                "https://app.example.com/assets/dashboard-77ab.js",
                3,
                20,
            ),
            nat(Some("Promise.all"), None),
            f(
                Some("init"),
                "https://app.example.com/assets/index-1f2e.js",
                88,
                5,
            ),
        ],
    );
}

#[test]
fn chrome_constructors_and_aliases() {
    check(
        "new / [as]",
        "Error: bad state
    at new Store (https://example.com/store.js:10:11)
    at Object.createStore [as create] (https://example.com/store.js:40:10)
    at new <anonymous> (https://example.com/main.js:7:3)
    at Module.<anonymous> (https://example.com/main.js:2:1)",
        &[
            f(Some("Store"), "https://example.com/store.js", 10, 11),
            f(
                Some("Object.createStore"),
                "https://example.com/store.js",
                40,
                10,
            ),
            f(None, "https://example.com/main.js", 7, 3),
            f(
                Some("Module.<anonymous>"),
                "https://example.com/main.js",
                2,
                1,
            ),
        ],
    );
}

#[test]
fn chrome_eval() {
    check(
        "eval",
        "Error: from eval
    at eval (eval at runSnippet (https://example.com/js/app.js:20:12), <anonymous>:1:7)
    at runSnippet (https://example.com/js/app.js:20:12)
    at HTMLButtonElement.<anonymous> (https://example.com/js/app.js:31:5)",
        &[
            f(Some("eval"), "https://example.com/js/app.js", 20, 12),
            f(Some("runSnippet"), "https://example.com/js/app.js", 20, 12),
            f(
                Some("HTMLButtonElement.<anonymous>"),
                "https://example.com/js/app.js",
                31,
                5,
            ),
        ],
    );
    let index = "http://localhost:8080/index.js";
    check(
        "nested eval",
        "Error: nested
    at eval (eval at <anonymous> (eval at outer (http://localhost:8080/index.js:4:3)), <anonymous>:1:7)
    at eval (eval at outer (http://localhost:8080/index.js:4:3), <anonymous>:1:1)
    at outer (http://localhost:8080/index.js:4:3)
    at http://localhost:8080/index.js:7:1",
        &[
            f(Some("eval"), index, 4, 3),
            f(Some("eval"), index, 4, 3),
            f(Some("outer"), index, 4, 3),
            f(None, index, 7, 1),
        ],
    );
    check(
        "new Function",
        "Error: template failed
    at anonymous (eval at compileTemplate (https://cdn.example.com/js/vendor.min.js:1:2345), <anonymous>:3:9)
    at new Widget (https://cdn.example.com/js/app.min.js:1:900)",
        &[
            f(Some("anonymous"), "https://cdn.example.com/js/vendor.min.js", 1, 2345),
            f(Some("Widget"), "https://cdn.example.com/js/app.min.js", 1, 900),
        ],
    );
    check(
        "eval with unknown call site falls back to the eval position",
        "Error: x
    at eval (eval at <anonymous> (unknown source), snippet.js:3:4)",
        &[f(Some("eval"), "snippet.js", 3, 4)],
    );
}

#[test]
fn chrome_native_frames() {
    check(
        "modern native",
        "TypeError: undefined is not a function
    at Array.map (<anonymous>)
    at renderRows (https://example.com/table.js:88:21)
    at new Promise (<anonymous>)
    at gen.next (<anonymous>)
    at <anonymous>",
        &[
            nat(Some("Array.map"), Some("<anonymous>")),
            f(Some("renderRows"), "https://example.com/table.js", 88, 21),
            nat(Some("Promise"), Some("<anonymous>")),
            nat(Some("gen.next"), Some("<anonymous>")),
            nat(None, Some("<anonymous>")),
        ],
    );
    check(
        "old chrome native",
        "TypeError: Cannot read property 'length' of undefined
    at Array.forEach (native)
    at processItems (http://example.com/js/app.js:120:9)
    at fn (native)
    at native",
        &[
            nat(Some("Array.forEach"), Some("native")),
            f(Some("processItems"), "http://example.com/js/app.js", 120, 9),
            nat(Some("fn"), Some("native")),
            nat(None, Some("native")),
        ],
    );
}

#[test]
fn chrome_wasm() {
    let module = "wasm://wasm/00a1b2c3:wasm-function[12]";
    check(
        "wasm-bindgen panic",
        "RuntimeError: unreachable
    at wasm://wasm/00a1b2c3:wasm-function[12]:0x3f
    at my_func (wasm://wasm/00a1b2c3:wasm-function[13]:0x1a2b)
    at <T as core::any::Any>::type_id::h3b7f0c2d (wasm://wasm/00a1b2c3:wasm-function[40]:0x9c10)
    at __wbg_call (https://app.example.com/pkg/app.js:345:22)
    at https://app.example.com/main.js:10:3",
        &[
            wasm(None, module, 63),
            wasm(
                Some("my_func"),
                "wasm://wasm/00a1b2c3:wasm-function[13]",
                0x1a2b,
            ),
            wasm(
                Some("<T as core::any::Any>::type_id::h3b7f0c2d"),
                "wasm://wasm/00a1b2c3:wasm-function[40]",
                0x9c10,
            ),
            f(
                Some("__wbg_call"),
                "https://app.example.com/pkg/app.js",
                345,
                22,
            ),
            f(None, "https://app.example.com/main.js", 10, 3),
        ],
    );
    check(
        "named wasm module",
        "RuntimeError: memory access out of bounds
    at $func201 (wasm://wasm/my_crate-5e6f7a8b:wasm-function[201]:0x2f3e1)",
        &[wasm(
            Some("$func201"),
            "wasm://wasm/my_crate-5e6f7a8b:wasm-function[201]",
            0x2f3e1,
        )],
    );
}

#[test]
fn chrome_blob_data_extension_urls() {
    let blob = "blob:https://app.example.com/6c1f3e2a-9b8d-4f7e-a1c2-3d4e5f607182";
    check(
        "worker blob",
        "Error: worker failed
    at processChunk (blob:https://app.example.com/6c1f3e2a-9b8d-4f7e-a1c2-3d4e5f607182:12:15)
    at self.onmessage (blob:https://app.example.com/6c1f3e2a-9b8d-4f7e-a1c2-3d4e5f607182:30:5)",
        &[
            f(Some("processChunk"), blob, 12, 15),
            f(Some("self.onmessage"), blob, 30, 5),
        ],
    );
    check(
        "data url",
        "Error: inline
    at data:text/javascript;base64,dGhyb3cgbmV3IEVycm9yKCJpbmxpbmUiKQ==:1:7
    at boot (data:text/javascript,import%20'./x.js':1:1)",
        &[
            f(
                None,
                "data:text/javascript;base64,dGhyb3cgbmV3IEVycm9yKCJpbmxpbmUiKQ==",
                1,
                7,
            ),
            f(Some("boot"), "data:text/javascript,import%20'./x.js'", 1, 1),
        ],
    );
    let bg = "chrome-extension://abcdefghijklmnopabcdefghijklmnop/background.js";
    check(
        "chrome extension",
        "TypeError: Failed to fetch
    at fetchSettings (chrome-extension://abcdefghijklmnopabcdefghijklmnop/background.js:55:24)
    at chrome-extension://abcdefghijklmnopabcdefghijklmnop/background.js:80:3",
        &[f(Some("fetchSettings"), bg, 55, 24), f(None, bg, 80, 3)],
    );
}

#[test]
fn chrome_urls_with_ports_queries_and_parens() {
    check(
        "port query hash",
        "Error: x
    at Foo.bar (http://localhost:3000/static/js/bundle.js?v=3.2.1#section:10:20)
    at https://cdn.example.com:8443/assets/app.min.js?build=77:1:5012
    at load (https://cdn.example.com:8443/assets/app.min.js:9)",
        &[
            f(
                Some("Foo.bar"),
                "http://localhost:3000/static/js/bundle.js?v=3.2.1#section",
                10,
                20,
            ),
            f(
                None,
                "https://cdn.example.com:8443/assets/app.min.js?build=77",
                1,
                5012,
            ),
            fl(
                Some("load"),
                "https://cdn.example.com:8443/assets/app.min.js",
                9,
            ),
        ],
    );
    check(
        "parentheses in file names",
        "Error: oops
    at fn (http://x/a (1).js:1:2)
    at http://x/a (1).js:5:9
    at Object.load [as handler] (http://x/lib(v2)/loader.js:10:4)
    at odd (http://x/a(.js:3:3)
    at odder (http://x/a).js:4:4)",
        &[
            f(Some("fn"), "http://x/a (1).js", 1, 2),
            f(None, "http://x/a (1).js", 5, 9),
            f(Some("Object.load"), "http://x/lib(v2)/loader.js", 10, 4),
            f(Some("odd"), "http://x/a(.js", 3, 3),
            f(Some("odder"), "http://x/a).js", 4, 4),
        ],
    );
}

#[test]
fn node_cjs_with_windows_paths_and_multiline_message() {
    let index = r"C:\Users\dev\My Projects (2024)\app\index.js";
    check(
        "module not found",
        r"Error: Cannot find module 'lodash'
Require stack:
- C:\Users\dev\My Projects (2024)\app\index.js
    at Module._resolveFilename (node:internal/modules/cjs/loader:1145:15)
    at Module._load (node:internal/modules/cjs/loader:986:27)
    at Module.require (node:internal/modules/cjs/loader:1233:19)
    at require (node:internal/modules/helpers:179:18)
    at Object.<anonymous> (C:\Users\dev\My Projects (2024)\app\index.js:1:11)
    at C:\Users\dev\My Projects (2024)\app\index.js:4:3",
        &[
            f(
                Some("Module._resolveFilename"),
                "node:internal/modules/cjs/loader",
                1145,
                15,
            ),
            f(
                Some("Module._load"),
                "node:internal/modules/cjs/loader",
                986,
                27,
            ),
            f(
                Some("Module.require"),
                "node:internal/modules/cjs/loader",
                1233,
                19,
            ),
            f(Some("require"), "node:internal/modules/helpers", 179, 18),
            f(Some("Object.<anonymous>"), index, 1, 11),
            f(None, index, 4, 3),
        ],
    );
}

#[test]
fn node_cjs_entry_point() {
    let loader = "node:internal/modules/cjs/loader";
    check(
        "cjs",
        "TypeError: Cannot read properties of undefined (reading 'toUpperCase')
    at formatName (/home/dev/project/lib/format.js:3:15)
    at Object.<anonymous> (/home/dev/project/index.js:5:13)
    at Module._compile (node:internal/modules/cjs/loader:1376:14)
    at Module._extensions..js (node:internal/modules/cjs/loader:1435:10)
    at Module.load (node:internal/modules/cjs/loader:1207:32)
    at Module._load (node:internal/modules/cjs/loader:1023:12)
    at Function.executeUserEntryPoint [as runMain] (node:internal/modules/run_main:135:12)
    at node:internal/main/run_main_module:28:49",
        &[
            f(Some("formatName"), "/home/dev/project/lib/format.js", 3, 15),
            f(
                Some("Object.<anonymous>"),
                "/home/dev/project/index.js",
                5,
                13,
            ),
            f(Some("Module._compile"), loader, 1376, 14),
            f(Some("Module._extensions..js"), loader, 1435, 10),
            f(Some("Module.load"), loader, 1207, 32),
            f(Some("Module._load"), loader, 1023, 12),
            f(
                Some("Function.executeUserEntryPoint"),
                "node:internal/modules/run_main",
                135,
                12,
            ),
            f(None, "node:internal/main/run_main_module", 28, 49),
        ],
    );
}

#[test]
fn node_esm_and_async() {
    check(
        "esm",
        "Error: boom
    at file:///home/dev/app/src/main.mjs:3:7
    at ModuleJob.run (node:internal/modules/esm/module_job:218:25)
    at async ModuleLoader.import (node:internal/modules/esm/loader:329:24)
    at async loadESM (node:internal/process/esm_loader:28:7)",
        &[
            f(None, "file:///home/dev/app/src/main.mjs", 3, 7),
            f(
                Some("ModuleJob.run"),
                "node:internal/modules/esm/module_job",
                218,
                25,
            ),
            f(
                Some("ModuleLoader.import"),
                "node:internal/modules/esm/loader",
                329,
                24,
            ),
            f(Some("loadESM"), "node:internal/process/esm_loader", 28, 7),
        ],
    );
    check(
        "fs promises",
        "Error: ENOENT: no such file or directory, open '/srv/app/config/local.json'
    at async open (node:internal/fs/promises:639:25)
    at async Object.readFile (node:internal/fs/promises:1242:14)
    at async loadConfig (/srv/app/src/config.js:14:18)
    at async Promise.all (index 1)
    at async main (/srv/app/src/index.js:8:3)",
        &[
            f(Some("open"), "node:internal/fs/promises", 639, 25),
            f(
                Some("Object.readFile"),
                "node:internal/fs/promises",
                1242,
                14,
            ),
            f(Some("loadConfig"), "/srv/app/src/config.js", 14, 18),
            nat(Some("Promise.all"), None),
            f(Some("main"), "/srv/app/src/index.js", 8, 3),
        ],
    );
    check(
        "net error with address in message",
        "Error: connect ECONNREFUSED 127.0.0.1:5432
    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1595:16) {
  errno: -111,
  code: 'ECONNREFUSED',
  syscall: 'connect',
  address: '127.0.0.1',
  port: 5432
}",
        &[f(Some("TCPConnectWrap.afterConnect"), "node:net", 1595, 16)],
    );
    check(
        "repl and eval entry",
        "Error: repl
    at REPL3:1:7
    at [eval]:1:1
    at Script.runInThisContext (node:vm:129:12)",
        &[
            f(None, "REPL3", 1, 7),
            f(None, "[eval]", 1, 1),
            f(Some("Script.runInThisContext"), "node:vm", 129, 12),
        ],
    );
}

#[test]
fn chrome_message_lines_are_not_frames() {
    check(
        "message with `at` lines",
        "Error: Validation failed:
  name is required
  at least one item must be selected
    at validate (https://forms.example.com/js/form.js:44:11)
    at HTMLFormElement.onSubmit (https://forms.example.com/js/form.js:90:7)",
        &[
            f(
                Some("validate"),
                "https://forms.example.com/js/form.js",
                44,
                11,
            ),
            f(
                Some("HTMLFormElement.onSubmit"),
                "https://forms.example.com/js/form.js",
                90,
                7,
            ),
        ],
    );
    check(
        "message that looks like a Firefox frame",
        "Error: invalid address user@mail.example.com:25:1
    at sendMail (https://example.com/mail.js:5:9)",
        &[f(Some("sendMail"), "https://example.com/mail.js", 5, 9)],
    );
    check(
        "crlf line endings",
        "Error: windows\r\n    at a (C:\\app\\a.js:1:2)\r\n    at b (C:\\app\\b.js:3:4)\r\n",
        &[
            f(Some("a"), r"C:\app\a.js", 1, 2),
            f(Some("b"), r"C:\app\b.js", 3, 4),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Firefox / SpiderMonkey
// ---------------------------------------------------------------------------------------------

#[test]
fn firefox_react_production_build() {
    check(
        "cra production",
        "ProductList@https://shop.example.com/static/js/main.8f3a2c1d.js:2:184533
ra@https://shop.example.com/static/js/main.8f3a2c1d.js:2:47211
Bs@https://shop.example.com/static/js/main.8f3a2c1d.js:2:93754
T@https://shop.example.com/static/js/main.8f3a2c1d.js:2:162451
EventHandlerNonNull*@https://shop.example.com/static/js/main.8f3a2c1d.js:2:162677
@https://shop.example.com/static/js/main.8f3a2c1d.js:2:163001
",
        &[
            f(Some("ProductList"), CRA, 2, 184533),
            f(Some("ra"), CRA, 2, 47211),
            f(Some("Bs"), CRA, 2, 93754),
            f(Some("T"), CRA, 2, 162451),
            f(None, CRA, 2, 162677),
            f(None, CRA, 2, 163001),
        ],
    );
}

#[test]
fn firefox_nested_function_names() {
    let app = "https://example.com/js/app.js";
    check(
        "/< markers",
        "getData/<@https://example.com/js/app.js:25:17
promise callback*getData@https://example.com/js/app.js:23:10
init/loader<@https://example.com/js/app.js:40:5
Foo.prototype.bar/</<@https://example.com/js/app.js:44:2
get items@https://example.com/js/app.js:15:9
@https://example.com/js/app.js:50:1",
        &[
            f(Some("getData"), app, 25, 17),
            f(Some("getData"), app, 23, 10),
            f(Some("init/loader"), app, 40, 5),
            f(Some("Foo.prototype.bar"), app, 44, 2),
            f(Some("get items"), app, 15, 9),
            f(None, app, 50, 1),
        ],
    );
}

#[test]
fn firefox_async_frames() {
    check(
        "async*",
        "fetchWithTimeout@https://app.example.com/assets/api-9c1d.js:12:11
async*loadDashboard@https://app.example.com/assets/dashboard-77ab.js:3:20
async*init@https://app.example.com/assets/index-1f2e.js:88:5
EventListener.handleEvent*@https://app.example.com/assets/index-1f2e.js:95:3
setTimeout handler*start@https://app.example.com/assets/index-1f2e.js:99:1",
        &[
            f(
                Some("fetchWithTimeout"),
                "https://app.example.com/assets/api-9c1d.js",
                12,
                11,
            ),
            f(
                Some("loadDashboard"),
                "https://app.example.com/assets/dashboard-77ab.js",
                3,
                20,
            ),
            f(
                Some("init"),
                "https://app.example.com/assets/index-1f2e.js",
                88,
                5,
            ),
            f(None, "https://app.example.com/assets/index-1f2e.js", 95, 3),
            f(
                Some("start"),
                "https://app.example.com/assets/index-1f2e.js",
                99,
                1,
            ),
        ],
    );
}

#[test]
fn firefox_eval_and_function() {
    let index = "http://localhost:8080/index.js";
    check(
        "eval",
        "@http://localhost:8080/index.js line 2 > eval:1:5
runSnippet@http://localhost:8080/index.js:2:3
@http://localhost:8080/index.js:5:1",
        &[
            fl(Some("eval"), index, 2),
            f(Some("runSnippet"), index, 2, 3),
            f(None, index, 5, 1),
        ],
    );
    let tpl = "https://example.com/js/templates.js";
    check(
        "Function constructor and nested eval",
        "anonymous@https://example.com/js/templates.js line 10 > Function:3:9
@https://example.com/js/templates.js line 10 > Function:1:1
inner@https://example.com/js/templates.js line 4 > eval line 1 > eval:1:1
render@https://example.com/js/templates.js:12:10",
        &[
            fl(Some("anonymous"), tpl, 10),
            fl(Some("eval"), tpl, 10),
            fl(Some("inner"), tpl, 4),
            f(Some("render"), tpl, 12, 10),
        ],
    );
    check(
        "devtools console",
        "@debugger eval code:1:7\n",
        &[f(None, "debugger eval code", 1, 7)],
    );
}

#[test]
fn firefox_wasm() {
    check(
        "wasm",
        "my_func@http://x/a.wasm:wasm-function[12]:0x3f
my_crate::run::h0a1b2c3d@http://x/pkg/app_bg.wasm:wasm-function[77]:0x1f00
__wbg_adapter_22@http://x/pkg/app.js:210:10
@http://x/main.js:5:1",
        &[
            wasm(Some("my_func"), "http://x/a.wasm:wasm-function[12]", 63),
            wasm(
                Some("my_crate::run::h0a1b2c3d"),
                "http://x/pkg/app_bg.wasm:wasm-function[77]",
                0x1f00,
            ),
            f(Some("__wbg_adapter_22"), "http://x/pkg/app.js", 210, 10),
            f(None, "http://x/main.js", 5, 1),
        ],
    );
}

#[test]
fn firefox_special_urls() {
    check(
        "extension, blob, data, file, scoped npm path",
        "handler@moz-extension://2c127fa4-62c7-7e4f-90e5-472b45eecfdc/content.js:12:3
@blob:https://app.example.com/6c1f3e2a-9b8d-4f7e-a1c2-3d4e5f607182:1:2
@data:text/javascript;base64,dGhyb3c=:1:2
load@file:///C:/Users/dev/site/app.js:3:4
useQuery@webpack:///./node_modules/@tanstack/react-query/build/lib/useBaseQuery.mjs:40:11
init@resource://gre/modules/Foo.sys.mjs:7:3",
        &[
            f(
                Some("handler"),
                "moz-extension://2c127fa4-62c7-7e4f-90e5-472b45eecfdc/content.js",
                12,
                3,
            ),
            f(
                None,
                "blob:https://app.example.com/6c1f3e2a-9b8d-4f7e-a1c2-3d4e5f607182",
                1,
                2,
            ),
            f(None, "data:text/javascript;base64,dGhyb3c=", 1, 2),
            f(Some("load"), "file:///C:/Users/dev/site/app.js", 3, 4),
            f(
                Some("useQuery"),
                "webpack:///./node_modules/@tanstack/react-query/build/lib/useBaseQuery.mjs",
                40,
                11,
            ),
            f(Some("init"), "resource://gre/modules/Foo.sys.mjs", 7, 3),
        ],
    );
}

#[test]
fn firefox_message_line_is_not_a_frame() {
    check(
        "message prepended by the caller",
        "Error: mail me@example.com:1:2
send@https://example.com/mail.js:5:9",
        &[f(Some("send"), "https://example.com/mail.js", 5, 9)],
    );
    check(
        "old firefox without columns",
        "foo@http://example.com/old.js:41\n@http://example.com/old.js:60\n",
        &[
            fl(Some("foo"), "http://example.com/old.js", 41),
            fl(None, "http://example.com/old.js", 60),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Safari / JavaScriptCore
// ---------------------------------------------------------------------------------------------

#[test]
fn safari_react_production_build() {
    check(
        "cra production",
        "ProductList@https://shop.example.com/static/js/main.8f3a2c1d.js:2:184533
ra@https://shop.example.com/static/js/main.8f3a2c1d.js:2:47211
map@[native code]
@https://shop.example.com/static/js/main.8f3a2c1d.js:2:93754
global code@https://shop.example.com/static/js/main.8f3a2c1d.js:2:1",
        &[
            f(Some("ProductList"), CRA, 2, 184533),
            f(Some("ra"), CRA, 2, 47211),
            nat(Some("map"), Some("[native code]")),
            f(None, CRA, 2, 93754),
            f(Some("global code"), CRA, 2, 1),
        ],
    );
}

#[test]
fn safari_eval() {
    let index = "http://localhost:8080/index.js";
    check(
        "eval code without location",
        "eval code
eval@[native code]
runSnippet@http://localhost:8080/index.js:2:7
global code@http://localhost:8080/index.js:5:11",
        &[
            nat(Some("eval code"), None),
            nat(Some("eval"), Some("[native code]")),
            f(Some("runSnippet"), index, 2, 7),
            f(Some("global code"), index, 5, 11),
        ],
    );
    check(
        "eval code with location",
        "eval code@http://localhost:8080/index.js:3:1
eval code@
eval@[native code]",
        &[
            f(Some("eval code"), index, 3, 1),
            nat(Some("eval code"), None),
            nat(Some("eval"), Some("[native code]")),
        ],
    );
}

#[test]
fn safari_async_and_native() {
    check(
        "async resume",
        "@https://app.example.com/assets/api.js:12:20
asyncFunctionResume@[native code]
promiseReactionJobWithoutPromise@[native code]
promiseReactionJob@[native code]",
        &[
            f(None, "https://app.example.com/assets/api.js", 12, 20),
            nat(Some("asyncFunctionResume"), Some("[native code]")),
            nat(
                Some("promiseReactionJobWithoutPromise"),
                Some("[native code]"),
            ),
            nat(Some("promiseReactionJob"), Some("[native code]")),
        ],
    );
    check(
        "bare native and module code",
        "forEach@[native code]
processItems@http://example.com/js/app.js:120:21
[native code]
module code@http://example.com/js/main.mjs:4:13",
        &[
            nat(Some("forEach"), Some("[native code]")),
            f(
                Some("processItems"),
                "http://example.com/js/app.js",
                120,
                21,
            ),
            nat(None, Some("[native code]")),
            f(Some("module code"), "http://example.com/js/main.mjs", 4, 13),
        ],
    );
}

#[test]
fn safari_wasm_and_extension() {
    check(
        "wasm",
        "<?>.wasm-function[12]@[wasm code]
<?>.wasm-function[my_func]@[wasm code]
wasm-stub@[wasm code]
run@http://x/pkg/app.js:210:10",
        &[
            nat(Some("<?>.wasm-function[12]"), Some("[wasm code]")),
            nat(Some("<?>.wasm-function[my_func]"), Some("[wasm code]")),
            nat(Some("wasm-stub"), Some("[wasm code]")),
            f(Some("run"), "http://x/pkg/app.js", 210, 10),
        ],
    );
    check(
        "web extension",
        "injected@safari-web-extension://E7C9A0F2-1B3D-4E5F-8A9B-0C1D2E3F4A5B/content.js:5:10
global code@safari-web-extension://E7C9A0F2-1B3D-4E5F-8A9B-0C1D2E3F4A5B/content.js:40:1",
        &[
            f(
                Some("injected"),
                "safari-web-extension://E7C9A0F2-1B3D-4E5F-8A9B-0C1D2E3F4A5B/content.js",
                5,
                10,
            ),
            f(
                Some("global code"),
                "safari-web-extension://E7C9A0F2-1B3D-4E5F-8A9B-0C1D2E3F4A5B/content.js",
                40,
                1,
            ),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Garbage and limits
// ---------------------------------------------------------------------------------------------

#[test]
fn garbage_yields_no_frames() {
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let lossy = String::from_utf8_lossy(&bytes).into_owned();
    let long = "x".repeat(100_000);
    for input in [
        "",
        "\n\n\r\n",
        "Error: only a message",
        "TypeError: x is not a function\n  with a second line\n",
        "    at",
        "    at ",
        "    at ()",
        "    at (",
        "    at )",
        "@",
        "@@@",
        "@\n@\n@",
        "foo@",
        "@:1:2",
        ":1:2",
        "at foo bar baz",
        "at the door (really)",
        "    at eval (eval at ",
        "    at f (x:wasm-function[",
        "fn@file line  > eval",
        "ünïcödé ∂ƒ©˙∆˚¬ 🦀🦀🦀",
        "    at 🦀🦀 🦀",
        lossy.as_str(),
        long.as_str(),
    ] {
        assert_eq!(parse(input), [], "input {input:?}");
    }
}

#[test]
fn pathological_lines_do_not_panic() {
    // Each is 100k+ characters: linear-time parsing keeps this test instant.
    let n = 100_000;
    let inputs = [
        format!("    at {}", "(".repeat(n)),
        format!("    at {}", ")".repeat(n)),
        format!("    at f {})", "(".repeat(n)),
        format!("    at {}", "eval at ".repeat(n)),
        format!("    at eval ({}x:1:2))", "eval at f (".repeat(n)),
        ":1".repeat(n),
        "@".repeat(n),
        " line 1 > ".repeat(n),
        "*".repeat(n),
        "    at ".repeat(n),
        "é:".repeat(n),
        "wasm-function[".repeat(n),
        format!("@{}", "9".repeat(n)),
    ];
    for input in &inputs {
        let _ = parse(input);
    }
    let frames = parse(&format!("    at f (http://x/{}.js:1:2)", "é".repeat(n)));
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].line, Some(1));
}

#[test]
fn unicode_names_and_paths() {
    check(
        "v8",
        "Error: ошибка\n    at 函数 (https://例子.测试/脚本.js:1:2)\n    at Ünïcode.méthod (/home/ü/a b.js:3:4)",
        &[
            f(Some("函数"), "https://例子.测试/脚本.js", 1, 2),
            f(Some("Ünïcode.méthod"), "/home/ü/a b.js", 3, 4),
        ],
    );
    check(
        "gecko",
        "函数@https://例子.测试/脚本.js:1:2",
        &[f(Some("函数"), "https://例子.测试/脚本.js", 1, 2)],
    );
}

#[test]
fn unicode_white_space_is_trimmed_like_str_trim() {
    // Lines, names and locations are trimmed of Unicode White_Space (`char::is_whitespace`),
    // not only ASCII; a BOM (U+FEFF) is not white space and stays.
    check(
        "v8",
        "Error: x\n\u{a0}\u{a0}at f (a.js:1:2)\u{3000}\n\u{2028}at \u{2003}g\u{2003} ( b.js:3:4\u{85} )",
        &[f(Some("f"), "a.js", 1, 2), f(Some("g"), "b.js", 3, 4)],
    );
    check(
        "gecko",
        "fn\u{85}@a.js:1:2\u{205f}\n\u{feff}h@b.js:3:4\n\u{1680}@\u{202f}c.js:5:6",
        &[
            f(Some("fn"), "a.js", 1, 2),
            f(Some("\u{feff}h"), "b.js", 3, 4),
            f(None, "c.js", 5, 6),
        ],
    );
}

#[test]
fn lone_carriage_returns_separate_lines() {
    check(
        "v8",
        "Error: old mac\r    at a (a.js:1:2)\r    at b (b.js:3:4)\r",
        &[f(Some("a"), "a.js", 1, 2), f(Some("b"), "b.js", 3, 4)],
    );
}

#[test]
fn component_names_beyond_ascii() {
    // A bare `at Name` is a frame when every character is an ASCII letter or digit, `_`, `$`,
    // or non-ASCII and not white space (so `at ☃` counts too: no engine writes it).
    check(
        "letters",
        "\n    at Компонент\n    at $_ü9\n    at div",
        &[
            nat(Some("Компонент"), None),
            nat(Some("$_ü9"), None),
            nat(Some("div"), None),
        ],
    );
    check("symbol", "    at ☃", &[nat(Some("☃"), None)]);
    for line in [
        "    at a-b",
        "    at a\u{a0}b",
        "    at a\u{3000}b",
        "    at a.b",
    ] {
        assert_eq!(parse(line), [], "{line:?}");
    }
}

#[test]
fn wasm_offsets_in_either_case_of_hex() {
    let file = "wasm://wasm/1:wasm-function[2]";
    check(
        "hex",
        "    at wasm://wasm/1:wasm-function[2]:0x3F\n    at wasm://wasm/1:wasm-function[2]:0xaB\n    at wasm://wasm/1:wasm-function[2]:0x\n    at wasm://wasm/1:wasm-function[2]:0xg1",
        &[
            wasm(None, file, 63),
            wasm(None, file, 171),
            nat(None, Some(file)),
            nat(None, Some(file)),
        ],
    );
}

#[test]
fn numbers_that_overflow_u32_become_none() {
    let max = "    at f (a.js:4294967295:4294967295)";
    assert_eq!(parse(max), [f(Some("f"), "a.js", u32::MAX, u32::MAX)]);
    let over = "    at f (a.js:4294967296:99999999999999999999)";
    assert_eq!(parse(over), [nat(Some("f"), Some("a.js"))]);
    assert_eq!(parse("g@b.js:1:4294967296"), [fl(Some("g"), "b.js", 1)]);
    assert_eq!(
        parse("    at wasm://wasm/1:wasm-function[1]:0x100000000"),
        [nat(None, Some("wasm://wasm/1:wasm-function[1]"))]
    );
}

proptest::proptest! {
    /// Guards the "never panics, never an empty frame" contract on input no corpus anticipated.
    #[test]
    fn parse_is_total(
        any in proptest::prelude::any::<String>(),
        framey in "(( {0,4}at |@)?[a-zé🦀 ().:/<>*@\\[\\]0-9x,\n-]{0,60}\n?){0,8}",
    ) {
        for frame in parse(&any).into_iter().chain(parse(&framey)) {
            proptest::prop_assert!(frame.function.is_some() || frame.file.is_some());
            proptest::prop_assert!(frame.function.as_deref() != Some(""));
            proptest::prop_assert!(frame.file.as_deref() != Some(""));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Real-world corpus: `tests/stacks/*.txt` (format and sources in `tests/stacks/README.md`)
// ---------------------------------------------------------------------------------------------

/// One trace of the real-world corpus with the frames it must parse to.
struct Trace {
    /// `file.txt: case name`, for messages.
    name: String,
    stack: String,
    frames: Vec<Frame>,
}

/// Reads every `tests/stacks/*.txt` file into traces.
fn real_world_traces() -> Vec<Trace> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stacks");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    paths.sort();
    let mut traces = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        traces.extend(parse_corpus_file(&file, &text));
    }
    traces
}

/// Parses one corpus file: `=== name`, header lines, `--- stack`, the stack verbatim,
/// `--- frames`, then one `function | file | line | column` line per frame (`-` for none).
fn parse_corpus_file(file: &str, text: &str) -> Vec<Trace> {
    #[derive(PartialEq)]
    enum Part {
        Outside,
        Header,
        Stack,
        Frames,
    }
    let mut traces: Vec<Trace> = Vec::new();
    let mut part = Part::Outside;
    let mut stack_lines: Vec<&str> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{file}:{}", n + 1);
        if let Some(name) = line.strip_prefix("=== ") {
            traces.push(Trace {
                name: format!("{file}: {name}"),
                stack: String::new(),
                frames: Vec::new(),
            });
            part = Part::Header;
        } else if line == "--- stack" {
            assert!(part == Part::Header, "{}: `--- stack` outside a case", at());
            part = Part::Stack;
            stack_lines.clear();
        } else if line == "--- frames" {
            assert!(
                part == Part::Stack,
                "{}: `--- frames` before `--- stack`",
                at()
            );
            traces.last_mut().unwrap().stack = stack_lines.join("\n");
            part = Part::Frames;
        } else if part == Part::Stack {
            stack_lines.push(line);
        } else if part == Part::Frames && !line.trim().is_empty() && !line.starts_with('#') {
            let fields: Vec<&str> = line.split(" | ").collect();
            let [function, file, line_no, column] = fields[..] else {
                panic!("{}: a frame is `function | file | line | column`", at());
            };
            let text = |s: &str| (s != "-").then(|| s.to_owned());
            let num = |s: &str| {
                (s != "-").then(|| s.parse::<u32>().unwrap_or_else(|e| panic!("{}: {e}", at())))
            };
            traces.last_mut().unwrap().frames.push(Frame {
                function: text(function),
                file: text(file),
                line: num(line_no),
                column: num(column),
                ..Frame::default()
            });
        }
    }
    assert!(
        part != Part::Stack && part != Part::Header,
        "{file}: the last case is cut short"
    );
    traces
}

/// Compact `function | file | line | column` form of a frame, as in the corpus files.
fn show(f: &Frame) -> String {
    let text = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let num = |n: Option<u32>| n.map_or_else(|| "-".into(), |n| n.to_string());
    format!(
        "{} | {} | {} | {}",
        text(&f.function),
        text(&f.file),
        num(f.line),
        num(f.column)
    )
}

/// Traces of the real-world corpus the parser is allowed to get wrong (with the reason).
const KNOWN_MISSES: &[&str] = &[];

#[test]
fn real_world_corpus() {
    let traces = real_world_traces();
    let (mut frames, mut right, mut counted, mut exact) = (0usize, 0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    // Per corpus file: (file, frames, frames right).
    let mut per_file: Vec<(String, usize, usize)> = Vec::new();
    for t in &traces {
        let got = parse(&t.stack);
        let file = t.name.split(':').next().unwrap_or_default();
        if per_file.last().is_none_or(|(f, _, _)| f != file) {
            per_file.push((file.to_owned(), 0, 0));
        }
        let ok = got.iter().zip(&t.frames).filter(|(g, e)| g == e).count();
        if let Some(last) = per_file.last_mut() {
            last.1 += t.frames.len();
            last.2 += ok;
        }
        frames += t.frames.len();
        right += ok;
        counted += usize::from(got.len() == t.frames.len());
        if got == t.frames {
            exact += 1;
        } else {
            let mut report = format!("--- {}\n", t.name);
            for i in 0..got.len().max(t.frames.len()) {
                let (g, e) = (got.get(i), t.frames.get(i));
                if g != e {
                    let side = |f: Option<&Frame>| f.map_or_else(|| "(none)".into(), show);
                    report +=
                        &format!("  #{i} expected {}\n  #{i}      got {}\n", side(e), side(g));
                }
            }
            failures.push((t.name.clone(), report));
        }
    }
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b as f64;
    println!(
        "real-world corpus: {} traces, {frames} frames; frames exactly right {right}/{frames} = {:.1} %; \
         traces with the right frame count {counted}/{} = {:.1} %; traces exactly right {exact}/{} = {:.1} %",
        traces.len(),
        pct(right, frames),
        traces.len(),
        pct(counted, traces.len()),
        traces.len(),
        pct(exact, traces.len()),
    );
    for (file, n, ok) in &per_file {
        println!("  {file}: {ok}/{n} frames = {:.1} %", pct(*ok, *n));
    }
    for (_, report) in &failures {
        print!("{report}");
    }
    assert!(
        traces.len() >= 100,
        "corpus too small: {} traces",
        traces.len()
    );
    assert!(
        pct(right, frames) >= 95.0,
        "fewer than 95 % of frames exactly right"
    );
    let unexpected: Vec<_> = failures
        .iter()
        .filter(|(name, _)| !KNOWN_MISSES.contains(&name.as_str()))
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        unexpected.is_empty(),
        "traces parsed wrong: {unexpected:#?}"
    );
}
