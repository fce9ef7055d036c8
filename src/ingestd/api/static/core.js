// ingestd dashboard, shared helpers: DOM building, the JSON API, polling, formatting. Plain JS, no build step,
// nothing loaded from elsewhere; text goes in with textContent only. Loaded first; the other files use these.
"use strict";

const $ = (id) => document.getElementById(id);
let generation = 0; // bumped on every route change: timers of the previous view stop themselves

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
  const asked = generation;
  const response = await fetch(path, { headers, method: method || "GET" });
  if (response.status === 401) {
    // an answer to a request of the page before (made without the key just pasted) says nothing now
    if (asked === generation) showBanner("This server needs an API key: click “API key” and paste one (`ingestd keys create --tenant NAME`).");
    throw new Error("unauthorized");
  }
  if (!response.ok) {
    let detail = "";
    try {
      detail = (await response.json()).detail || "";
    } catch (err) {
      detail = "";
    }
    throw new Error(path + ": HTTP " + response.status + (detail ? ": " + detail : ""));
  }
  return response.json();
}

// The API's routes (from its OpenAPI document, read once): the pages use a route only where the server has it.
let routesPromise = null;
function hasRoute(path) {
  if (!routesPromise) {
    routesPromise = fetch("/openapi.json")
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .then((doc) => new Set(Object.keys(doc.paths || {})))
      .catch(() => new Set());
  }
  return routesPromise.then((paths) => paths.has(path));
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

const pad = (n) => String(n).padStart(2, "0");

// A date and a time, in the browser's zone: "2026-12-02 18:42:07" (always both: a time alone is ambiguous).
function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const day = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  return day + " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
}

function day(iso) {
  return iso ? when(iso).slice(0, 10) : "";
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return s < 1 ? "just now" : seconds(s).replace(/\.\d+ s$/, " s") + " ago";
}

// "mm:ss" (or "h:mm:ss") of a position in a recording.
function clock(s) {
  const total = Math.max(0, Math.floor(s));
  const h = Math.floor(total / 3600);
  const mmss = pad(Math.floor((total % 3600) / 60)) + ":" + pad(total % 60);
  return h ? h + ":" + mmss : mmss;
}

function duration(job) {
  if (!job.started_at) return "";
  const end = job.finished_at ? new Date(job.finished_at) : new Date();
  return seconds((end - new Date(job.started_at)) / 1000);
}

// "decode: PermanentError: not a readable audio file" from a job's error problem.
function errorText(error) {
  if (!error) return "";
  const reason = error.reason || error.detail || error.title || JSON.stringify(error);
  return error.stage ? error.stage + ": " + reason : reason;
}

function jsonBlock(value) {
  const text = JSON.stringify(value, null, 2);
  return el("pre", { class: "result" }, text.length > 100000 ? text.slice(0, 100000) + "\n… (truncated)" : text);
}

function fact(name, value) {
  return el("div", {}, el("dt", {}, name), el("dd", {}, value));
}

// Up to 12 distinct colours, one per speaker or entity type, stable for a label.
const PALETTE = ["#2f81f7", "#d1242f", "#1a7f37", "#8250df", "#bf8700", "#0a7d8c", "#c2185b", "#5a6b00",
  "#e16f24", "#4c5bd4", "#7d4e24", "#57606a"];
function colourFor(label, order) {
  const index = order.indexOf(label);
  return PALETTE[(index < 0 ? order.length : index) % PALETTE.length];
}

function showView(id) {
  for (const view of document.querySelectorAll("main")) view.hidden = view.id !== id;
  for (const link of document.querySelectorAll(".top nav a")) link.classList.toggle("on", link.dataset.view === id);
}
