// The admin token form. The token is checked against the server before it is kept, and kept
// in sessionStorage only: never in a URL, never in localStorage.
import { useState } from "react";
import { api } from "../api.js";

export function Login({ onSignIn, initialError }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(initialError);
  const [busy, setBusy] = useState(false);

  async function submit(e) {
    e.preventDefault();
    const t = token.trim();
    if (!t) {
      setError("Enter the admin token (FAULTLINE_ADMIN_TOKEN, or the one `faultline serve` printed on first start).");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api(t, "/alerts");
      onSignIn(t);
    } catch (err) {
      setError(err.message);
      setBusy(false);
    }
  }

  return (
    <div className="login">
      <form onSubmit={submit} className="card">
        <h1>Faultline</h1>
        <p className="muted">Operations dashboard. Sign in with the server's admin token.</p>
        <label htmlFor="token">Admin token</label>
        <input
          id="token"
          type="password"
          autoComplete="off"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          placeholder="adm_…"
          autoFocus
        />
        <button id="sign-in" type="submit" className="primary" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
        {error && (
          <p id="login-error" className="banner error" role="alert">
            {error}
          </p>
        )}
        <p className="muted small">
          The token is kept for this tab only. Looking for the demo? <a href="/panel">Open the demo panel</a>.
        </p>
      </form>
    </div>
  );
}
