// Annexa dashboard: a little progressive enhancement. Every page works
// without this file; with it, filter selects apply on change, destructive
// forms ask first, and pages showing "now" refresh themselves.
"use strict";
(function () {
  document.addEventListener("change", function (e) {
    var form = e.target.closest("form[data-autosubmit]");
    if (form && e.target.tagName === "SELECT") form.requestSubmit();
  });
  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
  // Live refresh: fetch this same URL and swap the main content, unless
  // the reader is busy with it (a field focused, details opened).
  var main = document.querySelector("main[data-refresh]");
  if (!main) return;
  var every = parseInt(main.getAttribute("data-refresh"), 10) * 1000;
  setInterval(function () {
    if (document.hidden) return;
    if (main.contains(document.activeElement) && document.activeElement !== document.body) return;
    if (main.querySelector("details[open]")) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        if (next) main.replaceChildren.apply(main, Array.from(next.childNodes));
      })
      .catch(function () { /* the next tick tries again */ });
  }, every);
})();
