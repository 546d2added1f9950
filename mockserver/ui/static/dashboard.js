// The aurous-mock dashboard: reads and drives the control plane (control-openapi.yaml) of the server it came from.
// Every value shown is put in the page as text (DOM nodes, textContent): nothing received is ever parsed as HTML.
"use strict";

const DASHBOARD_HEADER = "Aurous-Mock-Dashboard"; // the server does not journal this page's reads
const TOKEN_HEADER = "Aurous-Mock-Control-Token";
const OVERVIEW_KEY = "al_live_aurous_mock_dashboard"; // the overview's own team, when no key is open yet
const POLL_MS = 1500;

const state = {
  key: "", token: sessionStorage.getItem("aurous-mock-token") || "", tab: "generations", version: null,
  clock: null, running: false, genCursors: [], genAfter: null, ledgerCursors: [], ledgerAfter: null,
  chatCursors: [], chatAfter: null, llmCursors: [], llmAfter: null,
  moving: false, selected: {}, inFlight: false, again: false,
};

// --- DOM helpers: text only --------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);
const pretty = (value) => el("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
const badge = (text) => el("span", { class: `badge s-${text}` }, text);
const short = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, "") : "—");

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
  if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: 9, class: "muted" }, "Nothing yet.")));
}

function say(message) { $("status").textContent = message || ""; }

// --- the control plane ----------------------------------------------------------------------------------------

async function api(method, path, body, key) {
  const headers = { "X-Api-Key": key || state.key || OVERVIEW_KEY, [DASHBOARD_HEADER]: "1" };
  if (state.token) headers[TOKEN_HEADER] = state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
  });
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!response.ok) {
    const error = (data && data.error) || {};
    if (response.status === 401 && /Control-Token/.test(error.message || "")) $("token-form").hidden = false;
    throw new Error(`${response.status} ${error.code || ""}: ${error.message || text}`);
  }
  return data;
}

async function act(method, path, body) {
  try {
    const result = await api(method, path, body);
    say("");
    await refresh(true);
    return result;
  } catch (error) {
    say(error.message);
    return null;
  }
}

// --- team ---------------------------------------------------------------------------------------------------

function keyFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  return params.get("key") || "";
}

function openTeam(key) {
  state.key = key.trim();
  state.version = null;
  state.genCursors = []; state.genAfter = null; state.ledgerCursors = []; state.ledgerAfter = null;
  state.chatCursors = []; state.chatAfter = null; state.llmCursors = []; state.llmAfter = null;
  $("key").value = state.key;
  if (state.key && keyFromFragment() !== state.key) history.replaceState(null, "", `#key=${encodeURIComponent(state.key)}`);
  refresh(true);
}

// --- clock --------------------------------------------------------------------------------------------------

function showClock(clock) {
  state.clock = clock;
  $("clock-now").textContent = clock.now;
  $("clock-state").textContent = clock.frozen ? "frozen" : "running";
  $("freeze").textContent = clock.frozen ? "Unfreeze" : "Freeze";
}

function parseDuration(text) {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/i.exec(text);
  if (!match) return null;
  const unit = { ms: 0.001, s: 1, m: 60, min: 60, h: 3600, d: 86400 }[(match[2] || "s").toLowerCase()];
  return Number(match[1]) * unit;
}

// --- generations and characters ----------------------------------------------------------------------------

function expired(row) {
  return Boolean(row.outputs_expire_at && state.clock && Date.parse(row.outputs_expire_at) <= Date.parse(state.clock.now));
}

function outputCell(row) {
  const resource = row.resource;
  if (expired(row)) return el("span", { class: "muted" }, "410 output_expired");
  if (resource.output_urls) {
    return resource.output_urls.map((url, i) => el("img", { src: url, alt: `output ${i}`, loading: "lazy" }));
  }
  if (resource.output_video_url) {
    return el("video", { src: resource.output_video_url, controls: true, preload: "metadata", muted: true });
  }
  return "";
}

