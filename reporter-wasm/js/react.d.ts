import { Component, ReactNode, ErrorInfo } from "react";
import type { Notice } from "./index.js";

export interface ErrorBoundaryProps {
  children?: ReactNode;
  /** Shown instead of the children after an error; a function gets the error and a reset. */
  fallback?: ReactNode | ((props: { error: unknown; reset: () => void }) => ReactNode);
  /** Tags for the report. */
  tags?: Record<string, string>;
  /** Called after the error is reported. */
  onError?: (error: unknown, info: ErrorInfo) => void;
}

/** Reports render errors below it (with the component stack) and renders `fallback`. */
export class ErrorBoundary extends Component<ErrorBoundaryProps, { error: unknown }> {}

/** A handler for React 19's `createRoot` options `onUncaughtError` / `onCaughtError`: reports
 * the error with its component stack (event `react.root`), then calls `callback`. */
export function reactErrorHandler(
  callback?: (error: unknown, info: { componentStack?: string }) => void,
): (error: unknown, info: { componentStack?: string }) => void;

export type { Notice };

export interface InlineNoticeProps {
  /** What each notice shows: a node, or a function of the notice. Default: a short apology. */
  children?: ReactNode | ((notice: Notice) => ReactNode);
  /** The class of each notice's box (its severity is added). Default `"faultline-notice"`. */
  className?: string;
  /** Only this rule's notices. */
  rule?: string;
}

/** The current user's notices (see `onNotice`): nothing while there are none, else one
 * `role="status"` box per notice. */
export function InlineNotice(props: InlineNoticeProps): ReactNode;
