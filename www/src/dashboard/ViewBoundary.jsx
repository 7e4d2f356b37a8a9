// Keeps a fault in one view (a record no view foresaw) inside that view: it shows what went
// wrong and the rest of the dashboard keeps working. Give it a `key` that changes with what
// it shows (the selected record) so the next one renders afresh.
import { Component } from "react";

export class ViewBoundary extends Component {
  constructor(props) {
    super(props);
    this.state = { error: null };
  }

  static getDerivedStateFromError(error) {
    return { error };
  }

  render() {
    const { error } = this.state;
    if (error === null) return this.props.children;
    return (
      <div className="banner error view-error" role="alert" data-view={this.props.name}>
        The {this.props.name} could not be shown: {String((error && error.message) || error)}
        <button type="button" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </div>
    );
  }
}