function timeLeft(iso) {
  if (!iso || !state.clock) return "—";
  const seconds = (Date.parse(iso) - Date.parse(state.clock.now)) / 1000;
  if (seconds <= 0) return "410 (expired)";
  const hours = Math.floor(seconds / 3600);
  return hours >= 1 ? `${hours} h ${Math.floor((seconds % 3600) / 60)} min` : `${Math.ceil(seconds / 60)} min`;
}

function showGeneration(row) {
  state.selected.generation = row.id;
  const detail = [el("h3", {}, row.id, " ", badge(row.status))];
  if (row.resource.output_video_url && !expired(row)) {
    detail.push(el("video", { id: "player", src: row.resource.output_video_url, controls: true, muted: true }));
  }
  detail.push(el("p", { class: "muted" }, `pending until ${short(row.started_at)}, finishes ${short(row.finish_at)}`));
  detail.push(el("p", {}, "GET /v1/images/", row.id, ":"), pretty(row.resource));
  $("gen-detail").replaceChildren(...detail);
}

async function loadGenerations() {
  const params = new URLSearchParams({ limit: "50" });
  if ($("gen-status").value) params.set("status", $("gen-status").value);
  if ($("gen-kind").value) params.set("kind", $("gen-kind").value);
  if (state.genAfter) params.set("starting_after", state.genAfter);
  const page = await api("GET", `/_mock/generations?${params}`);
  state.moving = page.data.some((row) => row.status === "pending" || row.status === "processing");
  fill($("generations").tBodies[0], page.data.map((row) => el("tr", {
    "data-id": row.id, "data-status": row.status, class: row.id === state.selected.generation ? "selected" : null,
    onclick: () => showGeneration(row),
  },
  el("td", {}, el("code", {}, row.id)), el("td", {}, row.kind), el("td", {}, badge(row.status)),
  el("td", { class: "prompt" }, row.prompt),
  el("td", {}, `${row.credits.amount}`, row.credits.held ? ` (held)` : row.credits.charged ? " (charged)" : ""),
  el("td", {}, short(row.created_at)), el("td", {}, timeLeft(row.outputs_expire_at)), el("td", {}, outputCell(row)))));
  $("gen-total").textContent = `${page.total} generation${page.total === 1 ? "" : "s"}`;
  $("gen-older").disabled = !page.has_more;
  $("gen-older").dataset.cursor = page.next_cursor || "";
  $("gen-newer").disabled = state.genCursors.length === 0;
  const selected = page.data.find((row) => row.id === state.selected.generation);
  const player = $("player");
  if (selected && !(player && !player.paused)) showGeneration(selected); // never interrupt a video being watched
  const characters = await api("GET", "/_mock/characters?limit=20");
  fill($("characters").tBodies[0], characters.data.map((c) => el("tr", { onclick: () => $("gen-detail").replaceChildren(pretty(c)) },
    el("td", {}, el("code", {}, c.id)), el("td", {}, c.name || ""), el("td", {}, badge(c.status)), el("td", {}, short(c.created_at)))));
}

// --- chat completions ---------------------------------------------------------------------------------------

function showChat(row) {
  state.selected.chat = row.id;
  $("chat-detail").replaceChildren(
    el("h3", {}, row.id, " ", badge(row.status)),
    el("p", { class: "muted" }, `${row.stream ? "streamed" : "not streamed"}, created ${short(row.created_at)}`,
      row.finished_at ? `, finished ${short(row.finished_at)}` : ", still running"),
    el("h4", {}, "Last user message"), el("pre", { class: "chat-prompt" }, row.prompt),
    el("p", {}, "GET /v1/chat/completions/", row.id, ":"), el("pre", { class: "resource" }, JSON.stringify(row.resource, null, 2)));
}

function chatCredits(credits) {
  if (credits.held) return `${credits.held} (held)`;
  return credits.charged ? `${credits.charged} (charged)` : "0";
}

