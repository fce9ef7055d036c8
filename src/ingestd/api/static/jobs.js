// ingestd dashboard, the jobs page (#/): queue cards, depth and throughput charts, and the jobs table with its
// search, filters, error column and retry buttons.
"use strict";

const JOBS_EVERY_MS = 2000;
const STATS_EVERY_MS = 10000;
const STATUSES = ["succeeded", "partial", "failed", "canceled"];
const MAX_STATS_NOTE = 5000; // telemetry.stats reads at most this many jobs for the charts
const RETRY_ROUTE = "/v1/jobs/{job_id}/retry";
const RETRYABLE = new Set(["failed", "canceled", "partial"]);
const SINCE = { hour: 3600, day: 86400, week: 7 * 86400 };
let cursor = null;
let loadedJobs = [];
let canRetry = false;

function progressCell(progress) {
  const td = el("td");
  if (!progress || !progress.stage) return td;
  const pct = progress.total ? Math.round((100 * progress.done) / progress.total) : 0;
  td.append(el("span", { class: "bar" }, el("span", { style: "width:" + pct + "%" })));
  td.append(progress.stage + (progress.total ? " " + progress.done + "/" + progress.total : ""));
  return td;
}

function jobsQuery() {
  // a search looks through more jobs than a page shows
  const params = new URLSearchParams({ limit: $("f-search").value.trim() ? "200" : "50" });
  if ($("f-pipeline").value) params.set("pipeline", $("f-pipeline").value);
  if ($("f-status").value) params.set("status", $("f-status").value);
  const since = SINCE[$("f-since").value];
  if (since) params.set("created_after", new Date(Date.now() - since * 1000).toISOString());
  return params;
}

// A job matches the search when every word is in its id, pipeline, status, progress stage or error.
function matches(job, words) {
  const hay = [job.id, job.pipeline, job.status, job.progress && job.progress.stage, errorText(job.error)]
    .join(" ")
    .toLowerCase();
  return words.every((w) => hay.includes(w));
}

function retryButton(job) {
  if (!canRetry || !RETRYABLE.has(job.status)) return null;
  const button = el("button", { type: "button", class: "retry", title: "run this job again" }, "retry");
  button.addEventListener("click", async (event) => {
    event.stopPropagation();
    button.disabled = true;
    try {
      const answer = await api("/v1/jobs/" + encodeURIComponent(job.id) + "/retry", "POST");
      const target = "#/jobs/" + (answer.id || job.id);
      if (location.hash === target) route(); // the job page itself: read the job again, polling resumes
      else location.hash = target;
    } catch (err) {
      showBanner("could not retry " + job.id + ": " + err.message);
      button.disabled = false;
    }
  });
  return button;
}

function jobRow(job) {
  const error = errorText(job.error);
  const row = el(
    "tr",
    { "data-job": job.id },
    el("td", { class: "id" }, el("a", { href: "#/jobs/" + job.id }, job.id)),
    el("td", {}, job.pipeline),
    el("td", {}, el("span", { class: "status " + job.status }, job.status)),
    progressCell(job.progress),
    el("td", { class: "error", title: error }, error),
    el("td", { title: job.created_at || "" }, when(job.created_at)),
    el("td", {}, duration(job)),
    el("td", {}, retryButton(job)),
  );
  row.addEventListener("click", () => (location.hash = "#/jobs/" + job.id));
  return row;
}

// An exact job id typed in the search box is looked up even when it is not among the loaded jobs.
async function lookupId(text) {
  if (!/^[0-9a-z]{16,40}$/.test(text) || loadedJobs.some((j) => j.id === text)) return [];
  try {
    return [await api("/v1/jobs/" + encodeURIComponent(text))];
  } catch (err) {
    return [];
  }
}

async function renderJobs() {
  const text = $("f-search").value.trim().toLowerCase();
  const words = text.split(/\s+/).filter(Boolean);
  const shown = loadedJobs.filter((job) => matches(job, words)).concat(await lookupId(text));
  $("jobs-body").replaceChildren(...shown.map(jobRow));
  const more = cursor ? "+" : "";
  $("jobs-count").textContent = words.length
    ? shown.length + " of " + loadedJobs.length + more + " jobs match"
    : loadedJobs.length + more + " jobs";
  $("jobs-empty").hidden = shown.length > 0;
  $("more").hidden = !cursor;
}

async function refreshJobs() {
  const page = await api("/v1/jobs?" + jobsQuery());
  // keep the pages loaded with "more" (their jobs are refreshed when the filter changes)
  const fresh = new Set(page.jobs.map((j) => j.id));
  loadedJobs = page.jobs.concat(loadedJobs.slice(page.jobs.length).filter((j) => !fresh.has(j.id)));
  if (loadedJobs.length === page.jobs.length) cursor = page.next_cursor;
  await renderJobs();
}

