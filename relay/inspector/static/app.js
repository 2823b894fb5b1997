// The inspector page works without this script; it only refreshes the page in place every few seconds
// (while "refresh" is ticked and nobody is typing), keeping the scroll position and the search.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var box = document.getElementById("auto");
  if (!box || window.location.pathname !== "/") return;
  box.checked = sessionStorage.getItem("relay-refresh") !== "off";
  box.addEventListener("change", function () { sessionStorage.setItem("relay-refresh", box.checked ? "on" : "off"); });
  function busy() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA") ||
      document.querySelector("details[open]") !== null;
  }
  function refresh() {
    if (!box.checked || busy() || document.hidden) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        var main = document.getElementById("main");
        if (next && main && !busy()) { main.innerHTML = next.innerHTML; }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  setInterval(refresh, 5000);
})();
