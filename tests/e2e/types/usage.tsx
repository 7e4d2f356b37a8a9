// How an application uses faultline-reporter, type-checked by types.test.mjs with
// `tsc --noEmit` against the package's .d.ts files (resolved through its exports map, as a
// bundler does). Each `@ts-expect-error` is a misuse the types must refuse: were a type
// loosened to `any`, the directive would be unused and the check would fail.

import {
  MAX_BREADCRUMBS,
  addBreadcrumb,
  captureException,
  captureMessage,
  close,
  flush,
  init,
  onNotice,
  setContext,
  setExtra,
  setTag,
  setTags,
  setUser,
  stats,
  withScope,
  type FaultlineRecord,
  type Notice,
  type Options,
} from "faultline-reporter";
import { ErrorBoundary, InlineNotice, reactErrorHandler } from "faultline-reporter/react";
import faultlineSourcemaps, { uploadSourcemap, type UploadedSourcemap } from "faultline-reporter/vite";
import { createRoot } from "react-dom/client";

const options: Options = {
  endpoint: "https://faultline.example/logs/ingest",
  key: "public-key",
  service: "admin-panel",
  release: "admin@1.4.2",
  environment: "production",
  sampleRate: 0.5,
  denyUrlParams: ["session", /^sig_/],
  beforeSend(record: FaultlineRecord) {
    if (record.meta.url?.startsWith("/health")) return null;
    record.meta.tags = { ...record.meta.tags, checked: "yes" };
    return record;
  },
};

export async function start(): Promise<void> {
  const ready: boolean = await init(options);
  if (!ready) console.warn("reporting is off");
  setUser(42);
  setUser("user-7");
  setUser(null);
  setTag("tenant", "acme");
  setTags({ plan: "pro", region: "eu" });
  setExtra("cart", { items: 3 });
  setContext("device", { memory: 8 });
  addBreadcrumb({ category: "ui.click", message: "button#save" });
  const id: string = captureException(new Error("save failed"), { tags: { page: "orders" } });
  const other: string = captureMessage("quota near", "WARNING");
  withScope((scope) => {
    scope.setTag("job", "export");
    scope.setExtra("rows", 10_000);
    captureException("not an Error");
  });
  const n: number = withScope(() => 3);
  const stop: () => void = onNotice((notices: Notice[]) => notices.map((x) => x.severity));
  stop();
  const s = stats();
  const sent: number = s.sent + MAX_BREADCRUMBS;
  const flushed: boolean = await flush(2000);
  await close();
  console.log(id, other, n, sent, flushed);

  // @ts-expect-error: the endpoint and the key are required
  await init({ service: "x" });
  // @ts-expect-error: the event id is a string
  const wrong: number = captureException(new Error("x"));
  // @ts-expect-error: a user id is a string, a number or null
  setUser({ id: 1 });
  // @ts-expect-error: tag values are strings
  setTags({ count: 3 });
  // @ts-expect-error: beforeSend returns a record, null or nothing
  await init({ ...options, beforeSend: () => "drop" });
  console.log(wrong);
}

const root = createRoot(document.getElementById("root")!, {
  onUncaughtError: reactErrorHandler(),
  onCaughtError: reactErrorHandler((error, info) => console.warn(error, info.componentStack)),
});
root.render(
  <ErrorBoundary
    fallback={({ error, reset }) => <button onClick={reset}>{String(error)}</button>}
    tags={{ area: "orders" }}
  >
    <InlineNotice rule="ui_user_errors">{(notice) => notice.message}</InlineNotice>
  </ErrorBoundary>,
);
// @ts-expect-error: tags are a map of strings
const bad = <ErrorBoundary tags={{ area: 1 }} />;
console.log(bad);

export const plugins = [faultlineSourcemaps({ release: "admin@1.4.2", deleteAfterUpload: true })];
export const uploaded: Promise<UploadedSourcemap> = uploadSourcemap({
  server: "https://faultline.example",
  token: "t",
  release: "admin@1.4.2",
  url: "~/assets/index.js",
  map: "{}",
});
// @ts-expect-error: the release is required
faultlineSourcemaps({});
