// `faultline-reporter/react`: an error boundary that reports render errors with the
// component stack, then shows `fallback`.
import { Component } from "react";
import { captureException } from "./index.js";

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
