// Wayline UI: the exec terminal. xterm.js draws it; keystrokes go over the WebSocket as text
// frames "0<data>", window sizes as "1{"rows":R,"cols":C}"; the server sends the instance's
// output as binary frames and status as JSON text frames ({instance}, {exit}, {error}).
(function () {
  "use strict";
  var el = document.getElementById("terminal");
  if (!el || typeof Terminal === "undefined") { return; }
  var status = document.getElementById("exec-status");
  var term = new Terminal({ cursorBlink: true, fontFamily: "ui-monospace, monospace", fontSize: 14 });
  term.open(el);
  var scheme = location.protocol === "https:" ? "wss:" : "ws:";
  var ws = new WebSocket(scheme + "//" + location.host + el.dataset.ws +
    "&rows=" + term.rows + "&cols=" + term.cols);
  ws.binaryType = "arraybuffer";
  var ended = false;
  ws.onmessage = function (e) {
    if (typeof e.data !== "string") { term.write(new Uint8Array(e.data)); return; }
    var m = JSON.parse(e.data);
    if (m.instance) { status.textContent = "Connected to instance " + m.instance + "."; }
    if (m.exit !== undefined) { ended = true; status.textContent = "The command exited with " + m.exit + "."; }
    if (m.error) { ended = true; status.textContent = m.error; }
  };
  ws.onclose = function () { if (!ended) { status.textContent = "The session closed."; } };
  term.onData(function (d) { if (ws.readyState === 1) { ws.send("0" + d); } });
  term.onResize(function (s) {
    if (ws.readyState === 1) { ws.send("1" + JSON.stringify({ rows: s.rows, cols: s.cols })); }
  });
  term.focus();
})();
