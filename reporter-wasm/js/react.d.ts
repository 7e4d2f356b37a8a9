import { Component, ReactNode, ErrorInfo } from "react";

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
