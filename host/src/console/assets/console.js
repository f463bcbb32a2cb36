// Live refresh of the monitoring page: every `data-every` ms, fetch the server-rendered fragment
// (`data-src`, same origin, escaped by the server) and put it in place. Nothing else runs here.
"use strict";
(function () {
  var live = document.getElementById("live");
  if (!live) {
    return;
  }
  var source = live.getAttribute("data-src");
  var every = parseInt(live.getAttribute("data-every"), 10) || 5000;
  function refresh() {
    fetch(source, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) {
        if (answer.redirected) {
          // The session ended (sign-out elsewhere, expiry): reload, which leads to the sign-in page.
          window.location.reload();
          throw new Error("signed out");
        }
        if (!answer.ok) {
          throw new Error("HTTP " + answer.status);
        }
        return answer.text();
      })
      .then(function (html) {
        live.innerHTML = html;
        live.classList.remove("stale");
        live.setAttribute("data-refreshed", new Date().toISOString());
      })
      .catch(function () {
        live.classList.add("stale");
      });
  }
  setInterval(refresh, every);
})();
