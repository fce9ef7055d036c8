// ingestd dashboard, a job's input and result drawn for what they are: an audio transcript as speaker-coloured
// turns on a time axis, a memory job's facts as a list, chat messages as a conversation, anything else as JSON
// (the raw JSON is always one click away).
"use strict";

let renderedInput = null; // the job whose input is drawn (it never changes)
let renderedResult = null; // "<job id> <status>" whose result is drawn

function resetRendered() {
  renderedInput = null;
  renderedResult = null;
  $("input").replaceChildren();
  $("result").replaceChildren();
}

function rawJson(value, label) {
  return el("details", { class: "raw" }, el("summary", {}, label || "raw JSON"), jsonBlock(value));
}

// --- input -----------------------------------------------------------------------------------------------------
function filesList(files) {
  return el("ul", { class: "files" }, ...files.map((f) =>
    el("li", {}, el("b", {}, f.name), " · " + (f.content_type || "file") + " · " + Math.round(f.size / 1024) + " KiB")));
}

function messagesList(messages) {
  // a message's speaker (its name, else its role) with its time and the client's id for it when it has one
  return el("ol", { class: "chat" }, ...messages.map((m) =>
    el("li", { class: "msg " + (m.role || "") }, el("span", { class: "who" }, m.name || m.role || m.speaker || ""),
      el("span", { class: "muted" }, " " + when(m.timestamp) + (m.id ? " · " + m.id : "")),
      el("div", {}, m.content || ""))));
}

function scalarFacts(input) {
  // the fields given (a null is a default the pipeline picks)
  const simple = Object.entries(input).filter(([, v]) => v !== null && typeof v !== "object");
  return el("dl", { class: "facts" }, ...simple.map(([k, v]) => fact(k, String(v))));
}

function renderInput(job) {
  const input = job.input || {};
  const parts = [];
  if (job.files && job.files.length) parts.push(filesList(job.files));
  if (Array.isArray(input.messages)) {
    parts.push(scalarFacts(input), messagesList(input.messages));
  } else if (Object.keys(input).length) {
    parts.push(scalarFacts(input));
  }
  if (!parts.length) parts.push(el("p", { class: "muted" }, "(no input fields)"));
  parts.push(rawJson(input, "input JSON"));
  $("input").replaceChildren(...parts);
}

// --- transcript ------------------------------------------------------------------------------------------------
// The conversations of an audio result: [{title, started_at, segments, utterances, speakers}].
function conversationsOf(result) {
  if (!result || typeof result !== "object") return [];
  if (Array.isArray(result.conversations)) {
    return result.conversations
      .filter((c) => Array.isArray(c.transcript))
      .map((c) => ({ ...c, segments: c.transcript, utterances: c.utterances || [] }));
  }
  const t = result.transcript;
  if (t && Array.isArray(t.segments)) return [{ segments: t.segments, utterances: result.utterances || [] }];
  return [];
}

// Turns: the utterances when the result has them, else runs of one speaker's consecutive segments.
function turnsOf(conv) {
  if (conv.utterances.length) return conv.utterances;
  const turns = [];
  for (const seg of conv.segments) {
    const last = turns[turns.length - 1];
    if (last && last.speaker === seg.speaker) {
      last.end = seg.end;
      last.text += " " + seg.text.trim();
    } else turns.push({ speaker: seg.speaker, start: seg.start, end: seg.end, text: seg.text.trim() });
  }
  return turns;
}

function speakerName(label) {
  if (!label) return "unknown";
  const m = String(label).match(/^([a-z]+)_(\d+)$/i);
  return m ? m[1][0].toUpperCase() + m[1].slice(1) + " " + m[2] : String(label);
}

// One lane per speaker, a bar per segment, on an axis of the conversation's length.
function speakerLanes(segments, speakers) {
  const start = Math.min(...segments.map((s) => s.start));
  const span = Math.max(0.001, Math.max(...segments.map((s) => s.end)) - start);
  const svg = svgEl("svg", { class: "lanes", viewBox: "0 0 1000 " + (speakers.length * 18 + 16), preserveAspectRatio: "none" });
  speakers.forEach((speaker, lane) => {
    for (const seg of segments.filter((s) => s.speaker === speaker)) {
      const x = ((seg.start - start) / span) * 1000;
      const rect = svgEl("rect", { x, y: lane * 18 + 2, width: Math.max(1.5, ((seg.end - seg.start) / span) * 1000), height: 14,
        fill: colourFor(speaker, speakers), "data-speaker": speaker || "" });
      rect.append(svgEl("title", {}, speakerName(speaker) + " " + clock(seg.start) + "–" + clock(seg.end) + ": " + seg.text));
      svg.append(rect);
    }
  });
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    const anchor = f === 0 ? "start" : f === 1 ? "end" : "middle";
    svg.append(svgEl("text", { x: f * 1000, y: speakers.length * 18 + 13, "font-size": 11, fill: "#6a737d", "text-anchor": anchor }, span < 20 ? (f * span).toFixed(1) + " s" : clock(start + f * span)));
  }
  return svg;
}

function actionItems(items) {
  if (!items.length) return null;
  return el("ul", { class: "actions" }, ...items.map((a) =>
    el("li", {}, a.description, el("span", { class: "muted" },
      (a.owner ? " · " + speakerName(a.owner) : "") + (a.due || a.due_text ? " · due " + (a.due || a.due_text) : "")))));
}