async function loadChat() {
  const params = new URLSearchParams({ limit: "50" });
  if ($("chat-status").value) params.set("status", $("chat-status").value);
  if (state.chatAfter) params.set("starting_after", state.chatAfter);
  const page = await api("GET", `/_mock/chat/completions?${params}`);
  fill($("chat").tBodies[0], page.data.map((row) => el("tr", {
    "data-id": row.id, "data-status": row.status, class: row.id === state.selected.chat ? "selected" : null,
    onclick: () => showChat(row),
  },
  el("td", {}, el("code", {}, row.id)), el("td", {}, row.model), el("td", {}, badge(row.status)),
  el("td", { class: "prompt" }, row.prompt), el("td", {}, row.stream ? "yes" : "no"), el("td", {}, row.finish_reason || "—"),
  el("td", {}, `${row.prompt_tokens} → ${row.completion_tokens ?? "…"}`), el("td", {}, chatCredits(row.credits)),
  el("td", {}, short(row.created_at)))));
  $("chat-total").textContent = `${page.total} completion${page.total === 1 ? "" : "s"}`;
  $("chat-older").disabled = !page.has_more;
  $("chat-older").dataset.cursor = page.next_cursor || "";
  $("chat-newer").disabled = state.chatCursors.length === 0;
  const selected = page.data.find((row) => row.id === state.selected.chat);
  if (selected) showChat(selected);
}

// --- credits ------------------------------------------------------------------------------------------------

async function loadCredits() {
  const team = await api("GET", "/_mock/team");
  const card = (label, value) => el("div", {}, el("dt", {}, label), el("dd", { "data-field": label }, String(value)));
  $("balance").replaceChildren(card("balance", team.credits), card("held", team.held_credits),
    card("available", team.available_credits), card("billing", team.billing_mode));
  const params = new URLSearchParams({ limit: "50" });
  if (state.ledgerAfter) params.set("starting_after", state.ledgerAfter);
  const page = await api("GET", `/_mock/ledger?${params}`);
  fill($("ledger").tBodies[0], page.data.map((row) => el("tr", { "data-type": row.type },
    el("td", {}, el("code", {}, row.id)), el("td", {}, badge(row.type)), el("td", {}, String(row.amount)),
    el("td", {}, short(row.created_at)), el("td", {}, row.generation_id || ""), el("td", {}, row.description || ""))));
  $("ledger-older").disabled = !page.has_more;
  $("ledger-older").dataset.cursor = page.next_cursor || "";
  $("ledger-newer").disabled = state.ledgerCursors.length === 0;
  const llm = new URLSearchParams({ limit: "20" });
  if (state.llmAfter) llm.set("starting_after", state.llmAfter);
  const usage = await api("GET", `/_mock/usage/llm?${llm}`);
  fill($("llm-usage").tBodies[0], usage.data.map((row) => el("tr", { "data-id": row.id, "data-type": row.type },
    el("td", {}, el("code", {}, row.id)), el("td", {}, row.type), el("td", {}, row.model), el("td", {}, badge(row.status)),
    el("td", {}, `${row.input_tokens ?? "—"} → ${row.output_tokens ?? "…"}`), el("td", {}, String(row.credits_charged)),
    el("td", {}, short(row.created_at)), el("td", {}, String(row.duration_ms ?? "—")))));
  $("llm-total").textContent = `${usage.total} row${usage.total === 1 ? "" : "s"}`;
  $("llm-older").disabled = !usage.has_more;
  $("llm-older").dataset.cursor = usage.next_cursor || "";
  $("llm-newer").disabled = state.llmCursors.length === 0;
}

// --- webhooks -----------------------------------------------------------------------------------------------

function showAttempt(attempt) {
  const signature = Object.entries(attempt.request_headers || {}).find(([name]) => /signature/i.test(name));
  $("attempt-detail").replaceChildren(
    el("h3", {}, `Attempt ${attempt.attempt} of ${attempt.delivery_id} `, badge(attempt.outcome)),
    el("p", {}, `scheduled ${short(attempt.scheduled_at)}, sent ${short(attempt.attempted_at)} (team clock), `,
      `status ${attempt.response_status ?? "—"}, ${attempt.latency_ms ?? "—"} ms`,
      attempt.next_retry_at ? `, next retry ${short(attempt.next_retry_at)}` : ""),
    el("p", {}, "Signature: ", el("code", { class: "signature" }, signature ? `${signature[0]}: ${signature[1]}` : "—")),
    el("h4", {}, "Payload"), pretty(tryJson(attempt.request_body)),
    el("h4", {}, "Request headers"), pretty(attempt.request_headers || {}),
    el("h4", {}, "Response"), pretty(attempt.error ? `error: ${attempt.error}` : attempt.response_excerpt || ""));
}

