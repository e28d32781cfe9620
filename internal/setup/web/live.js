(function () {
  "use strict";
  var localTimes = window.imapwhyLocalTimes || function () {};
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var list = live.querySelector("ol.events");
  var waiting = live.querySelector(".waiting");
  function fill(tmpl, user) { return tmpl.replace("%s", user || ""); }
  function add(ev) {
    var li = document.createElement("li");
    li.className = ev.kind;
    var head = document.createElement("p");
    head.className = "headline";
    var t = document.createElement("time");
    t.setAttribute("datetime", ev.time);
    head.appendChild(t);
    head.appendChild(document.createTextNode(" "));
    var key = ev.kind === "login" ? "ok" : ev.kind === "refused" ? "refused" : "untrusted";
    head.appendChild(document.createTextNode(fill(live.dataset[key], ev.user)));
    li.appendChild(head);
    if (ev.message) {
      var m = document.createElement("p");
      m.className = "message";
      m.textContent = ev.message;
      li.appendChild(m);
    }
    if (ev.steps && ev.steps.length) {
      var ol = document.createElement("ol");
      ev.steps.forEach(function (s) {
        var step = document.createElement("li");
        step.textContent = s;
        ol.appendChild(step);
      });
      li.appendChild(ol);
    }
    if (ev.link && /^https?:\/\//.test(ev.link)) {
      var a = document.createElement("a");
      a.href = ev.link;
      a.textContent = ev.link;
      li.appendChild(a);
    }
    localTimes(li);
    list.insertBefore(li, list.firstChild);
    if (waiting) waiting.hidden = true;
  }
  var es = new EventSource(live.dataset.src);
  es.onmessage = function (e) {
    try { add(JSON.parse(e.data)); } catch (err) { /* a malformed event is skipped */ }
  };
})();
