// ingestd dashboard, the workers page (#/workers): every worker that heartbeats, when it last did, how many
// jobs it leases and which of this tenant's running jobs it runs (GET /v1/workers).
"use strict";

const WORKERS_EVERY_MS = 2000;

function runningList(jobs) {
  if (!jobs.length) return el("span", { class: "muted" }, "idle");
  return el("ul", { class: "running" }, ...jobs.map((job) =>
    el("li", { "data-job": job.id },
      el("a", { href: "#/jobs/" + job.id }, job.id), " " + job.pipeline + " ",
      progressCell(job.progress).firstChild || "",
      job.progress && job.progress.stage ? job.progress.stage + " " + job.progress.done + "/" + job.progress.total : "",
      el("span", { class: "muted" }, " · running " + ago(job.started_at).replace(" ago", "")))));
}

function workerRow(worker, window) {
  const age = (Date.now() - new Date(worker.last_seen).getTime()) / 1000;
  const alive = age <= window;
  return el("tr", { "data-worker": worker.id },
    el("td", {}, el("span", { class: "dot " + (alive ? "on" : "off"), title: alive ? "alive" : "no heartbeat lately" }, "●"),
      " ", el("b", {}, worker.id)),
    el("td", { title: worker.last_seen }, when(worker.last_seen), el("span", { class: "muted" }, " (" + ago(worker.last_seen) + ")")),
    el("td", { class: "num" }, worker.jobs),
    el("td", {}, runningList(worker.running)));
}

async function refreshWorkers() {
  const body = await api("/v1/workers");
  const rows = body.workers.map((w) => workerRow(w, body.live_within_seconds));
  $("workers-body").replaceChildren(...rows);
  $("workers-count").textContent = body.workers.length + (body.workers.length === 1 ? " worker" : " workers") +
    " heartbeating within " + seconds(body.live_within_seconds) + " · " +
    body.workers.reduce((n, w) => n + w.jobs, 0) + " jobs leased";
  $("workers-empty").hidden = body.workers.length > 0;
  $("orphaned").hidden = !body.orphaned.length;
  $("orphaned-list").replaceChildren(runningList(body.orphaned));
  $("providers").hidden = !body.providers.length;
  $("providers-table").replaceChildren(providersTable(body.providers));
}

function providersTable(providers) {
  const head = el("tr", {}, ...["provider", "in flight", "waiting", "concurrency limit", "rate limit"].map((h) => el("th", {}, h)));
  const rows = providers.map((p) =>
    el("tr", { "data-provider": p.provider }, el("td", {}, el("b", {}, p.provider)), el("td", { class: "num" }, p.in_flight),
      el("td", { class: "num" }, p.waiting), el("td", { class: "num" }, p.concurrency === null ? "none" : p.concurrency),
      el("td", { class: "num" }, p.rate ? p.rate + " per " + seconds(p.per_seconds) : "none")));
  return el("table", { class: "jobs workers" }, head, ...rows);
}

function showWorkers() {
  showView("workers-view");
  document.title = "ingestd · workers";
  every(WORKERS_EVERY_MS, refreshWorkers);
}
