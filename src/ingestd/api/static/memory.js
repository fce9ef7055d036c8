// ingestd dashboard, the memory browser (#/memory/<user>[/<entity id>]): a user's entities and facts as a graph
// (SVG, laid out here by a small force simulation) and as a timeline of what held when, from the memory read API:
// the facts a search finds, then each entity's whole history (/entities/{id}), ended facts included.
"use strict";

const MAX_ENTITIES = 40; // entities whose history is fetched (one request each)
const LIST_ROUTE = "/v1/memory/{user_id}/facts";
let memoryKey = null; // "<user> <query>" drawn now

async function memoryData(user, query) {
  const base = "/v1/memory/" + encodeURIComponent(user);
  let facts;
  if (await hasRoute(LIST_ROUTE)) {
    const body = await api(base + "/facts?limit=500");
    facts = Array.isArray(body) ? body : body.facts || [];
  } else {
    facts = (await api(base + "/search?" + new URLSearchParams({ q: query || "everything", limit: "100" }))).facts;
  }
  const ids = [...new Set(facts.flatMap((f) => [f.subject.id, f.object && f.object.id]).filter(Boolean))];
  const entities = {};
  const all = new Map(facts.map((f) => [f.id, f]));
  const answers = await Promise.all(ids.slice(0, MAX_ENTITIES).map((id) => api(base + "/entities/" + encodeURIComponent(id)).catch(() => null)));
  for (const answer of answers.filter(Boolean)) {
    entities[answer.entity.id] = answer.entity;
    for (const f of answer.facts) all.set(f.id, f);
  }
  for (const f of all.values()) {
    for (const end of [f.subject, f.object]) if (end && end.id && !entities[end.id]) entities[end.id] = { id: end.id, name: end.name, type: "" };
  }
  return { entities, facts: [...all.values()].map((f) => ({ ...f, user_id: user })) };
}

// --- graph -----------------------------------------------------------------------------------------------------
function layout(nodes, edges, width, height) {
  const pos = nodes.map((_, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, nodes.length);
    return { x: width / 2 + (width / 3) * Math.cos(a), y: height / 2 + (height / 3) * Math.sin(a) };
  });
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const links = edges.map((e) => [index.get(e.subject.id), index.get(e.object.id)]).filter(([a, b]) => a !== undefined && b !== undefined && a !== b);
  for (let step = 0; step < 200; step++) {
    const force = pos.map(() => ({ x: 0, y: 0 }));
    for (let i = 0; i < pos.length; i++) {
      for (let j = i + 1; j < pos.length; j++) {
        const dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
        const d2 = Math.max(100, dx * dx + dy * dy);
        const push = 40000 / d2;
        force[i].x += dx * push / Math.sqrt(d2); force[i].y += dy * push / Math.sqrt(d2);
        force[j].x -= dx * push / Math.sqrt(d2); force[j].y -= dy * push / Math.sqrt(d2);
      }
    }
    for (const [a, b] of links) {
      const dx = pos[b].x - pos[a].x, dy = pos[b].y - pos[a].y;
      force[a].x += dx * 0.02; force[a].y += dy * 0.02; force[b].x -= dx * 0.02; force[b].y -= dy * 0.02;
    }
    pos.forEach((p, i) => {
      p.x = Math.min(width - 60, Math.max(60, p.x + Math.max(-20, Math.min(20, force[i].x + (width / 2 - p.x) * 0.01))));
      p.y = Math.min(height - 20, Math.max(20, p.y + Math.max(-20, Math.min(20, force[i].y + (height / 2 - p.y) * 0.01))));
    });
  }
  return new Map(nodes.map((n, i) => [n.id, pos[i]]));
}

