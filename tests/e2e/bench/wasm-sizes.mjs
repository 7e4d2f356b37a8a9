// Where a wasm module's bytes go: the size of each function body (code section), named by
// the module's "name" section, summed into the parts of the reporter, plus the data
// segments. For `cargo xtask bench reporter`, which passes a build optimized like the
// shipped one but keeping its names (`wasm-opt -g`); sizes are before gzip.

function reader(buf, at = 0) {
  const r = {
    at,
    byte: () => buf[r.at++],
    u32() {
      let n = 0;
      let shift = 0;
      for (;;) {
        const b = buf[r.at++];
        n += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return n;
        shift += 7;
      }
    },
    name() {
      const len = r.u32();
      const s = new TextDecoder().decode(buf.subarray(r.at, r.at + len));
      r.at += len;
      return s;
    },
  };
  return r;
}

function limits(r) {
  const flags = r.byte();
  r.u32();
  if (flags & 1) r.u32();
}

// Function sizes by name, and the data segments' bytes.
export function functionSizes(buf) {
  const r = reader(buf, 8);
  let imported = 0;
  const bodies = [];
  const names = new Map();
  let data = 0;
  while (r.at < buf.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.at + size;
    if (id === 2) {
      for (let n = r.u32(); n > 0; n--) {
        r.name();
        r.name();
        const kind = r.byte();
        if (kind === 0) (imported++, r.u32());
        else if (kind === 1) (r.byte(), limits(r));
        else if (kind === 2) limits(r);
        else if (kind === 3) (r.byte(), r.byte());
        else if (kind === 4) (r.byte(), r.u32());
        else throw new Error(`import kind ${kind}`);
      }
    } else if (id === 10) {
      for (let n = r.u32(); n > 0; n--) {
        const len = r.u32();
        bodies.push(len);
        r.at += len;
      }
    } else if (id === 11) {
      data = size;
    } else if (id === 0 && r.name() === "name") {
      while (r.at < end) {
        const sub = r.byte();
        const subEnd = r.u32() + r.at;
        if (sub === 1) {
          for (let n = r.u32(); n > 0; n--) {
            const idx = r.u32();
            names.set(idx, r.name());
          }
        }
        r.at = subEnd;
      }
    }
    r.at = end;
  }
  const sizes = bodies.map((bytes, i) => ({ name: names.get(imported + i) ?? `#${imported + i}`, bytes }));
  return { sizes, data };
}

// The reporter's parts, first match wins (exports and their shims carry the export's name).
const PARTS = [
  ["delivery (the outbox)", /outbox/i],
  ["stack parser and frame JSON", /stack::|frames|json::|push_frame/],
  ["URL scrubbing", /scrub/i],
  ["SHA-256 and anonymization", /sha2|digest|anonymi[sz]e|Sha256/],
  ["the scope, records built and fitted to the schema's limits", /^record |^scopeSet|::record::|fit|META_BUDGET/],
  ["folding, sampling, per-page cap (the gate)", /gate|admit/],
  ["panic handling and formatting", /panic|fmt::|rust_begin_unwind|slice_index|_fail\b|unwrap_failed|expect_failed/],
  ["allocator, Vec and String growth", /lol_alloc|alloc::|alloc\[|raw_vec|RawVec|__rust_(alloc|dealloc|realloc)|dlmalloc/],
  ["wasm-bindgen and js-sys support", /wasm_bindgen|__wbindgen|externref|js_sys|__wbg/],
  ["core (iterators, memchr, memcpy, UTF-8)", /core::|core\[|memchr|memcpy|memmove|memset|memcmp|<char>/],
];

export function breakdown(buf) {
  const { sizes, data } = functionSizes(buf);
  const parts = new Map(PARTS.map(([name]) => [name, 0]));
  parts.set("other", 0);
  for (const { name, bytes } of sizes) {
    const part = PARTS.find(([, re]) => re.test(name))?.[0] ?? "other";
    parts.set(part, parts.get(part) + bytes);
  }
  const code = sizes.reduce((n, f) => n + f.bytes, 0);
  const largest = sizes.slice().sort((a, b) => b.bytes - a.bytes).slice(0, 8);
  return { parts: [...parts].filter(([, b]) => b > 0).sort((a, b) => b[1] - a[1]), code, data, largest };
}
