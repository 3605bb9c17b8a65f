// feedloop console: live inbox. Progressive enhancement only — without this
// file the inbox works and a reload shows new items.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var table = document.getElementById("inbox");
  var insert = live.getAttribute("data-stream") === "insert";
  var waiting = 0;
  var seen = {};
  Array.prototype.forEach.call(document.querySelectorAll("tr[data-id]"), function (tr) {
    seen[tr.getAttribute("data-id")] = true;
  });

  function say(text, linkText) {
    live.textContent = "";
    var p = document.createElement("p");
    p.className = "banner";
    p.textContent = text + " ";
    if (linkText) {
      var a = document.createElement("a");
      a.href = "/";
      a.textContent = linkText;
      p.appendChild(a);
    }
    live.appendChild(p);
  }

  // counted keeps the page's counts true after a row was inserted: the
  // total in the heading and "Showing 1–N of M" under the table.
  function counted() {
    var count = document.getElementById("count");
    if (!count) return;
    var total = parseInt(count.getAttribute("data-total"), 10) + 1;
    count.setAttribute("data-total", String(total));
    count.textContent = total + (total === 1 ? " item" : " items");
    var order = document.getElementById("order");
    if (order) order.hidden = false;
    var to = document.getElementById("shown-to");
    var of = document.getElementById("shown-total");
    if (to) to.textContent = String(parseInt(to.textContent, 10) + 1);
    if (of) of.textContent = String(total);
  }

  var es = new EventSource("/events");
  es.addEventListener("ready", function () { document.body.setAttribute("data-live", "on"); });
  es.addEventListener("item", function (e) {
    var m = JSON.parse(e.data);
    if (seen[m.id]) return;
    seen[m.id] = true;
    if (insert && table) {
      // The row was rendered (and escaped) by the server's own template.
      var tpl = document.createElement("template");
      tpl.innerHTML = m.html.trim();
      var row = tpl.content.firstElementChild;
      table.tBodies[0].insertBefore(row, table.tBodies[0].firstChild);
      table.hidden = false;
      var empty = document.getElementById("empty");
      if (empty) empty.hidden = true;
      counted();
      say("New item: " + (m.subject || "(no subject)") + ".");
      return;
    }
    waiting++;
    say(waiting + (waiting === 1 ? " new item" : " new items") + " —", "show");
  });
  es.addEventListener("signedout", function () {
    es.close();
    window.location.reload();
  });
})();