function drawGraph(user, data) {
  const width = 900, height = 420;
  const nodes = Object.values(data.entities);
  const edges = data.facts.filter((f) => f.object && f.object.id);
  const pos = layout(nodes, edges, width, height);
  const types = [...new Set(nodes.map((n) => n.type || ""))];
  const svg = svgEl("svg", { id: "memory-graph", viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": "entities and facts" });
  for (const f of edges) {
    const a = pos.get(f.subject.id), b = pos.get(f.object.id);
    if (!a || !b) continue;
    const line = svgEl("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "edge " + (f.current ? "current" : "past"), "data-fact": f.id });
    line.append(svgEl("title", {}, f.subject.name + " " + f.predicate + " " + f.object.name + (f.current ? "" : " (ended " + day(f.invalid_at) + ")")));
    svg.append(line, svgEl("text", { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 3, class: "edge-label " + (f.current ? "current" : "past") }, f.predicate.replaceAll("_", " ")));
  }
  for (const n of nodes) {
    const p = pos.get(n.id);
    const link = svgEl("a", { href: "#/memory/" + encodeURIComponent(user) + "/" + encodeURIComponent(n.id), class: "node", "data-entity": n.id });
    link.append(svgEl("circle", { cx: p.x, cy: p.y, r: 9, fill: colourFor(n.type || "", types) }),
      svgEl("text", { x: p.x, y: p.y + 22, "text-anchor": "middle" }, n.name), svgEl("title", {}, n.name + (n.type ? " (" + n.type + ")" : "")));
    svg.append(link);
  }
  const legend = types.filter(Boolean).map((t) => el("span", { class: "speaker", style: "border-color:" + colourFor(t, types) }, t));
  return [el("div", { class: "speakers" }, ...legend, el("span", { class: "muted" }, " solid: holds now · dashed: ended")), svg];
}

// --- timeline --------------------------------------------------------------------------------------------------
function drawTimeline(facts) {
  const dated = facts.filter((f) => f.valid_at || f.created_at).sort((a, b) => (a.valid_at || a.created_at).localeCompare(b.valid_at || b.created_at));
  if (!dated.length) return el("p", { class: "muted" }, "no dated facts");
  const now = Date.now();
  const t = (iso) => new Date(iso).getTime();
  const first = Math.min(...dated.map((f) => t(f.valid_at || f.created_at)));
  const span = Math.max(86400000, now - first);
  const rows = dated.map((f) => {
    const from = t(f.valid_at || f.created_at), to = f.invalid_at ? t(f.invalid_at) : now;
    const bar = el("span", { class: "span " + (f.current ? "current" : "past"),
      style: "left:" + ((100 * (from - first)) / span).toFixed(2) + "%;width:" + Math.max(0.5, (100 * (to - from)) / span).toFixed(2) + "%",
      title: day(f.valid_at) + " → " + (f.invalid_at ? day(f.invalid_at) : "now") });
    return el("div", { class: "tl-row " + (f.current ? "current" : "past"), "data-fact": f.id },
      el("div", { class: "tl-label", title: f.sentence || "" }, el("span", { class: "muted" }, day(f.valid_at || f.created_at) + " "),
        f.subject.name + " " + f.predicate.replaceAll("_", " ") + " " + (f.object ? f.object.name : "")),
      el("div", { class: "tl-track" }, bar));
  });
  const axis = el("div", { class: "tl-row axis" }, el("div", { class: "tl-label" }, ""),
    el("div", { class: "tl-track" }, el("span", { style: "left:0" }, day(new Date(first).toISOString())), el("span", { style: "right:0" }, "now")));
  return el("div", { class: "memory-timeline" }, axis, ...rows);
}

function entityPanel(data, entityId) {
  const entity = data.entities[entityId];
  if (!entity) return null;
  const facts = data.facts.filter((f) => f.subject.id === entityId || (f.object && f.object.id === entityId));
  return el("section", { id: "entity-detail", class: "entity", "data-entity": entityId },
    el("h3", {}, entity.name, el("span", { class: "muted" }, entity.type ? " · " + entity.type : "")),
    entity.aliases ? el("p", { class: "muted" }, "also: " + entity.aliases.join(", ")) : null,
    entity.summary ? el("p", {}, entity.summary) : null,
    el("ul", { class: "facts-list" }, ...facts.map(factLine)));
}

// The user's sessions, newest first (GET /sessions, where the server has it); each opens on its messages.
function sessionsNode(user) {
  const box = el("div", { id: "memory-sessions" });
  const base = "/v1/memory/" + encodeURIComponent(user);
  hasRoute("/v1/memory/{user_id}/sessions").then(async (yes) => {
    if (!yes) return;
    const body = await api(base + "/sessions?limit=50");
    const items = body.sessions.map((s) => {
      const messages = el("div", {});
      const item = el("details", { class: "session", "data-session": s.session_id },
        el("summary", {}, el("b", {}, s.session_id), el("span", { class: "muted" }, " · " + when(s.first_at) + " · " + s.messages + (s.messages === 1 ? " message" : " messages"))), messages);
      item.addEventListener("toggle", async () => {
        if (!item.open || messages.childNodes.length) return;
        const page = await api(base + "/messages?" + new URLSearchParams({ session_id: s.session_id, limit: "200" }));
        messages.replaceChildren(messagesList(page.messages.map((m) => ({ ...m, role: m.speaker || m.role }))));
      });
      return item;
    });
    box.replaceChildren(el("h2", {}, "sessions"), ...items);
  }).catch((err) => box.replaceChildren(el("p", { class: "bad" }, "sessions: " + err.message)));
  return box;
}

// Whether a fact held on a day (YYYY-MM-DD): valid by its end, not yet ended.
function heldOn(f, dayText) {
  const end = Date.parse(dayText + "T23:59:59Z");
  const from = Date.parse(f.valid_at || f.created_at);
  return from <= end && (!f.invalid_at || Date.parse(f.invalid_at) > end);
}

async function loadMemory(user, entityId) {
  const query = $("m-query").value.trim();
  const key = user + " " + query;
  if (memoryKey !== key) {
    $("memory-out").replaceChildren(el("p", { class: "muted" }, "loading " + user + "’s memory…"));
    memoryKey = key;
    try {
      lastMemory = await memoryData(user, query);
    } catch (err) {
      memoryKey = null;
      $("memory-out").replaceChildren(el("p", { class: "bad" }, err.message));
      return;
    }
  }
  const data = lastMemory;
  const n = Object.keys(data.entities).length;
  const asOf = $("m-asof").value;
  const held = asOf ? data.facts.filter((f) => heldOn(f, asOf)).map((f) => ({ ...f, current: true })) : data.facts;
  const graphTitle = asOf ? "graph as of " + asOf + " (" + held.length + " facts held then)" : "graph";
  $("memory-out").replaceChildren(
    el("p", { id: "memory-count", class: "muted" }, n + " entities · " + data.facts.length + " facts (" + data.facts.filter((f) => f.current).length + " hold now)"),
    entityPanel(data, entityId) || el("p", { class: "muted" }, "click an entity for its facts over time"),
    el("h2", {}, graphTitle), ...drawGraph(user, { entities: data.entities, facts: held }),
    el("h2", {}, "timeline: what held when"), drawTimeline(data.facts), sessionsNode(user));
}
let lastMemory = null;

// The users of the newest memory jobs (their ordering key is "memory:<user>"), to pick one from.
async function knownUsers() {
  const page = await api("/v1/jobs?" + new URLSearchParams({ pipeline: "memory", limit: "200" }));
  const users = new Map();
  for (const job of page.jobs) {
    const user = (job.ordering_key || "").replace(/^memory:/, "");
    if (!user || user === job.ordering_key) continue;
    const seen = users.get(user) || { jobs: 0, last: job.created_at };
    users.set(user, { jobs: seen.jobs + 1, last: seen.last });
  }
  const items = [...users].map(([user, seen]) =>
    el("li", { "data-user": user }, el("a", { href: "#/memory/" + encodeURIComponent(user) }, user),
      el("span", { class: "muted" }, " · " + seen.jobs + " memory job" + (seen.jobs === 1 ? "" : "s") + ", the last " + when(seen.last))));
  $("memory-out").replaceChildren(
    el("p", { class: "muted" }, "type a user id, or pick one of the users of the newest memory jobs:"),
    items.length ? el("ul", { id: "memory-users" }, ...items) : el("p", { class: "muted" }, "(no memory job yet)"));
}

function showMemory(user, entityId) {
  showView("memory-view");
  document.title = "ingestd · memory" + (user ? " · " + user : "");
  if (user) $("m-user").value = user;
  if (!user) {
    memoryKey = null;
    knownUsers().catch((err) => $("memory-out").replaceChildren(el("p", { class: "bad" }, err.message)));
    return;
  }
  loadMemory(user, entityId);
}

function submitMemory(event) {
  event.preventDefault();
  memoryKey = null;
  const user = $("m-user").value.trim();
  const target = "#/memory/" + encodeURIComponent(user);
  if (location.hash === target) showMemory(user);
  else location.hash = target;
}
