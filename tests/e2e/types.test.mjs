// The package's TypeScript declarations, checked the way an application sees them: the
// built package copied into a project's node_modules (as npm installs it), resolved through
// its exports map (`moduleResolution: "bundler"`, the `types` conditions), and
// `types/usage.tsx` (the API as an application calls it: init with beforeSend, captures and
// their ids, the scope, React 19's root handlers, the ErrorBoundary, the Vite plugin)
// compiled with `tsc --noEmit` in strict mode. The sample's `@ts-expect-error` lines are
// misuses the types must refuse; the second test loosens one declaration to `any` and
// expects the check to fail, so the check is known to be able to.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { PKG, ROOT } from "./harness.mjs";

const HERE = path.join(import.meta.dirname, "types");
const TSC = path.join(import.meta.dirname, "node_modules/typescript/bin/tsc");

/** A project beside the sample (so `tests/e2e/node_modules` provides react's and node's
 * types) with the package in its node_modules, `index.d.ts` passed through `edit`; returns
 * tsc's exit status and output, and removes the project. */
function check(edit = (text) => text) {
  const dir = fs.mkdtempSync(path.join(HERE, ".check-"));
  try {
    const pkg = path.join(dir, "node_modules/faultline-reporter");
    fs.cpSync(PKG, pkg, { recursive: true });
    const dts = path.join(pkg, "index.d.ts");
    fs.writeFileSync(dts, edit(fs.readFileSync(dts, "utf8")));
    // The Vite plugin's types need Vite's; the dashboard's install has it.
    fs.symlinkSync(path.join(ROOT, "www/node_modules/vite"), path.join(dir, "node_modules/vite"));
    for (const file of ["tsconfig.json", "usage.tsx"]) fs.copyFileSync(path.join(HERE, file), path.join(dir, file));
    const run = spawnSync(process.execPath, [TSC, "-p", path.join(dir, "tsconfig.json")], { encoding: "utf8" });
    return { status: run.status, output: (run.stdout + run.stderr).replaceAll(dir + path.sep, "") };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test("the declarations accept how an application uses the package, and refuse its misuses", () => {
  const { status, output } = check();
  assert.equal(status, 0, `tsc --noEmit failed:\n${output}`);
});

test("a declaration loosened to any fails the check (an unused @ts-expect-error)", () => {
  const loosened = (text) => {
    const strict = "export function captureException(error: unknown, context?: CaptureContext): string;";
    assert.ok(text.includes(strict), "index.d.ts declares captureException as the sample expects");
    return text.replace(strict, "export function captureException(error: unknown, context?: CaptureContext): any;");
  };
  const { status, output } = check(loosened);
  assert.notEqual(status, 0, "tsc accepted a loosened declaration");
  assert.match(output, /usage\.tsx\(\d+,\d+\): error TS2578: Unused '@ts-expect-error' directive/);
});
