// Draws every <script type="application/json" class="chart-data" data-target="ID">
// with the locally served plotly.js. No CDN, no fonts, no images from elsewhere.
(function () {
  "use strict";
  document.querySelectorAll("script.chart-data").forEach(function (node) {
    var chart = JSON.parse(node.textContent);
    var target = document.getElementById(node.dataset.target);
    if (!target || !window.Plotly) { return; }
    target.setAttribute("aria-label", chart.title);
    var traces = chart.series.map(function (s) {
      return { x: chart.x, y: s.y, name: s.name, type: "scatter", mode: "lines+markers" };
    });
    window.Plotly.newPlot(target, traces, {
      margin: { l: 60, r: 20, t: 40, b: 60 },
      legend: { orientation: "h", x: 0, y: 1.12 },
      xaxis: { type: "date" },
    }, { displaylogo: false, responsive: true, showLink: false, displayModeBar: false })
      .then(function () { target.dataset.drawn = "1"; });
  });
})();
