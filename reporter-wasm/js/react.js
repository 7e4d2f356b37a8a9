// `faultline-reporter/react`: an error boundary that reports render errors with the
// component stack, then shows `fallback`; `InlineNotice`, the current user's notices.
import { Component, createElement, useEffect, useState } from "react";
import { captureException, onNotice } from "./index.js";

/**
 * A handler for React 19's root options `onUncaughtError` and `onCaughtError`
 * (`createRoot(el, { onUncaughtError: reactErrorHandler() })`): reports the error (event
 * `react.root`) with its component stack, then calls `callback(error, info)` if given. An
 * error an `ErrorBoundary` already reported is not reported twice.
 */
export function reactErrorHandler(callback) {
  return (error, info) => {
    captureException(error, { event: "react.root", componentStack: info && info.componentStack });
    if (callback) {
      try {
        callback(error, info);
      } catch {}
    }
  };
}

export class ErrorBoundary extends Component {
  constructor(props) {
    super(props);
    this.state = { error: null };
    this.reset = () => this.setState({ error: null });
  }

  static getDerivedStateFromError(error) {
    return { error };
  }

  componentDidCatch(error, info) {
    captureException(error, {
      event: "react.error_boundary",
      componentStack: info && info.componentStack,
      tags: this.props.tags,
    });
    if (this.props.onError) {
      try {
        this.props.onError(error, info);
      } catch {}
    }
  }

  render() {
    if (this.state.error === null) return this.props.children;
    const fallback = this.props.fallback;
    return typeof fallback === "function" ? fallback({ error: this.state.error, reset: this.reset }) : (fallback ?? null);
  }
}

const NOTICE_TEXT = "Something keeps going wrong for you here. We have been told and are looking into it.";

/**
 * The current user's notices (`onNotice`): nothing while there are none, else a
 * `role="status"` box per notice with `children` (a function gets the notice) or a default
 * text. The notice's `message` is for operators; the page's text is the page's to choose.
 */
export function InlineNotice({ children, className = "faultline-notice", rule }) {
  const [notices, setNotices] = useState([]);
  useEffect(() => onNotice(setNotices), []);
  return notices
    .filter((n) => !rule || n.rule === rule)
    .map((n) =>
      createElement(
        "div",
        { key: n.rule, role: "status", className: className + " " + n.severity, "data-rule": n.rule },
        typeof children === "function" ? children(n) : (children ?? NOTICE_TEXT),
      ),
    );
}
