(function () {
  "use strict";
  // Times are written in UTC; each is shown in the viewer's own time zone.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d)) return;
      el.textContent = el.dataset.form === "time"
        ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
        : d.toLocaleString([], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    });
  }
  window.imapwhyLocalTimes = localTimes;
  localTimes(document);
})();
