// Charts of a round's metrics per step (Chart.js, served locally). Series come from
// metrics.json as {"<kind> #<run>": {"<metric>": [[step, value], ...]}}; each chart gathers the
// metrics whose name matches its group, and refreshes while the round is active.
(function () {
  "use strict";
  const root = document.getElementById("round-charts");
  if (!root) return;
  const GROUPS = {
    loss: (name) => /loss/i.test(name) && !/train_loss/.test(name),
    reward: (name) => /(reward|scores)/i.test(name) && !/(std|zero_std|min_|max_)/i.test(name),
    kl: (name) => /(^|\/|_)kl($|\/|_)|approxkl/i.test(name),
    accuracy: (name) => /accura/i.test(name),
  };
  const COLORS = ["#3451b2", "#1f7a4d", "#a4262c", "#8a5a00", "#6b3fa0", "#0b7285", "#c2255c", "#495057"];
  const charts = {};

  function datasets(series, group) {
    const out = [];
    for (const [run, metrics] of Object.entries(series)) {
      for (const [name, points] of Object.entries(metrics)) {
        if (!GROUPS[group](name)) continue;
        out.push({
          label: `${run} ${name}`,
          data: points.map(([x, y]) => ({ x, y })),
          borderColor: COLORS[out.length % COLORS.length],
          backgroundColor: COLORS[out.length % COLORS.length],
          pointRadius: points.length > 40 ? 0 : 2,
          borderWidth: 1.5,
        });
      }
    }
    return out;
  }

  function draw(series) {
    for (const canvas of root.querySelectorAll("canvas[data-group]")) {
      const group = canvas.dataset.group;
      const data = { datasets: datasets(series, group) };
      const empty = canvas.closest("figure").querySelector(".chart-empty");
      if (empty) empty.hidden = data.datasets.length > 0;
      if (charts[group]) {
        charts[group].data = data;
        charts[group].update("none");
      } else {
        charts[group] = new window.Chart(canvas, {
          type: "line",
          data,
          options: {
            animation: false, parsing: true, responsive: true,
            scales: { x: { type: "linear", title: { display: true, text: "step" } } },
            plugins: { legend: { labels: { boxWidth: 10, font: { size: 10 } } } },
          },
        });
      }
    }
  }

  async function refresh() {
    const response = await fetch(root.dataset.metricsUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const body = await response.json();
    draw(body.series);
    if (body.active) setTimeout(refresh, 3000);
  }

  function start() {
    if (!window.Chart) {
      document.getElementById("charts-missing").hidden = false;
      return;
    }
    refresh();
  }
  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
})();
