// Wayline UI: pause and resume for live streams (logs, job output). While paused, incoming
// server-sent events are kept and appended on resume, so nothing is lost.
(function () {
  "use strict";
  var held = [];
  function paused(el) { var b = el.closest("[data-stream]"); return b && b.dataset.paused === "true"; }
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    if (paused(e.detail.elt)) { e.preventDefault(); held.push([e.detail.elt, e.detail.data]); }
  });
  document.addEventListener("htmx:sseMessage", function (e) {
    var box = e.detail.elt.closest("[data-stream]");
    if (box && box.dataset.follow !== "false") { box.scrollTop = box.scrollHeight; }
  });
  document.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-toggle-pause]");
    if (!b) { return; }
    var box = document.getElementById(b.dataset.togglePause);
    var now = box.dataset.paused === "true";
    box.dataset.paused = now ? "false" : "true";
    b.textContent = now ? "Pause" : "Resume";
    b.setAttribute("aria-pressed", now ? "false" : "true");
    if (now) {
      held.forEach(function (m) { m[0].insertAdjacentHTML("beforeend", m[1]); });
      held = [];
      box.scrollTop = box.scrollHeight;
    }
  });
})();
