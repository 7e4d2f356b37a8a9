/** A level name; case-insensitive aliases (`warn`, `fatal`, `err`, `trace`) are accepted. */
export type Level = "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL" | string;

/** A record as the server receives it (see the faultline-schema crate for every rule). */
export interface FaultlineRecord {
  id: string;
  ts: string;
  service: string;
  level: "DEBUG" | "INFO" | "WARNING" | "ERROR" | "CRITICAL";
  event: string;
  message: string;
  meta: {
    user?: string;
    release?: string;
    environment?: string;
    url?: string;
    user_agent?: string;
    error_type?: string;
    stack?: Array<{ function?: string; file?: string; line?: number; column?: number }>;
    breadcrumbs?: Breadcrumb[];
    count?: number;
    tags?: Record<string, string>;
    contexts?: Record<string, unknown>;
    extra?: unknown;
    [key: string]: unknown;
  };
}

export interface Breadcrumb {
  category?: string;
  message?: string;
  level?: string;
  data?: unknown;
}

export interface Options {
  /** The server's URL (`https://faultline.example.com`); `/logs/ingest` is appended. */
  endpoint: string;
  /** A public ingest key allowed for `service` from this page's origin. */
  key: string;
  /** `[a-z0-9_.-]{1,64}`. Default `"ui"`. */
  service?: string;
  release?: string;
  environment?: string;
  /** The project's public anonymization salt (`FAULTLINE_USER_SALT`); without it `setUser` sends no user. */
  salt?: string;
  /** Records per request. Default 50. */
  batchSize?: number;
  /** Bytes per request; kept under 60000 so the last batch fits a beacon. Default 60000. */
  maxBatchBytes?: number;
  /** How long a record may wait for its batch. Default 5000. */
  flushIntervalMs?: number;
  /** Records held while the server is unreachable; newer ones are dropped and counted. Default 1000. */
  maxQueue?: number;
  /** Share of errors kept, 0 to 1. Default 1. */
  sampleRate?: number;
  /** Edit or drop (return null) a record before it is queued. A throwing filter drops the record. */
  beforeSend?: (record: FaultlineRecord) => FaultlineRecord | null | undefined;
  /** Messages to ignore: substrings or regular expressions, matched against `"Type: message"`. */
  ignoreErrors?: Array<string | RegExp>;
  /** Script URLs whose errors are ignored (matched against the top frames). */
  denyUrls?: Array<string | RegExp>;
  /**
   * More URL parameter names whose values are replaced by `[Filtered]`, besides the built-in
   * ones (`token`, `password`, `secret`, `key`, `code`, `session`, `auth`, ...). A string
   * matches a name that contains it, case and separators ignored (`"email"` filters `email`,
   * `userEmail` and `x-email-addr`); a RegExp is tested against the name (percent-decoded).
   */
  denyUrlParams?: Array<string | RegExp>;
  /** Also report `console.error` calls. Default false (they are always breadcrumbs). */
  captureConsole?: boolean;
  /** Identical errors within this many ms fold into one record with `meta.count`. Default 5000. */
  foldWindowMs?: number;
  /** Records per page load, after folding. Default 500. */
  maxPerPage?: number;
  /** Breadcrumbs kept. Default 30. */
  maxBreadcrumbs?: number;
  /** Where the `.wasm` is served from, when a bundler moved it. */
  wasmUrl?: string | URL;
}

/** Extra data for one capture. */
export interface CaptureContext {
  level?: Level;
  tags?: Record<string, string>;
  extra?: unknown;
  /** The record's `event` key instead of `captureException` / `captureMessage`. */
  event?: string;
  /** A React component stack (set by ErrorBoundary). */
  componentStack?: string;
}

/** Breadcrumbs kept per page by default. */
export const MAX_BREADCRUMBS: number;

/** Starts the reporter; resolves to true once capture is on, false (with a console warning) for bad options. */
export function init(options: Options): Promise<boolean>;
/** Reports an error or any thrown value. Never throws. Returns the id of the record that
 * carries it (a repeat's: the record it folded into), "" when it is not sent. */
export function captureException(error: unknown, context?: CaptureContext): string;
/** Reports a message, at `INFO` unless `level` says otherwise. Never throws. Returns as captureException. */
export function captureMessage(message: string, level?: Level, context?: CaptureContext): string;
/** Sets the user: anonymized at once; the raw id is never kept or sent. `null` clears. */
export function setUser(rawId: string | number | null): void;
/** A tag on every later record (`meta.tags`). */
export function setTag(key: string, value: string): void;
/** Tags on every later record (`meta.tags`). */
export function setTags(tags: Record<string, string>): void;
/** A value in every later record's `meta.extra`; `undefined` removes it. */
export function setExtra(key: string, value: unknown): void;
/** What `withScope` passes to its callback. */
export interface Scope {
  setTag(key: string, value: string): void;
  setTags(tags: Record<string, string>): void;
  setExtra(key: string, value: unknown): void;
  setContext(name: string, context: object | null): void;
  setUser(rawId: string | number | null): void;
}
/** Runs `fn`; changes it makes to the scope are undone once it returns. Returns its result. */
export function withScope<T>(fn: (scope: Scope) => T): T;
/** A named object on every later record (`meta.contexts[name]`); `null` removes it. */
export function setContext(name: string, context: object | null): void;
/** Adds a breadcrumb to every later record. */
export function addBreadcrumb(crumb: Breadcrumb): void;
/** An alert about the current user, from a rule with the `notice` action (the shipped
 * `ui_user_errors`: ten errors from one user in ten minutes). */
export interface Notice {
  /** The rule's name. */
  rule: string;
  severity: "info" | "warning" | "error" | "critical";
  /** The rule's summary, written for operators. */
  message: string;
  /** When it started firing (RFC 3339). */
  since: string | null;
}
/**
 * Calls `callback` with the current user's notices now (if any) and whenever they change
 * (`[]` once they end or the user changes). Asks `POST /notices` with the anonymized id only
 * while a callback is registered and a user is set. Returns a function that unregisters it.
 */
export function onNotice(callback: (notices: Notice[]) => void): () => void;
/** Sends what is queued; resolves to true when the server confirmed everything. */
export function flush(timeoutMs?: number): Promise<boolean>;
/** Flushes, then removes every listener and wrapper. */
export function close(timeoutMs?: number): Promise<boolean>;
/** Counters for tests and dashboards. */
export function stats(): {
  captured: number;
  folded: number;
  ignored: number;
  sampled: number;
  capped: number;
  queued: number;
  sent: number;
  dropped: number;
  rejected: number;
  retries: number;
  beacons: number;
  disabled: boolean;
};