function tryJson(text) { try { return JSON.parse(text); } catch (_) { return text || ""; } }

async function loadWebhooks() {
  const endpoints = await api("GET", "/_mock/webhooks/endpoints");
  fill($("endpoints").tBodies[0], endpoints.data.map((e) => el("tr", {},
    el("td", {}, el("code", {}, e.id)), el("td", {}, e.url), el("td", {}, e.events.join(", ")),
    el("td", {}, e.is_active ? "yes" : "no"), el("td", {}, String(e.consecutive_failures)))));
  const attempts = (await api("GET", "/_mock/webhooks/deliveries")).data;
  const events = new Map();
  for (const attempt of attempts) {
    if (!events.has(attempt.event_id)) events.set(attempt.event_id, { type: attempt.event_type, deliveries: new Map() });
    const deliveries = events.get(attempt.event_id).deliveries;
    if (!deliveries.has(attempt.delivery_id)) deliveries.set(attempt.delivery_id, []);
    deliveries.get(attempt.delivery_id).push(attempt);
  }
  const blocks = [...events].map(([eventId, event]) => el("div", { class: "event", "data-event": eventId },
    el("h3", {}, el("code", {}, eventId), event.type,
      el("button", { class: "redeliver", onclick: () => act("POST", `/_mock/webhooks/events/${encodeURIComponent(eventId)}/redeliver`) }, "Redeliver")),
    [...event.deliveries].map(([deliveryId, rows]) => el("table", { class: "delivery", "data-delivery": deliveryId },
      el("tbody", {}, rows.map((a) => el("tr", { class: "attempt", onclick: () => showAttempt(a) },
        el("td", {}, `#${a.attempt}`), el("td", {}, deliveryId), el("td", {}, a.url), el("td", {}, badge(a.outcome)),
        el("td", {}, String(a.response_status ?? a.error ?? "—")), el("td", {}, `${a.latency_ms ?? "—"} ms`),
        el("td", {}, short(a.attempted_at)))))))));
  $("events").replaceChildren(...(blocks.length ? blocks : [el("p", { class: "muted" }, "No delivery attempt yet.")]));
}

// --- journal ------------------------------------------------------------------------------------------------

const quote = (text) => `'${String(text).replace(/'/g, "'\\''")}'`;

function asCurl(entry) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(entry.query || {})) {
    for (const one of [].concat(value)) query.append(name, one);
  }
  const url = `${location.origin}${entry.path}${query.toString() ? `?${query}` : ""}`;
  const parts = ["curl", "-X", entry.method, quote(url)];
  for (const [name, value] of Object.entries(entry.request_headers || {})) {
    if (["host", "content-length", "connection", "accept-encoding", "user-agent"].includes(name)) continue;
    const sent = name === "x-api-key" && state.key ? state.key : value;
    parts.push("-H", quote(`${name}: ${sent}`));
  }
  if (entry.request_body !== null && entry.request_body !== undefined) {
    const body = typeof entry.request_body === "string" ? entry.request_body : JSON.stringify(entry.request_body);
    parts.push("--data-raw", quote(body));
  }
  return parts.join(" ");
}

function showEntry(entry) {
  const curl = asCurl(entry);
  const copy = el("button", { id: "copy-curl", onclick: async () => {
    try { await navigator.clipboard.writeText(curl); copy.textContent = "Copied"; } catch (_) { copy.textContent = "Select the text below"; }
  } }, "Copy as curl");
  $("jnl-detail").replaceChildren(
    el("h3", {}, `${entry.method} ${entry.path} → ${entry.status}`), copy, el("pre", { class: "curl" }, curl),
    el("h4", {}, "Request headers"), pretty(entry.request_headers), el("h4", {}, "Request body"),
    pretty(entry.request_body ?? ""), el("h4", {}, "Response headers"), pretty(entry.response_headers),
    el("h4", {}, "Response body"), pretty(entry.response_body ?? ""));
}

