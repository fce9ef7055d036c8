// ingestd dashboard, the router: the URL hash picks the page (core.js, jobs.js, job.js, render.js, workers.js and
// memory.js are loaded before this file).
//   #/                 jobs, queues, charts          #/jobs/<id>               one job
//   #/workers          workers and their jobs        #/memory/<user>[/<id>]    a user's memory
"use strict";

function route() {
  generation++;
  showBanner("");
  const hash = location.hash;
  let match;
  if ((match = hash.match(/^#\/jobs\/([^/?]+)/))) showJob(decodeURIComponent(match[1]));
  else if (hash.startsWith("#/workers")) showWorkers();
  else if ((match = hash.match(/^#\/memory(?:\/([^/?]+))?(?:\/([^/?]+))?/))) {
    showMemory(match[1] ? decodeURIComponent(match[1]) : "", match[2] ? decodeURIComponent(match[2]) : null);
  } else showJobs();
}

for (const id of ["f-pipeline", "f-status", "f-since"]) {
  $(id).addEventListener("change", () => {
    saveJobsState();
    route();
  });
}
$("f-window").addEventListener("change", () => refreshStats().catch(() => {}));
$("f-search").addEventListener("input", () => {
  saveJobsState();
  refreshJobs().catch(() => {});
});
$("filters").addEventListener("submit", (event) => event.preventDefault());
$("more").addEventListener("click", () => moreJobs().catch(() => {}));
$("memory-form").addEventListener("submit", submitMemory);
$("m-asof").addEventListener("change", () => route()); // redrawn from the facts already read
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
  if (!document.hidden && !location.hash.startsWith("#/memory")) route();
});
document.addEventListener("keydown", (event) => {
  // "/" searches the jobs, from any page (as on GitHub), unless one is typing somewhere
  if (event.key !== "/" || /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) return;
  event.preventDefault();
  if (!location.hash.match(/^#\/?(\?|$)/)) location.hash = "#/";
  $("f-search").focus();
});
window.addEventListener("hashchange", route);
route();
