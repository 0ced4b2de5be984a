// Nightshift ops: the live parts of the pages. Charts are drawn with uPlot (static/vendor, MIT).
"use strict";
const Ops = (() => {
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();

  function seconds(iso) { return Date.parse(iso) / 1000; }

  function chart(element, series, data) {
    const width = Math.max(element.clientWidth - 16, 320);
    return new uPlot({ width, height: 220, series: [{}, ...series], axes: [{}, {}], legend: { live: false } }, data, element);
  }

  function throughputData(points) {
    return [points.map((p) => seconds(p.minute)), points.map((p) => p.processed), points.map((p) => p.failed)];
  }

  function cell(text, href, cls) {
    const td = document.createElement("td");
    if (href) {
      const a = document.createElement("a");
      a.href = href; a.textContent = text; if (cls) a.className = cls; td.appendChild(a);
    } else { td.textContent = text; }
    return td;
  }

  function age(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function fill(tbody, rows) {
    tbody.replaceChildren(...rows.map((cells) => { const tr = document.createElement("tr"); tr.append(...cells); return tr; }));
  }

  function overview() {
    const data = JSON.parse(document.getElementById("overview-data").textContent);
    const plot = chart(document.getElementById("throughput-chart"), [
      { label: "processed", stroke: color("--ok"), width: 2 },
      { label: "failed", stroke: color("--bad"), width: 2 },
    ], throughputData(data.throughput));
    const live = document.getElementById("live");
    const source = new EventSource("/api/stream");
    source.addEventListener("overview", (event) => {
      const update = JSON.parse(event.data);
      live.classList.add("on");
      plot.setData(throughputData(update.throughput));
      fill(document.querySelector("#queues tbody"), update.queues.map((q) => [
        cell(q.queue, "/queues/" + q.queue), cell(q.ready), cell(q.in_flight), cell(q.delayed),
        q.dead ? cell(q.dead, "/dead-letters/" + q.queue, "bad") : cell(0), cell(age(q.oldest_age_s)),
      ]));
      fill(document.querySelector("#workers tbody"), Object.entries(update.workers).map(([s, n]) => [cell(s), cell(n)]));
      fill(document.querySelector("#next-fires tbody"), update.next_fires.map((f) => [
        cell(f.name, "/schedules/" + f.name), cell(f.next_fire.slice(0, 19).replace("T", " ") + "Z"),
      ]));
    });
    source.onerror = () => live.classList.remove("on");
  }

  function actor() {
    const data = JSON.parse(document.getElementById("actor-data").textContent);
    const at = data.series.map((p) => seconds(p.at));
    chart(document.getElementById("throughput-chart"), [
      { label: "attempts", stroke: color("--accent"), width: 2 },
      { label: "failed", stroke: color("--bad"), width: 2 },
    ], [at, data.series.map((p) => p.attempts), data.series.map((p) => p.failed)]);
    chart(document.getElementById("duration-chart"), [
      { label: "p50 ms", stroke: color("--ok"), width: 2 },
      { label: "p95 ms", stroke: color("--warn"), width: 2 },
    ], [at, data.series.map((p) => p.p50_ms), data.series.map((p) => p.p95_ms)]);
  }

  // Destructive buttons ask first (the server still requires the CSRF token and the scope).
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
  });

  return { overview, actor };
})();