async function loadJournal() {
  const params = new URLSearchParams({ limit: "100" });
  for (const [param, id] of [["operation", "jnl-operation"], ["status", "jnl-status"], ["method", "jnl-method"], ["kind", "jnl-kind"]]) {
    if ($(id).value.trim()) params.set(param, $(id).value.trim());
  }
  const page = await api("GET", `/_mock/journal?${params}`);
  fill($("journal").tBodies[0], page.data.map((entry) => el("tr", { onclick: () => showEntry(entry), "data-operation": entry.operation },
    el("td", {}, short(entry.at)), el("td", {}, entry.method), el("td", {}, entry.path), el("td", {}, String(entry.status)),
    el("td", {}, entry.operation), el("td", {}, String(entry.duration_ms)))));
}

// --- scenarios and snapshots --------------------------------------------------------------------------------

async function loadScenarios() {
  const rules = await api("GET", "/_mock/scenarios");
  fill($("scenarios").tBodies[0], rules.data.map((rule) => el("tr", {},
    el("td", {}, el("code", {}, rule.id)), el("td", {}, rule.source || ""), el("td", {}, JSON.stringify(rule.when)),
    el("td", {}, JSON.stringify(rule.then)), el("td", {}, String(rule.hits ?? "")),
    el("td", {}, rule.source === "file" ? "" : el("button", { onclick: () => act("DELETE", `/_mock/scenarios/${encodeURIComponent(rule.id)}`) }, "Delete")))));
  const snapshots = await api("GET", "/_mock/snapshots");
  fill($("snapshots").tBodies[0], snapshots.data.map((snap) => el("tr", {},
    el("td", {}, el("code", {}, snap.id)), el("td", {}, short(snap.created_at)), el("td", {}, String(snap.records)),
    el("td", {}, el("button", { onclick: () => act("POST", `/_mock/snapshots/${encodeURIComponent(snap.id)}/restore`) }, "Restore"),
      el("button", { onclick: () => act("DELETE", `/_mock/snapshots/${encodeURIComponent(snap.id)}`) }, "Delete")))));
}

function scenarioBody() {
  const when = {};
  if ($("sc-operation").value.trim()) when.operation = $("sc-operation").value.trim();
  if ($("sc-media").value) when.media_type = $("sc-media").value;
  if ($("sc-prompt").value) when.prompt_contains = $("sc-prompt").value;
  if ($("sc-nth").value) when.nth = Number($("sc-nth").value);
  const then = $("sc-then").value.split(",").map((step) => step.trim()).filter(Boolean);
  return { when, then, repeat: $("sc-repeat").checked };
}

// --- teams --------------------------------------------------------------------------------------------------

async function loadTeams() {
  // The overview shows no team's whole key: open a team with its key (the field, or a #key= link).
  const teams = await api("GET", "/_mock/teams?global=true");
  fill($("teams").tBodies[0], teams.data.map((team) => el("tr", { "data-team": team.id },
    el("td", {}, team.name, " ", el("code", { class: "muted" }, team.id)), el("td", {}, team.key_preview || "—"),
    el("td", {}, short(team.created_at)), el("td", {}, String(team.credits)), el("td", {}, String(team.held_credits)),
    el("td", {}, String(team.generations)), el("td", {}, `${short(team.clock.now)}${team.clock.frozen ? " (frozen)" : ""}`))));
}

// --- live ---------------------------------------------------------------------------------------------------

const LOADERS = {
  generations: loadGenerations, chat: loadChat, credits: loadCredits, webhooks: loadWebhooks, journal: loadJournal,
  scenarios: loadScenarios, teams: loadTeams,
};

