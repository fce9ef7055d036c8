// ingestd dashboard: plain JS, no build step, nothing loaded from elsewhere.
// Two views chosen by the URL hash: #/ (jobs, queues, charts) and #/jobs/<id> (the job's waterfall).
// Everything is read from the JSON API with fetch and refreshed by polling; text goes in with textContent only.
"use strict";

const JOBS_EVERY_MS = 2000;
const STATS_EVERY_MS = 10000;
const JOB_EVERY_MS = 1000;
const STATUSES = ["succeeded", "partial", "failed", "canceled"];
const MAX_STATS_NOTE = 5000; // telemetry.stats reads at most this many jobs for the charts
const GROUP_ROWS = 60; // a fan-out with more items is drawn as one summary row until expanded

const $ = (id) => document.getElementById(id);
let generation = 0; // bumped on every route change: timers of the previous view stop themselves
let cursor = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k === "style") node.setAttribute("style", v);
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svgEl(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// --- fetching --------------------------------------------------------------------------------------------------
async function api(path, method) {
  const headers = { Accept: "application/json" };
  const key = localStorage.getItem("ingestd.key");
  if (key) headers.Authorization = "Bearer " + key;
  const response = await fetch(path, { headers, method: method || "GET" });
  if (response.status === 401) {
    showBanner("This server needs an API key: click “API key” and paste one (`ingestd keys create --tenant NAME`).");
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function showBanner(text) {
  const banner = $("banner");
  banner.textContent = text;
  banner.hidden = !text;
}

function setLive(ok) {
  $("live").className = "live " + (ok ? "on" : "off");
  $("live").title = ok ? "refreshing live" : "cannot reach the server";
}

// Run fn now and every `ms` while this view is shown; a failure keeps the loop going (the server may be back).
// fn returns false to stop, or a number of milliseconds to wait before the next run instead of `ms`.
function every(ms, fn) {
  const mine = generation;
  const tick = async () => {
    if (mine !== generation) return;
    let next = ms;
    if (!document.hidden) {
      try {
        const answer = await fn();
        next = answer === false ? null : typeof answer === "number" ? answer : ms;
        setLive(true);
      } catch (err) {
        if (err.message !== "unauthorized") setLive(false);
      }
    }
    if (next !== null && mine === generation) setTimeout(tick, next);
  };
  tick();
}

// --- formatting ------------------------------------------------------------------------------------------------
function seconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
  return (s / 3600).toFixed(1) + " h";
}

function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const ago = (Date.now() - d.getTime()) / 1000;
  return ago < 86400 ? d.toLocaleTimeString() : d.toLocaleString();
}

function duration(job) {
  if (!job.started_at) return "";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return seconds((end - new Date(job.started_at)) / 1000);
}

function progressCell(progress) {
  const td = el("td");
  if (!progress || !progress.stage) return td;
  const pct = progress.total ? Math.round((100 * progress.done) / progress.total) : 0;
  td.append(el("span", { class: "bar" }, el("span", { style: "width:" + pct + "%" })));
  td.append(progress.stage + (progress.total ? " " + progress.done + "/" + progress.total : ""));
  return td;
}

// --- jobs view -------------------------------------------------------------------------------------------------
function jobsQuery() {
  const params = new URLSearchParams({ limit: "50" });
  if ($("f-pipeline").value) params.set("pipeline", $("f-pipeline").value);
  if ($("f-status").value) params.set("status", $("f-status").value);
  return params;
}

function jobRow(job) {
  const row = el(
    "tr",
    { "data-job": job.id },
    el("td", { class: "id" }, el("a", { href: "#/jobs/" + job.id }, job.id)),
    el("td", {}, job.pipeline),
    el("td", {}, el("span", { class: "status " + job.status }, job.status)),
    progressCell(job.progress),
    el("td", {}, when(job.created_at)),
    el("td", {}, duration(job)),
  );
  row.addEventListener("click", () => (location.hash = "#/jobs/" + job.id));
  return row;
}

async function refreshJobs() {
  const page = await api("/v1/jobs?" + jobsQuery());
  $("jobs-body").replaceChildren(...page.jobs.map(jobRow));
  $("jobs-count").textContent = page.jobs.length + (page.next_cursor ? "+ jobs" : " jobs");
  cursor = page.next_cursor;
  $("more").hidden = !cursor;
}

async function moreJobs() {
  const params = jobsQuery();
  params.set("cursor", cursor);
  const page = await api("/v1/jobs?" + params);
  $("jobs-body").append(...page.jobs.map(jobRow));
  cursor = page.next_cursor;
  $("more").hidden = !cursor;
}

async function loadPipelines() {
  const select = $("f-pipeline");
  if (select.options.length > 1) return;
  const body = await api("/v1/pipelines");
  for (const p of body.pipelines) select.append(el("option", { value: p.name }, p.name));
}

function queueCards(queues) {
  if (!queues.length) return [el("div", { class: "card muted" }, "no job queued or running")];
  return queues.map((q) =>
    el(
      "div",
      { class: "card", "data-pipeline": q.pipeline },
      el("b", {}, q.pipeline),
      q.queued + " queued · " + q.running + " running",
      el("br"),
      el("span", { class: q.oldest_queued_age > 60 ? "bad" : "muted" }, "oldest queued " + seconds(q.oldest_queued_age || 0)),
    ),
  );
}

// Minutes-ago labels under a chart of n buckets ending now.
function timeLabels(svg, n, bucketSeconds) {
  const minutes = (n * bucketSeconds) / 60;
  for (const f of [0, 0.5, 1]) {
    const label = f === 1 ? "now" : "−" + Math.round(minutes * (1 - f)) + " min";
    const anchor = f === 0 ? "start" : f === 1 ? "end" : "middle";
    svg.append(svgEl("text", { x: f * 596 + 2, y: 118, "font-size": 9, fill: "#6a737d", "text-anchor": anchor }, label));
  }
}

function lineChart(svg, series, colors, names, bucketSeconds) {
  const max = Math.max(1, ...series.flat());
  const n = series[0].length;
  svg.replaceChildren();
  series.forEach((values, s) => {
    const points = values.map((v, i) => ((i + 0.5) * 600) / n + "," + (105 - (v / max) * 95)).join(" ");
    const line = svgEl("polyline", { points, fill: "none", stroke: colors[s], "stroke-width": 2, "data-series": names[s] });
    line.append(svgEl("title", {}, names[s] + " now: " + values[n - 1]));
    svg.append(line);
  });
  svg.append(svgEl("text", { x: 4, y: 12, "font-size": 10, fill: "#6a737d" }, "max " + max));
  timeLabels(svg, n, bucketSeconds);
}

function barChart(svg, stacks, colors, names, bucketSeconds) {
  const n = stacks[0].length;
  const totals = Array.from({ length: n }, (_, i) => stacks.reduce((sum, s) => sum + s[i], 0));
  const max = Math.max(1, ...totals);
  svg.replaceChildren();
  for (let i = 0; i < n; i++) {
    let y = 105;
    const ago = Math.round(((n - 1 - i) * bucketSeconds) / 60);
    stacks.forEach((values, s) => {
      const h = (values[i] / max) * 95;
      if (h > 0) {
        const attrs = { x: (i * 600) / n + 1, y: y - h, width: 600 / n - 2, height: h, fill: colors[s], "data-status": names[s] };
        const bar = svg.appendChild(svgEl("rect", attrs));
        bar.append(svgEl("title", {}, values[i] + " " + names[s] + (ago ? ", " + ago + " min ago" : ", this minute")));
      }
      y -= h;
    });
  }
  svg.append(svgEl("text", { x: 4, y: 12, "font-size": 10, fill: "#6a737d" }, "max " + max));
  timeLabels(svg, n, bucketSeconds);
}

async function refreshStats() {
  const params = new URLSearchParams();
  if ($("f-pipeline").value) params.set("pipeline", $("f-pipeline").value);
  const stats = await api("/v1/stats?" + params);
  $("queues").replaceChildren(...queueCards(stats.queues));
  const bucket = stats.bucket_seconds;
  lineChart($("chart-depth"), [stats.queued, stats.running], ["#9aa4ad", "#2f81f7"], ["queued", "running"], bucket);
  const empty = stats.submitted.map(() => 0);
  barChart(
    $("chart-throughput"),
    STATUSES.map((s) => stats.finished[s] || empty),
    ["#2da44e", "#bf8700", "#cf222e", "#6e7781"],
    STATUSES,
    bucket,
  );
  $("stats-note").textContent = stats.truncated ? "(the newest " + MAX_STATS_NOTE + " jobs only: see /metrics)" : "";
}

function showJobs() {
  $("jobs-view").hidden = false;
  $("job-view").hidden = true;
  document.title = "ingestd · jobs";
  loadPipelines().catch(() => {});
  every(JOBS_EVERY_MS, refreshJobs);
  every(STATS_EVERY_MS, refreshStats);
}

// --- job view --------------------------------------------------------------------------------------------------
function fact(name, value) {
  return el("div", {}, el("dt", {}, name), el("dd", {}, value));
}

function renderHead(job, elapsed) {
  $("job-id").textContent = job.id;
  const status = $("job-status");
  status.textContent = job.status;
  status.className = "status " + job.status;
  $("cancel").hidden = job.status !== "queued" && job.status !== "running";
  const p = job.progress || {};
  $("job-facts").replaceChildren(
    fact("pipeline", job.pipeline),
    fact("attempt", job.attempt),
    fact("submitted", when(job.created_at)),
    fact("started", when(job.started_at)),
    fact("finished", when(job.finished_at)),
    fact("elapsed", seconds(elapsed)),
    fact("progress", p.stage ? p.stage + " " + p.done + "/" + p.total : ""),
    fact("tenant", job.tenant),
  );
}

function pct(t, scale) {
  return ((100 * t) / scale).toFixed(3) + "%";
}

function axis(scale) {
  const track = el("div", { class: "wf-track" });
  const step = [0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find((s) => scale / s <= 8) || 7200;
  for (let t = 0; t <= scale; t += step) track.append(el("span", { style: "left:" + pct(t, scale) }, seconds(t)));
  return el("div", { class: "wf-axis" }, el("div", { class: "wf-label" }, "time since submit"), track);
}

function segmentNode(seg, row, scale, elapsed) {
  const end = seg.end === null ? elapsed : seg.end;
  const title = row.label + ": " + seg.state + ", " + seconds(seg.start) + " → " + seconds(end) + " (" + seconds(end - seg.start) + ")";
  return el("div", {
    class: "wf-seg " + seg.state,
    style: "left:" + pct(seg.start, scale) + ";width:" + pct(Math.max(0, end - seg.start), scale),
    title,
  });
}

function markNode(mark, scale) {
  const width = mark.kind === "limiter" && mark.seconds ? "width:" + pct(mark.seconds, scale) + ";" : "";
  return el("div", { class: "wf-mark " + mark.kind, style: width + "left:" + pct(mark.t, scale), title: mark.label });
}

function rowNode(row, scale, elapsed) {
  const track = el("div", { class: "wf-track" });
  for (const seg of row.segments) track.append(segmentNode(seg, row, scale, elapsed));
  for (const mark of row.marks) track.append(markNode(mark, scale));
  const last = row.segments[row.segments.length - 1];
  if (last) {
    const end = last.end === null ? elapsed : last.end;
    const total = row.segments.reduce((sum, s) => sum + ((s.end === null ? elapsed : s.end) - s.start), 0);
    track.append(el("span", { class: "wf-dur", style: "left:" + pct(end, scale) }, seconds(total)));
  }
  return el(
    "div",
    { class: "wf-row " + row.kind, "data-key": row.key, "data-state": last ? last.state : "" },
    el("div", { class: "wf-label", title: row.label }, row.label),
    track,
  );
}

// A fan-out of many items is summarised in one row (its span, how many items ended how) until expanded.
const expanded = new Set();

function groupSummary(group, rows, scale, elapsed) {
  const states = {};
  let start = Infinity;
  let end = 0;
  for (const row of rows) {
    const last = row.segments[row.segments.length - 1];
    if (!last) continue;
    states[last.state] = (states[last.state] || 0) + 1;
    start = Math.min(start, row.segments[0].start);
    end = Math.max(end, last.end === null ? elapsed : last.end);
  }
  const track = el("div", { class: "wf-track" });
  const running = states.running ? "running" : "ok";
  if (start < Infinity) track.append(segmentNode({ start, end, state: running }, { label: group }, scale, elapsed));
  const counts = Object.entries(states).map(([state, n]) => n + " " + state).join(" · ");
  track.append(el("span", { class: "wf-dur", style: "left:" + pct(end, scale) }, counts));
  return el("div", { class: "wf-row summary", "data-group": group }, el("div", { class: "wf-label" }, group + " (all)"), track);
}

function groupHeader(group, size) {
  const open = expanded.has(group);
  const node = el("div", { class: "wf-group", "data-group": group }, group + " × " + size);
  if (size > GROUP_ROWS) {
    const toggle = el("button", { type: "button", class: "link" }, open ? "collapse" : "show all " + size);
    toggle.addEventListener("click", () => {
      if (open) expanded.delete(group);
      else expanded.add(group);
      renderWaterfall(lastTimeline);
    });
    node.append(" ", toggle);
  }
  return node;
}

let lastTimeline = null;

function renderWaterfall(timeline) {
  lastTimeline = timeline;
  const elapsed = timeline.elapsed;
  const scale = Math.max(elapsed, 0.001) * 1.02;
  const nodes = [axis(scale)];
  const groups = {};
  for (const row of timeline.rows) if (row.group) (groups[row.group] = groups[row.group] || []).push(row);
  let group = null;
  for (const row of timeline.rows) {
    if (row.group && row.group !== group) {
      const members = groups[row.group];
      nodes.push(groupHeader(row.group, members.length));
      if (members.length > GROUP_ROWS && !expanded.has(row.group)) nodes.push(groupSummary(row.group, members, scale, elapsed));
    }
    group = row.group;
    if (row.group && groups[row.group].length > GROUP_ROWS && !expanded.has(row.group)) continue;
    nodes.push(rowNode(row, scale, elapsed));
  }
  $("waterfall").replaceChildren(...nodes);
  $("waterfall").dataset.seq = timeline.last_seq;
}

// The job's usage ({total, providers, stages}: filled in when it ends) as one table: per provider, then per
// stage and provider, then the total.
function usageTable(usage) {
  const providers = (usage && usage.providers) || {};
  const stages = (usage && usage.stages) || {};
  if (!Object.keys(providers).length) return el("p", { class: "muted" }, "no provider usage recorded (yet: it is added up when the job ends)");
  const lines = Object.keys(providers).map((n) => ["provider " + n, providers[n], "provider"]);
  for (const stage of Object.keys(stages)) {
    for (const [provider, counters] of Object.entries(stages[stage])) lines.push([stage + " · " + provider, counters, "stage"]);
  }
  lines.push(["total", usage.total || {}, "total"]);
  const counters = [...new Set(lines.flatMap(([, c]) => Object.keys(c)))].sort();
  const head = el("tr", {}, el("th", {}, ""), ...counters.map((c) => el("th", {}, c.replaceAll("_", " "))));
  const rows = lines.map(([name, values, kind]) =>
    el("tr", { class: kind }, el("td", {}, name), ...counters.map((c) => el("td", {}, fmtNumber(values[c])))),
  );
  return el("table", { class: "usage" }, head, ...rows);
}

function fmtNumber(v) {
  if (v === undefined) return "";
  return Number.isInteger(v) ? String(v) : v.toFixed(4);
}

function renderResult(job) {
  const body = job.error || job.result;
  $("result-title").textContent = job.error ? "error" : "result";
  const text = body ? JSON.stringify(body, null, 2) : job.status === "succeeded" ? "(empty)" : "(not finished yet)";
  $("result").textContent = text.length > 100000 ? text.slice(0, 100000) + "\n… (truncated)" : text;
}

function showJob(id) {
  $("jobs-view").hidden = true;
  $("job-view").hidden = false;
  document.title = "ingestd · " + id;
  $("waterfall").replaceChildren();
  expanded.clear();
  $("cancel").hidden = true;
  $("cancel").disabled = false;
  $("cancel").textContent = "cancel";
  every(JOB_EVERY_MS, async () => {
    const timeline = await api("/v1/jobs/" + encodeURIComponent(id) + "/timeline");
    renderHead(timeline.job, timeline.elapsed);
    renderWaterfall(timeline);
    $("usage").replaceChildren(usageTable(timeline.job.usage));
    renderResult(timeline.job);
    if (timeline.terminal) return false; // a finished job does not change any more: stop polling
    // the timeline is rebuilt from every event on each request: poll a job with a long log less often
    return Math.min(10000, Math.max(JOB_EVERY_MS, timeline.last_seq));
  });
}

// --- routing ---------------------------------------------------------------------------------------------------
function route() {
  generation++;
  showBanner("");
  const match = location.hash.match(/^#\/jobs\/([^/?]+)/);
  if (match) showJob(decodeURIComponent(match[1]));
  else showJobs();
}

$("f-pipeline").addEventListener("change", () => route());
$("f-status").addEventListener("change", () => route());
$("more").addEventListener("click", () => moreJobs().catch(() => {}));
$("cancel").addEventListener("click", async () => {
  const id = $("job-id").textContent;
  $("cancel").disabled = true;
  try {
    await api("/v1/jobs/" + encodeURIComponent(id) + "/cancel", "POST");
    $("cancel").textContent = "cancel requested";
  } catch (err) {
    showBanner("could not cancel " + id + ": " + err.message);
    $("cancel").disabled = false;
  }
});
$("key-button").addEventListener("click", () => {
  const key = prompt("API key for this dashboard (empty: none)", localStorage.getItem("ingestd.key") || "");
  if (key === null) return;
  if (key.trim()) localStorage.setItem("ingestd.key", key.trim());
  else localStorage.removeItem("ingestd.key");
  route();
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) route();
});
window.addEventListener("hashchange", route);
route();