function conversationNode(conv, index) {
  const segments = conv.segments.filter((s) => String(s.text || "").trim());
  const speakers = [...new Set(segments.map((s) => s.speaker))];
  const seconds = (sp) => segments.filter((s) => s.speaker === sp).reduce((sum, s) => sum + s.end - s.start, 0);
  const legend = speakers.map((sp) =>
    el("span", { class: "speaker", style: "border-color:" + colourFor(sp, speakers) }, speakerName(sp), el("span", { class: "muted" }, " " + clock(seconds(sp)))));
  const turns = turnsOf({ ...conv, segments }).map((t) =>
    el("li", { class: "turn", "data-speaker": t.speaker || "", style: "border-left-color:" + colourFor(t.speaker, speakers) },
      el("span", { class: "at" }, clock(t.start)),
      el("b", { style: "color:" + colourFor(t.speaker, speakers) }, speakerName(t.speaker)),
      el("p", {}, String(t.text).trim())));
  const title = (conv.emoji ? conv.emoji + " " : "") + (conv.title || "conversation " + (index + 1));
  const meta = [conv.started_at ? when(conv.started_at) : "", conv.category || "", conv.language || ""].filter(Boolean);
  return el("section", { class: "conversation" },
    el("h3", {}, title, el("span", { class: "muted" }, meta.length ? " · " + meta.join(" · ") : "")),
    conv.overview || conv.summary ? el("p", { class: "summary" }, conv.overview || conv.summary) : null,
    actionItems(conv.action_items || []),
    el("div", { class: "speakers" }, ...legend),
    segments.length ? speakerLanes(segments, speakers) : el("p", { class: "muted" }, "(nothing was said)"),
    el("ol", { class: "turns" }, ...turns));
}

// --- memory ----------------------------------------------------------------------------------------------------
function factLine(f) {
  const object = f.object && f.object.name ? f.object.name : "";
  const span = day(f.valid_at) + (f.invalid_at ? " → " + day(f.invalid_at) : f.current ? " → now" : "");
  return el("li", { class: "fact " + (f.current ? "current" : "past"), "data-fact": f.id },
    el("a", { href: "#/memory/" + encodeURIComponent(f.user_id || "") + "/" + encodeURIComponent(f.subject.id) }, f.subject.name),
    " ", el("span", { class: "predicate" }, f.predicate.replaceAll("_", " ")), " ", el("b", {}, object),
    el("span", { class: "muted" }, " " + span), f.sentence ? el("q", {}, f.sentence) : null);
}

async function memoryFacts(job, box) {
  const user = job.result.user_id;
  const text = ((job.input && job.input.messages) || []).map((m) => m.content).join(" ").slice(0, 1900);
  if (!text) return;
  const found = await api("/v1/memory/" + encodeURIComponent(user) + "/search?" + new URLSearchParams({ q: text, limit: "100" }));
  const mine = found.facts.filter((f) => f.job_id === job.id).map((f) => ({ ...f, user_id: user }));
  box.replaceChildren(mine.length ? el("ul", { class: "facts-list" }, ...mine.map(factLine)) : el("p", { class: "muted" }, "(no fact of this job is in the memory now)"));
}

function memoryResult(job) {
  const r = job.result;
  const g = r.graph || {};
  const box = el("div", {}, el("p", { class: "muted" }, "loading the facts…"));
  memoryFacts(job, box).catch((err) => box.replaceChildren(el("p", { class: "muted" }, "facts: " + err.message)));
  return el("div", { class: "memory-result" },
    el("dl", { class: "facts" }, fact("user", r.user_id), fact("session", r.session_id || ""), fact("messages", r.messages),
      fact("entities added", g.entities_added), fact("facts added", g.facts_added), fact("facts ended", g.facts_invalidated)),
    el("h3", {}, "facts this job added ", el("a", { href: "#/memory/" + encodeURIComponent(r.user_id) }, "browse " + r.user_id + "’s memory →")),
    box);
}

// --- result ----------------------------------------------------------------------------------------------------
// A partial job's failed items (the worker adds them to its result): each opens its step's detail.
function failedItems(items) {
  const lines = items.map((item) => {
    const link = el("button", { type: "button", class: "link", title: "show this step's detail" }, String(item.key));
    link.addEventListener("click", () => selectRow(String(item.key)));
    return el("li", { "data-key": item.key }, link, " " + errorText({ ...item.error, stage: null }));
  });
  return el("div", { class: "error-box failed-items" }, el("b", {}, items.length + (items.length === 1 ? " item" : " items") + " failed"), el("ul", {}, ...lines));
}

function errorBox(error) {
  return el("div", { class: "error-box" }, el("b", {}, error.title || "failed"),
    el("dl", { class: "facts" }, fact("stage", error.stage || ""), fact("reason", error.reason || error.detail || ""),
      fact("attempts", error.attempts === undefined ? "" : error.attempts), fact("cause", error.cause || "")));
}

function renderResult(job) {
  const key = job.id + " " + job.status;
  if (renderedResult === key) return;
  renderedResult = key;
  const parts = [];
  if (job.error) parts.push(errorBox(job.error));
  const result = job.result;
  if (result && Array.isArray(result.failed_items) && result.failed_items.length) parts.push(failedItems(result.failed_items));
  const conversations = conversationsOf(result);
  if (conversations.length) parts.push(...conversations.map(conversationNode));
  else if (result && result.user_id && result.graph) parts.push(memoryResult(job));
  if (result) parts.push(rawJson(result, "result JSON"));
  if (job.error) parts.push(rawJson(job.error, "error JSON"));
  if (!parts.length) parts.push(el("p", { class: "muted" }, job.status === "succeeded" ? "(empty)" : "(not finished yet)"));
  $("result-title").textContent = job.error && !result ? "error" : "result";
  $("result").replaceChildren(...parts);
  $("result").dataset.kind = conversations.length ? "transcript" : result && result.graph ? "memory" : "json";
}

function renderJobIo(job) {
  if (renderedInput !== job.id) {
    renderedInput = job.id;
    renderInput(job);
  }
  renderResult(job);
}
