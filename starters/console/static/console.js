// War Room console: the little JavaScript the pages use (they work without it, minus live updates).
// Live updates: the page holds one server-sent event stream (data-live on <body>); on "change"
// it fetches itself once and swaps each [data-live-region] by id, except one holding the focus.
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-live");
  var dot = document.querySelector("[data-testid=live]");
  var refreshing = false, again = false, loaded = Date.now();

  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Console-Live": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-region]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (!fresh || old.contains(document.activeElement)) return;
          old.replaceWith(document.importNode(fresh, true));
        });
        body.setAttribute("data-refreshed", String(Date.now()));
      })
      .catch(function () {})
      .then(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  if (url && window.EventSource) {
    var source = new EventSource(url);
    var opened = 0;
    source.addEventListener("open", function () {
      // what changed between this page's load (or a lost connection) and the stream's start
      if (opened++ > 0 || Date.now() - loaded > 2000) refresh();
      if (dot) { dot.hidden = false; dot.textContent = "live"; }
    });
    source.addEventListener("error", function () { if (dot) dot.textContent = "reconnecting"; });
    source.addEventListener("change", refresh);
    source.addEventListener("signin", function () { source.close(); location.href = "/signin"; });
  }

  // Forms that take a while (One-click Link, Create War Room) say so and cannot be sent twice.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var note = form.getAttribute("data-busy");
    var button = form.querySelector("button");
    if (button) { setTimeout(function () { button.disabled = true; }, 0); }
    var busy = document.querySelector("[data-testid=busy]");
    if (note && busy) { busy.hidden = false; busy.textContent = note; }
  });
})();