async function moreJobs() {
  const params = jobsQuery();
  params.set("cursor", cursor);
  const page = await api("/v1/jobs?" + params);
  loadedJobs = loadedJobs.concat(page.jobs);
  cursor = page.next_cursor;
  await renderJobs();
}

async function loadPipelines() {
  const select = $("f-pipeline");
  if (select.dataset.loaded) return;
  select.dataset.loaded = "yes";
  let body;
  try {
    body = await api("/v1/pipelines");
  } catch (err) {
    delete select.dataset.loaded; // again on the next visit (with a key, say)
    throw err;
  }
  const have = new Set([...select.options].map((o) => o.value));
  for (const p of body.pipelines) if (!have.has(p.name)) select.append(el("option", { value: p.name }, p.name));
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

// Time labels under a chart of n buckets ending now.
function timeLabels(svg, n, bucketSeconds) {
  const span = n * bucketSeconds;
  for (const f of [0, 0.5, 1]) {
    const back = span * (1 - f);
    const label = f === 1 ? "now" : "−" + (span >= 600 ? Math.round(back / 60) + " min" : Math.round(back) + " s");
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
    const back = Math.round((n - 1 - i) * bucketSeconds);
    const when = back ? ", " + seconds(back) + " ago" : ", this bucket";
    stacks.forEach((values, s) => {
      const h = (values[i] / max) * 95;
      if (h > 0) {
        const attrs = { x: (i * 600) / n + 1, y: y - h, width: Math.max(1, 600 / n - 2), height: h, fill: colors[s], "data-status": names[s] };
        const bar = svg.appendChild(svgEl("rect", attrs));
        bar.append(svgEl("title", {}, values[i] + " " + names[s] + when));
      }
      y -= h;
    });
  }
  svg.append(svgEl("text", { x: 4, y: 12, "font-size": 10, fill: "#6a737d" }, "max " + max));
  timeLabels(svg, n, bucketSeconds);
}

async function refreshStats() {
  const [window, bucket] = $("f-window").value.split("/");
  const params = new URLSearchParams({ window, bucket });
  if ($("f-pipeline").value) params.set("pipeline", $("f-pipeline").value);
  const stats = await api("/v1/stats?" + params);
  $("queues").replaceChildren(...queueCards(stats.queues));
  const size = stats.bucket_seconds;
  const per = size >= 60 ? (size === 60 ? "minute" : size / 60 + " min") : size + " s";
  $("depth-caption").textContent = "queue depth (peak per " + per + "), " + $("f-window").selectedOptions[0].textContent;
  $("throughput-caption").textContent = "finished per " + per + ", " + $("f-window").selectedOptions[0].textContent;
  // the busiest moment of each bucket (a sample at its end misses a burst), where the server says it
  const depth = [stats.queued_peak || stats.queued, stats.running_peak || stats.running];
  lineChart($("chart-depth"), depth, ["#9aa4ad", "#2f81f7"], ["queued", "running"], size);
  const empty = stats.submitted.map(() => 0);
  barChart(
    $("chart-throughput"),
    STATUSES.map((s) => stats.finished[s] || empty),
    ["#2da44e", "#bf8700", "#cf222e", "#6e7781"],
    STATUSES,
    size,
  );
  $("stats-note").textContent = stats.truncated ? "(the newest " + MAX_STATS_NOTE + " jobs only: see /metrics)" : "";
  // a short window is redrawn as often as its buckets change
  return Math.max(2000, Math.min(STATS_EVERY_MS, size * 1000));
}

// The search and filters live in the URL (#/?q=…&status=…), so a search can be linked and survives a reload.
const JOBS_STATE = { q: "f-search", pipeline: "f-pipeline", status: "f-status", since: "f-since" };

function saveJobsState() {
  const params = new URLSearchParams();
  for (const [name, id] of Object.entries(JOBS_STATE)) if ($(id).value.trim()) params.set(name, $(id).value.trim());
  history.replaceState(null, "", "#/" + (params.size ? "?" + params : ""));
}

function loadJobsState() {
  const query = location.hash.split("?")[1];
  if (!query) return;
  const params = new URLSearchParams(query);
  for (const [name, id] of Object.entries(JOBS_STATE)) {
    const value = params.get(name) || "";
    if (id === "f-pipeline" && value && ![...$(id).options].some((o) => o.value === value)) {
      $(id).append(el("option", { value }, value)); // before the pipelines are loaded
    }
    $(id).value = value;
  }
}

function showJobs() {
  showView("jobs-view");
  loadJobsState();
  saveJobsState();
  document.title = "ingestd · jobs";
  loadedJobs = [];
  cursor = null;
  loadPipelines().catch(() => {});
  hasRoute(RETRY_ROUTE).then((yes) => (canRetry = yes));
  every(JOBS_EVERY_MS, refreshJobs);
  every(STATS_EVERY_MS, refreshStats);
}
