// Inline this in <head>, before any other script: it queues errors raised before the
// reporter has loaded, and `init` takes them over (with their original times).
(function (w) {
  var q = [];
  function e(v) {
    q.length < 100 && q.push(["error", Date.now(), v.error, v.message, v.filename, v.lineno, v.colno]);
  }
  function r(v) {
    q.length < 100 && q.push(["rejection", Date.now(), v.reason]);
  }
  w.addEventListener("error", e);
  w.addEventListener("unhandledrejection", r);
  w.__faultline = {
    q: q,
    off: function () {
      w.removeEventListener("error", e);
      w.removeEventListener("unhandledrejection", r);
    },
  };
})(window);
