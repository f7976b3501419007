// Draws every <canvas data-chart="ID"> from the JSON in <script id="ID">
// (written by the report view), on page load and after each htmx swap.
(function () {
  "use strict";
  var palette = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2"];
  function draw(root) {
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) return;
      var source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      var spec = JSON.parse(source.textContent);
      var stacked = spec.kind === "stacked";
      new Chart(canvas, {
        type: spec.kind === "line" ? "line" : "bar",
        data: {
          labels: spec.labels,
          datasets: spec.series.map(function (s, i) {
            var colour = palette[i % palette.length];
            return { label: s.label, data: s.data, backgroundColor: colour, borderColor: colour, spanGaps: true };
          }),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          scales: { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true } },
        },
      });
      canvas.dataset.drawn = "1";
    });
  }
  // Whole page: now (the script is at the end of the body). Filters and
  // tabs swap #report-body with htmx: draw its new canvases once settled.
  draw(document);
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
})();
