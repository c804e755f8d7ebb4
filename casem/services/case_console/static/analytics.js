// Analytics charts drawn with uPlot from the numbers the page carries (script#chart-data, JSON).
"use strict";
(function () {
  const source = document.getElementById("chart-data");
  if (!source || typeof uPlot === "undefined") return;
  const data = JSON.parse(source.textContent);
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const width = (el) => Math.max(260, el.clientWidth - 8);
  const axis = () => ({ stroke: css("--muted"), grid: { stroke: css("--border"), width: 1 }, ticks: { stroke: css("--border") } });
  const charts = [];

  const flow = document.getElementById("chart-flow");
  if (flow) {
    const xs = data.days.map((d) => Date.parse(d + "T00:00:00Z") / 1000);
    charts.push([flow, new uPlot({
      width: width(flow), height: 240,
      series: [{}, { label: "Opened", stroke: css("--accent"), width: 2 }, { label: "Closed", stroke: css("--ok"), width: 2 }],
      axes: [axis(), axis()],
      scales: { x: { time: true } },
    }, [xs, data.opened, data.closed], flow)]);
  }

  // One bar per (project, priority), labelled below: readable at phone width, no legend to decode.
  const bars = (el, table, label, color) => {
    if (!el) return;
    const labels = [], values = [];
    Object.entries(table).forEach(([project, byKey]) => {
      Object.entries(byKey).forEach(([key, value]) => { labels.push(project + " " + key); values.push(value); });
    });
    const xs = labels.map((_, i) => i);
    charts.push([el, new uPlot({
      width: width(el), height: 240,
      series: [{}, { label, fill: color, stroke: color, paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } }],
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, labels.length - 0.5)] } },
      axes: [{ ...axis(), values: (_u, ticks) => ticks.map((t) => labels[t] ?? ""), space: 40 }, axis()],
      legend: { show: true },
    }, [xs, values], el)]);
  };
  bars(document.getElementById("chart-mttr"), data.mttr_hours, "Hours to close", css("--accent"));
  bars(document.getElementById("chart-mtta"), data.mtta_hours, "Hours to first response", css("--warn"));
  bars(document.getElementById("chart-sla"), data.breaches, "Breaches", css("--danger"));

  window.addEventListener("resize", () => charts.forEach(([el, chart]) => chart.setSize({ width: width(el), height: 240 })));
})();
