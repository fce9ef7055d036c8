// ingestd dashboard, one job's page (#/jobs/<id>): its facts, its waterfall (click a row for the step's attempts,
// errors, provider waits and usage), its usage, and its input and result as render.js draws them.
"use strict";

const JOB_EVERY_MS = 1000;
const GROUP_ROWS = 60; // a fan-out with more items is drawn as one summary row until expanded
let selectedRow = null; // the waterfall row whose detail is shown (its key)

function renderHead(job, elapsed) {
  $("job-id").textContent = job.id;
  const status = $("job-status");
  status.textContent = job.status;
  status.className = "status " + job.status;
  $("cancel").hidden = job.status !== "queued" && job.status !== "running";
  const slot = $("job-retry"); // a retry button once the job ended badly, where the server can retry
  const state = job.status + (canRetry ? " retry" : "");
  if (slot.dataset.state !== state) {
    slot.dataset.state = state;
    slot.replaceChildren(...[retryButton(job)].filter(Boolean));
  }
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
  $("job-error").replaceChildren(...(job.error ? [el("b", {}, "failed at "), errorText(job.error)] : []));
  $("job-error").hidden = !job.error;
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
  const selected = row.key === selectedRow ? " selected" : "";
  const node = el(
    "div",
    { class: "wf-row " + row.kind + selected, "data-key": row.key, "data-state": last ? last.state : "" },
    el("div", { class: "wf-label", title: row.label + " (click for detail)" }, row.label),
    track,
  );
  node.addEventListener("click", () => selectRow(row.key === selectedRow ? null : row.key));
  return node;
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

// --- step detail ---------------------------------------------------------------------------------------------
function stageOf(key) {
  return String(key).replace(/\[.*$/, "").replace(/^attempt:.*/, "");
}

function attemptsTable(row, elapsed) {
  const head = el("tr", {}, ...["#", "state", "from", "to", "took"].map((h) => el("th", {}, h)));
  const lines = row.segments.map((seg, i) => {
    const end = seg.end === null ? elapsed : seg.end;
    return el("tr", { class: seg.state }, el("td", {}, i + 1), el("td", {}, el("span", { class: "state " + seg.state }, seg.state)),
      el("td", {}, "+" + seconds(seg.start)), el("td", {}, seg.end === null ? "(running)" : "+" + seconds(end)),
      el("td", {}, seconds(end - seg.start)));
  });
  return el("table", { class: "usage attempts" }, head, ...lines);
}

function marksList(row) {
  if (!row.marks.length) return el("p", { class: "muted" }, "no retries, errors or provider waits");
  const names = { retry: "retry", limiter: "provider wait", failed: "error" };
  return el("ul", { class: "marks" }, ...row.marks.map((m) =>
    el("li", { class: m.kind }, el("b", {}, names[m.kind] || m.kind), " at +" + seconds(m.t) + ": " + m.label)));
}

function stepUsage(stage, usage) {
  const providers = ((usage && usage.stages) || {})[stage];
  if (!providers) return el("p", { class: "muted" }, "no provider calls recorded for " + (stage || "this row"));
  const lines = Object.entries(providers).map(([provider, counters]) =>
    el("li", {}, el("b", {}, provider), " ", Object.entries(counters).map(([k, v]) => fmtNumber(v) + " " + k.replaceAll("_", " ")).join(" · ")));
  return el("ul", { class: "marks" }, ...lines);
}

// A step retried in place is one run with a retry mark per failed try.
function tries(row) {
  return row.segments.filter((s) => s.state !== "waiting").length + row.marks.filter((m) => m.kind === "retry").length;
}

function renderStepDetail(timeline) {
  const box = $("step-detail");
  const row = selectedRow && timeline.rows.find((r) => r.key === selectedRow);
  box.hidden = !row;
  if (!row) return;
  const stage = stageOf(row.key);
  box.dataset.key = row.key;
  box.replaceChildren(
    el("h3", {}, row.label, " ", el("button", { type: "button", class: "link", onclick: () => selectRow(null) }, "close")),
    el("h4", {}, "runs (" + row.segments.length + ") · " + tries(row) + " tries in all"), attemptsTable(row, timeline.elapsed),
    el("h4", {}, "retries, errors, provider waits"), marksList(row),
    el("h4", {}, "provider calls and usage of stage " + (stage || row.kind)), stepUsage(stage, timeline.job.usage),
  );
}

function selectRow(key) {
  selectedRow = key;
  if (lastTimeline) {
    renderWaterfall(lastTimeline);
    renderStepDetail(lastTimeline);
  }
}

// The job's usage ({total, providers, stages}: filled in when it ends) as one table: per provider, then per
// stage and provider, then the total.
function usageTable(usage, terminal) {
  const providers = (usage && usage.providers) || {};
  const stages = (usage && usage.stages) || {};
  if (!Object.keys(providers).length) {
    return el("p", { class: "muted" }, terminal ? "no provider usage recorded"
      : "no provider usage recorded yet: it is added up when the job ends");
  }
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

function showJob(id) {
  showView("job-view");
  document.title = "ingestd · " + id;
  $("waterfall").replaceChildren();
  $("step-detail").hidden = true;
  expanded.clear();
  selectedRow = null;
  lastTimeline = null;
  resetRendered();
  $("job-retry").replaceChildren();
  $("job-retry").dataset.state = "";
  hasRoute(RETRY_ROUTE).then((yes) => (canRetry = yes));
  $("cancel").hidden = true;
  $("cancel").disabled = false;
  $("cancel").textContent = "cancel";
  every(JOB_EVERY_MS, async () => {
    const timeline = await api("/v1/jobs/" + encodeURIComponent(id) + "/timeline");
    renderHead(timeline.job, timeline.elapsed);
    renderWaterfall(timeline);
    renderStepDetail(timeline);
    $("usage").replaceChildren(usageTable(timeline.job.usage, timeline.terminal));
    renderJobIo(timeline.job);
    if (timeline.terminal) return false; // a finished job does not change any more: stop polling
    // the timeline is rebuilt from every event on each request: poll a job with a long log less often
    return Math.min(10000, Math.max(JOB_EVERY_MS, timeline.last_seq));
  });
}
