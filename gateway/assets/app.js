// firegrid web UI: local times, ages, the live board (server-sent events), the alarm sound.
// Our own code: no library beyond the vendored htmx (forms without reload).
(function () {
  "use strict";
  var lang = document.documentElement.lang || "zh-CN";

  // <time datetime data-ms> in the viewer's time zone and language.
  var fmt = new Intl.DateTimeFormat(lang, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  function localTimes(root) {
    root.querySelectorAll("time[data-ms]").forEach(function (t) {
      var ms = Number(t.getAttribute("data-ms"));
      if (!isNaN(ms)) { t.textContent = fmt.format(new Date(ms)); t.title = t.getAttribute("datetime"); }
    });
  }
  function ages(root) {
    var now = Date.now();
    root.querySelectorAll(".age[data-since]").forEach(function (a) {
      var s = Math.max(0, Math.floor((now - Number(a.getAttribute("data-since"))) / 1000));
      a.textContent = s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min"
        : Math.floor(s / 3600) + " h " + Math.floor((s / 60) % 60) + " min";
    });
  }

  // The alarm sound: a two-tone beep (WebAudio; browsers allow it after one click).
  var audio = null;
  function beep() {
    if (!audio) return;
    var t = audio.currentTime;
    [880, 660, 880, 660].forEach(function (f, i) {
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = f; o.type = "square"; g.gain.value = 0.08;
      o.connect(g); g.connect(audio.destination);
      o.start(t + i * 0.25); o.stop(t + i * 0.25 + 0.22);
    });
  }

  function counts() {
    var list = document.getElementById("hazards");
    if (!list) return;
    var n = list.children.length;
    var c = document.getElementById("count"); if (c) c.textContent = n;
    var e = document.getElementById("empty"); if (e) e.hidden = n > 0;
  }

  // The live list: each event's data is a row (or card) to put in place, newest first.
  function live() {
    var badge = document.getElementById("live");
    var list = document.getElementById("hazards");
    if (!badge || !list || !window.EventSource) return;
    var src = new EventSource(badge.getAttribute("data-src"));
    function upsert(ev) {
      var tpl = document.createElement(list.tagName === "TBODY" ? "tbody" : "div");
      tpl.innerHTML = ev.data;
      var el = tpl.firstElementChild; if (!el) return;
      var old = document.getElementById(el.id);
      if (old) { old.replaceWith(el); } else { list.insertBefore(el, list.firstElementChild); }
      el.classList.add("fresh");
      localTimes(el); ages(el);
      if (window.htmx) window.htmx.process(el);
      var cat = el.getAttribute("data-category");
      if (ev.type === "opened" && (cat === "smoke" || cat === "alarm")) beep();
      counts();
    }
    ["opened", "escalated", "ended"].forEach(function (n) { src.addEventListener(n, upsert); });
    src.addEventListener("gone", function (ev) {
      var old = document.getElementById(ev.data); if (old) old.remove(); counts();
    });
    src.addEventListener("lagged", function () { location.reload(); });
    src.onopen = function () { badge.classList.remove("down"); badge.textContent = badge.getAttribute("data-label"); };
    src.onerror = function () { badge.classList.add("down"); badge.textContent = badge.getAttribute("data-offline"); };
    badge.setAttribute("data-label", badge.textContent);
    badge.setAttribute("data-ready", "1");
  }

  // Trend plots (uPlot): one chart per quantity, a line per channel (the interval's mean).
  function plots() {
    var box = document.getElementById("plots");
    if (!box || !window.uPlot) return;
    fetch(box.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (h) {
        var quantities = [["residual_ma", box.getAttribute("data-residual"), 1],
                          ["temp_dc", box.getAttribute("data-temp"), 10]];
        var drawn = 0;
        quantities.forEach(function (q) {
          var series = (h.series || []).filter(function (s) {
            return s.points.some(function (p) { return p[q[0]]; });
          });
          if (!series.length) return;
          var times = {};
          series.forEach(function (s) { s.points.forEach(function (p) { times[p.t_ms] = 1; }); });
          var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
          var index = {}; xs.forEach(function (t, i) { index[t] = i; });
          var data = [xs.map(function (t) { return t / 1000; })];
          var colors = ["#f07c2a", "#3b8fd9", "#2fa86b", "#b58bff", "#e5484d"];
          var opts = { title: q[1], width: Math.min(box.clientWidth, 1100), height: 260,
            series: [{}], axes: [{ stroke: "#8796a5", grid: { stroke: "#26313d" } },
                                 { stroke: "#8796a5", grid: { stroke: "#26313d" } }] };
          series.forEach(function (s, k) {
            var ys = xs.map(function () { return null; });
            s.points.forEach(function (p) { if (p[q[0]]) ys[index[p.t_ms]] = p[q[0]].avg / q[2]; });
            data.push(ys);
            // One device: "#ch"; several (a circuit's channels): "device#ch".
            var many = series.some(function (o) { return o.device !== series[0].device; });
            opts.series.push({ label: (many ? s.device : "") + "#" + s.ch, stroke: colors[k % colors.length], width: 2, spanGaps: true });
          });
          var div = document.createElement("div"); div.className = "plot";
          div.setAttribute("data-points", xs.length);
          div.setAttribute("data-t0", xs[0]); div.setAttribute("data-t1", xs[xs.length - 1]);
          box.appendChild(div);
          new window.uPlot(opts, data, div);
          drawn++;
        });
        if (!drawn) { var p = document.createElement("p"); p.className = "empty";
          p.textContent = box.getAttribute("data-empty"); box.appendChild(p); }
        box.setAttribute("data-ready", "1");
      });
  }

  window.addEventListener("load", plots);

  // Commissioning tests (install page): an open test's row reloads itself until answered.
  function tests() {
    document.querySelectorAll("tr.test[data-src]").forEach(function (row) {
      var src = row.getAttribute("data-src");
      var poll = function () {
        fetch(src, { credentials: "same-origin" }).then(function (r) { return r.text(); })
          .then(function (html) {
            var t = document.createElement("tbody"); t.innerHTML = html;
            var el = t.firstElementChild; if (!el) return;
            row.replaceWith(el); row = el; localTimes(el);
            if (el.hasAttribute("data-src")) { setTimeout(poll, 250); }
          });
      };
      setTimeout(poll, 250);
    });
    var print = document.getElementById("print");
    if (print) print.addEventListener("click", function () { window.print(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document); ages(document); live(); tests();
    setInterval(function () { ages(document); }, 10000);
    var sound = document.getElementById("sound");
    if (sound) sound.addEventListener("click", function () {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      sound.textContent = sound.getAttribute("data-on"); sound.classList.add("on"); beep();
    });
    document.body.addEventListener("htmx:afterSwap", function (e) { localTimes(e.target); ages(e.target); counts(); });
    document.body.addEventListener("htmx:responseError", function (e) {
      var doc = new DOMParser().parseFromString(e.detail.xhr.responseText, "text/html");
      var msg = doc.querySelector(".error");
      alert(msg ? msg.textContent : e.detail.xhr.status);
    });
  });
})();