async function refresh(force) {
  if (state.inFlight) {
    state.again = state.again || force; // a forced refresh asked for meanwhile runs right after this one
    return;
  }
  state.inFlight = true;
  try {
    if (!state.key && state.tab !== "teams") {
      $("team-name").textContent = "Type a team's key, or open one from Teams.";
      if (force) await loadTeams();
      return;
    }
    const changes = await api("GET", "/_mock/changes");
    showClock(changes.clock);
    $("live").className = "badge on";
    const moved = changes.version !== state.version;
    state.version = changes.version;
    // Statuses move with the clock alone: a running clock keeps refreshing a page that shows work in flight.
    if (force || moved || (state.moving && !changes.clock.frozen && state.tab === "generations")) {
      if (force || moved) $("team-name").textContent = state.key ? `team of ${state.key.slice(0, 14)}…` : "";
      await LOADERS[state.tab]();
    }
  } catch (error) {
    $("live").className = "badge off";
    say(error.message);
  } finally {
    state.inFlight = false;
    if (state.again) {
      state.again = false;
      refresh(true);
    }
  }
}

function showTab(name) {
  state.tab = name;
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("active", button.dataset.tab === name);
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== `tab-${name}`;
  refresh(true);
}

function wire() {
  $("team-form").addEventListener("submit", (event) => { event.preventDefault(); openTeam($("key").value); });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value;
    sessionStorage.setItem("aurous-mock-token", state.token);
    $("token-form").hidden = true;
    say("");
    refresh(true);
  });
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => showTab(button.dataset.tab));
  for (const button of document.querySelectorAll("[data-advance]")) {
    button.addEventListener("click", () => act("POST", "/_mock/clock/advance", { seconds: Number(button.dataset.advance) }));
  }
  $("advance-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const seconds = parseDuration($("advance-by").value);
    if (seconds === null) say("Type a duration like 90s, 5m, 2h or 1d.");
    else act("POST", "/_mock/clock/advance", { seconds });
  });
  $("set-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("POST", "/_mock/clock/set", { now: $("set-to").value.trim() });
  });
  $("freeze").addEventListener("click", () => act("POST", state.clock && state.clock.frozen ? "/_mock/clock/unfreeze" : "/_mock/clock/freeze"));
  $("flush").addEventListener("click", () => act("POST", "/_mock/webhooks/flush"));
  $("snapshot").addEventListener("click", () => act("POST", "/_mock/snapshots"));
  $("scenario-form").addEventListener("submit", (event) => { event.preventDefault(); act("POST", "/_mock/scenarios", scenarioBody()); });
  for (const id of ["gen-status", "gen-kind"]) {
    $(id).addEventListener("change", () => { state.genCursors = []; state.genAfter = null; refresh(true); });
  }
  for (const id of ["jnl-operation", "jnl-status", "jnl-method", "jnl-kind"]) $(id).addEventListener("change", () => refresh(true));
  $("gen-older").addEventListener("click", () => {
    state.genCursors.push(state.genAfter); state.genAfter = $("gen-older").dataset.cursor; refresh(true);
  });
  $("gen-newer").addEventListener("click", () => { state.genAfter = state.genCursors.pop() || null; refresh(true); });
  $("chat-status").addEventListener("change", () => { state.chatCursors = []; state.chatAfter = null; refresh(true); });
  $("chat-older").addEventListener("click", () => {
    state.chatCursors.push(state.chatAfter); state.chatAfter = $("chat-older").dataset.cursor; refresh(true);
  });
  $("chat-newer").addEventListener("click", () => { state.chatAfter = state.chatCursors.pop() || null; refresh(true); });
  $("ledger-older").addEventListener("click", () => {
    state.ledgerCursors.push(state.ledgerAfter); state.ledgerAfter = $("ledger-older").dataset.cursor; refresh(true);
  });
  $("ledger-newer").addEventListener("click", () => { state.ledgerAfter = state.ledgerCursors.pop() || null; refresh(true); });
  $("llm-older").addEventListener("click", () => {
    state.llmCursors.push(state.llmAfter); state.llmAfter = $("llm-older").dataset.cursor; refresh(true);
  });
  $("llm-newer").addEventListener("click", () => { state.llmAfter = state.llmCursors.pop() || null; refresh(true); });
  window.addEventListener("hashchange", () => { const key = keyFromFragment(); if (key && key !== state.key) openTeam(key); });
  // Poll gently, and not at all while the tab is hidden: an open idle page costs the server next to nothing.
  setInterval(() => { if (!document.hidden) refresh(false); }, POLL_MS);
  openTeam(keyFromFragment());
}

document.addEventListener("DOMContentLoaded", wire);
