// Draws the run report's charts: each .chart holds its figure as a JSON data block
// (no inline script, so the web app's Content-Security-Policy "script-src 'self'"
// allows the page), and follows its grid cell's width.
(function () {
  document.querySelectorAll(".chart").forEach(function (cell) {
    var data = cell.querySelector("script.figure");
    var plot = cell.querySelector(".plot");
    if (!data || !plot || typeof Plotly === "undefined") { return; }
    var figure = JSON.parse(data.textContent);
    Plotly.newPlot(plot, figure.data, figure.layout, {responsive: true, displaylogo: false});
    new ResizeObserver(function () { Plotly.Plots.resize(plot); }).observe(cell);
  });
})();
