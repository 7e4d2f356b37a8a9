//! What the reporter asks of the page: the clock, the network, a timer, storage.
//!
//! The reporter core never touches a browser API itself; it calls a [`Host`]. In the
//! browser the host is a small object in the package's JavaScript (`js/index.js`), whose
//! every callback into the module goes through one guard that catches anything thrown, so
//! a fault in the module can never escape into the page. Natively, tests drive the core with
//! a recording host and a fake clock.
//!
//! Host methods must not call back into the module synchronously: answers (a response, a
//! timer) arrive later as separate calls.

/// The page, as the reporter core sees it.
pub(crate) trait Host {
    /// Milliseconds since the Unix epoch (`Date.now()`).
    fn now(&self) -> f64;
    /// POSTs `body` to `url` with `fetch`; the answer comes back as
    /// `Reporter::on_response(seq, ...)` (status 0 for a network error).
    fn send(&self, seq: u32, url: &str, body: &str);
    /// Hands `body` to `navigator.sendBeacon` (or a keepalive `fetch`) for a page that is
    /// going away; `false` when the browser refused it.
    fn beacon(&self, url: &str, body: &str) -> bool;
    /// Arms the one timer to call `Reporter::tick` after `delay_ms`, replacing any earlier
    /// one; a negative delay cancels it.
    fn schedule(&self, delay_ms: f64);
    /// Replaces this page's stored records (`localStorage`); empty text removes them.
    fn store(&self, text: &str);
    /// `navigator.onLine`.
    fn online(&self) -> bool;
}
