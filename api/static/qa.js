// QA statistics chart (Chart.js 4): held share per office, stacked by reason; Persian labels right to left.
// The data comes from <script type="application/json" id="qa-chart-data"> (the CSP forbids inline scripts).
(function () {
  "use strict";
  var node = document.getElementById("qa-chart-data");
  var canvas = document.getElementById("qa-chart");
  if (!node || !canvas || !window.Chart) return;
  var data = JSON.parse(node.textContent);
  var fa = data.lang === "fa", rtl = data.dir === "rtl";
  var PALETTE = ["#0b5d6b", "#e09f3e", "#9e2a2b", "#5b8e7d", "#335c81", "#b5838d", "#6d6875", "#8a9a5b",
                 "#d1495b", "#2e4057", "#c9a227", "#00798c", "#7d4e57"];
  function digits(s) { return fa ? String(s).replace(/\d/g, function (d) { return "۰۱۲۳۴۵۶۷۸۹"[d]; }).replace(/\./g, "٫") : String(s); }
  function pct(v) {
    var t = (Math.round(v * 10) / 10).toString();
    return fa ? digits(t) + "٪" : t + "%";
  }
  function draw() {
    var font = { family: "Vazirmatn, Tahoma, sans-serif", size: 13 };
    Chart.defaults.font = font;
    Chart.defaults.color = "#1f2933";
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.offices.map(digits),
        datasets: data.series.map(function (s, i) {
          return { label: s.label, data: s.values, backgroundColor: PALETTE[i % PALETTE.length], borderWidth: 0,
                   maxBarThickness: 70, help: s.help };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, locale: fa ? "fa-IR" : "en-US",
        scales: {
          x: { stacked: true, reverse: rtl, grid: { display: false }, ticks: { font: { size: 13, weight: "500" } } },
          y: { stacked: true, beginAtZero: true, position: rtl ? "right" : "left",
               title: { display: true, text: data.y_label, font: { size: 13 } },
               ticks: { callback: function (v) { return pct(v); } } }
        },
        plugins: {
          title: { display: true, text: data.title, font: { size: 15, weight: "700" }, padding: { bottom: 8 } },
          legend: { position: "top", rtl: rtl, textDirection: data.dir, align: "center",
                    labels: { boxWidth: 14, boxHeight: 14, padding: 14 } },
          tooltip: {
            rtl: rtl, textDirection: data.dir, bodyFont: font, titleFont: font,
            callbacks: {
              label: function (ctx) { return " " + ctx.dataset.label + ": " + pct(ctx.parsed.y); },
              footer: function (items) {
                var i = items.length ? items[0].dataIndex : 0;
                return (fa ? "صفحه‌های دریافتی: " : "pages received: ") + digits(data.pages[i]);
              }
            }
          }
        }
      }
    });
    canvas.setAttribute("data-drawn", "1");
  }
  // draw once the Persian font is loaded: canvas text does not re-render when a web font arrives
  var ready = document.fonts && document.fonts.load ? document.fonts.load("13px Vazirmatn", "خوانا") : Promise.resolve();
  ready.then(draw, draw);
})();
