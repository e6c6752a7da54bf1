// wavegate dashboard: a small single-page app over the admin API. No framework, no CDN.
// The token lives in sessionStorage (this tab only) and travels only in the Authorization
// header; a person signed in through the identity provider instead holds an HttpOnly session
// cookie the page never sees, and proves each change with the CSRF token whoami tells it; live updates come from /api/v1/stream read with fetch (EventSource cannot send
// headers). Every value from the API is inserted as text, never as HTML, except the
// server-rendered guardrail charts (SVG built by wavegate from numbers, names escaped).
"use strict";

const TOKEN_KEY = "wavegate.token";
const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  rollouts: [],
  filters: { environment: "", team: "", region: "", version: "", state: "", q: "" },
  streamAbort: null,
  lastEventId: null,
  refreshTimer: null,
  renderSeq: 0,
  // A pointer is down on the page: a live refresh waits for it to come up, so that it never
  // replaces the page between the press and the release of a click (which would lose the click).
  pressed: false,
  refreshAfterPress: false,
};

document.addEventListener("pointerdown", () => { state.pressed = true; }, true);
for (const [target, ev] of [[document, "pointerup"], [document, "pointercancel"], [window, "blur"]]) {
  target.addEventListener(ev, () => {
    state.pressed = false;
    if (state.refreshAfterPress) {
      state.refreshAfterPress = false;
      clearTimeout(state.refreshTimer);
      state.refreshTimer = setTimeout(() => render(true), 60); // after the click is handled
    }
  }, true);
}

// ---------- small DOM helpers ----------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

function fmtTime(s) {
  if (!s) return "—";
  const d = new Date(s);
  return isNaN(d) ? String(s) : d.toLocaleString();
}

// One notation for every figure: plain decimals (never 8.09e-4 beside 0.0300), at least four
// decimals below 1 and three significant digits for the smallest, thousands grouped.
function fmtNum(v) {
  if (v === null || v === undefined || !isFinite(v)) return "—";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 10000) return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(Math.min(12, Math.max(4, 2 - Math.floor(Math.log10(a)))));
}

// A rate of deployments per day as people say it: "2.50/day", or "1 per 30 days" below one a
// day (never "0.00/day" beside one deployment).
function fmtPerDay(v) {
  if (v >= 1) return `${v.toFixed(2)}/day`;
  if (v <= 0) return "none";
  const days = 1 / v;
  return `1 per ${days < 10 ? days.toFixed(1) : Math.round(days)} days`;
}

function badge(st) {
  return h("span", { class: `badge state-${st}` }, st.replace("_", " "));
}

function showAlert(msg, ok) {
  const a = $("alert");
  a.textContent = msg;
  a.className = ok ? "alert ok" : "alert";
  a.hidden = !msg;
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

// The credentials a request carries: the pasted token, or (signed in through the identity
// provider) the session cookie the browser sends by itself, plus the CSRF token on changes.
function authHeaders(method) {
  if (state.token) return { Authorization: `Bearer ${state.token}` };
  if (method !== "GET" && state.me && state.me.csrf) return { "X-CSRF-Token": state.me.csrf };
  return {};
}

async function api(method, path, body, extra) {
  // A string is sent as it is (with the Content-Type in `extra`); anything else as JSON.
  const raw = typeof body === "string";
  const headers = { ...authHeaders(method), ...(extra || {}) };
  if (body !== undefined && !raw) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined || raw ? body : JSON.stringify(body),
  });
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (resp.status === 401) {
    sessionRefused(state.token ? "Your token was refused (revoked or mistyped); sign in again."
      : "Your sign-in has ended; sign in again.");
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

async function apiText(path) {
  const resp = await fetch(path, { headers: authHeaders("GET") });
  if (!resp.ok) throw new ApiError(resp.status, null);
  return resp.text();
}

// ---------- session ----------

async function signIn(token) {
  state.token = token.trim();
  try {
    state.me = await api("GET", "/api/v1/whoami");
  } catch (e) {
    state.token = null;
    showAlert(e.status === 401 ? "That token is not valid." : `Sign-in failed: ${e.message}`);
    return false;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  signedIn();
  return true;
}

// A session the identity provider's sign-in left in this browser (its cookie), if any.
async function resumeSession() {
  const resp = await fetch("/api/v1/whoami");
  if (!resp.ok) return false;
  state.me = await resp.json();
  signedIn();
  return true;
}

function rolesText(roles) {
  return (roles || []).map((g) => `${g.role} in ${g.environments.join(", ")}`).join("; ");
}

function signedIn() {
  showAlert("");
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("session").hidden = false;
  const roles = rolesText(state.me.roles);
  $("who").textContent = `${state.me.principal} (${roles || state.me.kind})`;
  startStream();
}

// The server refused this browser's token or session: signs out saying `msg`, unless the person
// signed out already (a late answer to a request sent before must not replace what their
// sign-out said, nor hide the identity provider's sign-out link it offered).
function sessionRefused(msg) {
  if (state.token || state.me) signOut(msg, true);
}

async function signOut(msg, ended) {
  // A session ends on the server too (unless the server already ended it).
  let providerLogout = null;
  if (!state.token && state.me && state.me.signed_in && !ended) {
    try { providerLogout = (await api("POST", "/auth/logout")).provider_logout_url; } catch { /* already ended */ }
  }
  // The provider's own session is the person's to end: offered, never done behind their back.
  $("provider-logout").hidden = !providerLogout;
  if (providerLogout) $("provider-logout-link").href = providerLogout;
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  if (state.streamAbort) state.streamAbort.abort();
  state.streamAbort = null;
  $("nav").hidden = true;
  $("session").hidden = true;
  $("view").replaceChildren();
  $("signin").hidden = false;
  showAlert(msg || "");
  $("token").focus();
}

// ---------- live updates (SSE over fetch) ----------

function setLive(on, text) {
  const l = $("live");
  l.className = on ? "live on" : "live off";
  l.textContent = text;
}

async function startStream() {
  if (state.streamAbort) state.streamAbort.abort();
  const ctrl = new AbortController();
  state.streamAbort = ctrl;
  let delay = 500;
  while (!ctrl.signal.aborted && state.me) {
    try {
      const headers = { ...authHeaders("GET"), Accept: "text/event-stream" };
      if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
      const resp = await fetch("/api/v1/stream", { headers, signal: ctrl.signal });
      if (resp.status === 401) {
        if (!ctrl.signal.aborted) sessionRefused("Your token or sign-in was refused; sign in again.");
        return;
      }
      if (!resp.ok || !resp.body) throw new Error(`stream answered ${resp.status}`);
      setLive(true, "live");
      delay = 500;
      await readEvents(resp.body, ctrl.signal);
    } catch (e) {
      if (ctrl.signal.aborted) return;
    }
    setLive(false, "reconnecting…");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10000);
  }
}

async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!signal.aborted) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let idx;
    while ((idx = buf.search(/\r?\n\r?\n/)) >= 0) {
      const raw = buf.slice(0, idx);
      buf = buf.slice(idx + (buf[idx] === "\r" ? 4 : 2));
      const ev = { event: "message", data: "", id: null };
      for (const line of raw.split(/\r?\n/)) {
        if (!line || line.startsWith(":")) continue;
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        const val = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
        if (field === "event") ev.event = val;
        else if (field === "data") ev.data += (ev.data ? "\n" : "") + val;
        else if (field === "id") ev.id = val;
      }
      if (ev.id !== null) state.lastEventId = ev.id;
      onEvent(ev);
    }
  }
}

function onEvent(ev) {
  if (ev.event === "snapshot") return; // the views load what they need themselves
  // Any change may touch what is on screen: refresh the current view, coalesced.
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => render(true), ev.event === "changed" ? 300 : 60);
}

// ---------- routing ----------

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts: parts.length ? parts : ["rollouts"], query: new URLSearchParams(query || "") };
}

async function render(live) {
  if (!state.me) return;
  const { parts } = route();
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === parts[0]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const seq = ++state.renderSeq;
  let node;
  try {
    if (parts[0] === "rollouts" && parts[1]) node = await rolloutPage(parts[1]);
    else if (parts[0] === "rollouts") node = await rolloutsPage();
    else if (parts[0] === "plans" && parts[1]) node = await planPage(parts[1]);
    else if (parts[0] === "plans") node = await plansPage();
    else if (parts[0] === "releases" && parts[1]) node = await releasePage(parts[1]);
    else if (parts[0] === "releases") node = await releasesPage();
    else if (parts[0] === "flags" && parts[1]) node = await flagPage(parts[1]);
    else if (parts[0] === "flags") node = await flagsPage();
    else if (parts[0] === "changes" && parts[1]) node = await changePage(parts[1]);
    else if (parts[0] === "changes") node = await changesPage();
    else if (parts[0] === "notifications") node = await notificationsPage();
    else if (parts[0] === "audit") node = await auditPage();
    else if (parts[0] === "reports") node = await reportsPage();
    else node = h("p", {}, "No such page. ", h("a", { href: "#/rollouts" }, "Rollouts"));
  } catch (e) {
    if (e.status === 401) return;
    node = h("p", { class: "alert" }, `Could not load this page: ${e.message}`);
  }
  if (seq !== state.renderSeq) return; // a newer render won
  if (live && state.pressed) { state.refreshAfterPress = true; return; }
  const view = $("view");
  // Keep focus and scroll where they were on live refreshes.
  const focusedId = document.activeElement && document.activeElement.id;
  const scroll = window.scrollY;
  // Tables scroll sideways on narrow screens: keyboard users reach them too.
  for (const t of node.querySelectorAll ? node.querySelectorAll("table") : []) t.tabIndex = 0;
  view.replaceChildren(node);
  if (live) {
    if (focusedId && $(focusedId)) $(focusedId).focus();
    window.scrollTo(0, scroll);
  }
  document.title = `wavegate — ${parts.join(" / ")}`;
}

// ---------- rollouts ----------

const FILTERS = [
  ["environment", "Environment", (r) => [r.environment]],
  ["team", "Team", (r) => [r.team || ""]],
  ["region", "Region", (r) => r.regions || []],
  ["version", "Version", (r) => [r.release ? r.release.version : ""]],
  ["state", "State", (r) => [r.state]],
];

function matches(r) {
  const f = state.filters;
  for (const [key, , get] of FILTERS) {
    if (f[key] && !get(r).includes(f[key])) return false;
  }
  if (f.q) {
    const hay = `${r.id} ${r.flag} ${r.plan} ${r.service || ""}`.toLowerCase();
    if (!hay.includes(f.q.toLowerCase())) return false;
  }
  return true;
}

// Turning the global freeze on (a reason required) or off: an admin for every environment's.
function freezeButton(active) {
  return h("p", {}, h("button", {
    type: "button", id: active ? "freeze-off" : "freeze-on", class: active ? "quiet" : "danger",
    onclick: () => ask(active
      ? { title: "Lift the freeze?", text: "Held rollouts go on; new ones may start.", label: "Reason (optional)", ok: "Lift the freeze",
        act: ({ text }) => api("DELETE", "/api/v1/freeze", undefined, text ? { "X-Wavegate-Reason": text } : {}).then(() => "The freeze is lifted.") }
      : { title: "Freeze every rollout?", text: "Every running rollout holds where it is (pause and rollback still work); new ones are refused.",
        label: "Reason (required)", required: true, ok: "Freeze", danger: true,
        act: ({ text }) => api("PUT", "/api/v1/freeze", { reason: text }).then(() => "Freeze on.") }),
  }, active ? "Lift the freeze…" : "Freeze all rollouts…"));
}

// Recording pilot feedback about `release` (category, cohort, sentiment, what they said).
// What is typed survives the live re-renders (kept in `state.feedbackDraft` until sent).
function feedbackForm(release) {
  const draft = state.feedbackDraft || (state.feedbackDraft = {});
  const keep = (el) => {
    if (draft[el.id] !== undefined) el.value = draft[el.id];
    el.addEventListener("input", () => { draft[el.id] = el.value; });
    el.addEventListener("change", () => { draft[el.id] = el.value; });
    return el;
  };
  const field = (id, label, input) => h("div", {}, h("label", { for: id }, label), keep(input));
  const form = h("form", { id: "feedback-form", class: "filters", "aria-label": "Record pilot feedback" },
    field("fb-category", "Category", h("input", { id: "fb-category", required: true, placeholder: "usability" })),
    field("fb-cohort", "Cohort", h("input", { id: "fb-cohort", required: true, placeholder: "pilot team" })),
    field("fb-sentiment", "Sentiment", h("select", { id: "fb-sentiment" },
      ["positive", "neutral", "negative"].map((v) => h("option", { value: v }, v)))),
    field("fb-text", "What they said", h("input", { id: "fb-text", required: true })),
    h("div", {}, h("button", { type: "submit", id: "fb-submit" }, "Record feedback")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const item = {
      release, category: $("fb-category").value.trim(), cohort: $("fb-cohort").value.trim(),
      sentiment: $("fb-sentiment").value, text: $("fb-text").value.trim(),
    };
    try {
      await api("POST", "/api/v1/feedback", item);
      showAlert(`Feedback on ${release} recorded.`, true);
      state.feedbackDraft = {};
      form.reset();
    } catch (err) {
      showAlert(`Feedback refused: ${err.message}`);
    }
  });
  return h("section", {}, h("h2", {}, `Pilot feedback on ${release}`), form);
}

async function rolloutsPage() {
  const [rollouts, freeze] = await Promise.all([api("GET", "/api/v1/rollouts"), api("GET", "/api/v1/freeze").catch(() => null)]);
  state.rollouts = rollouts;
  const filters = h("form", { class: "filters", role: "search", "aria-label": "Filter rollouts", onsubmit: (e) => e.preventDefault() });
  for (const [key, label, get] of FILTERS) {
    const values = [...new Set(state.rollouts.flatMap(get).filter(Boolean))].sort();
    const id = `filter-${key}`;
    const sel = h("select", { id, name: key, onchange: (e) => { state.filters[key] = e.target.value; render(); } },
      h("option", { value: "" }, "any"),
      values.map((v) => h("option", { value: v, selected: state.filters[key] === v }, v)));
    filters.append(h("div", {}, h("label", { for: id }, label), sel));
  }
  filters.append(h("div", {}, h("label", { for: "filter-q" }, "Search"),
    h("input", { id: "filter-q", type: "search", value: state.filters.q, placeholder: "id, flag, plan, service",
      oninput: (e) => { state.filters.q = e.target.value; clearTimeout(state.qTimer); state.qTimer = setTimeout(() => render(true), 200); } })));
  const shown = state.rollouts.filter(matches);
  const rows = shown.map((r) => h("tr", { dataset: { rollout: r.id } },
    h("td", {}, h("a", { href: `#/rollouts/${encodeURIComponent(r.id)}` }, r.id)),
    h("td", {}, r.flag),
    h("td", {}, r.environment),
    h("td", {}, r.team || "—"),
    h("td", {}, (r.regions || []).join(", ") || "—"),
    h("td", {}, r.release ? `${r.release.name} ${r.release.version}` : "—"),
    h("td", {}, badge(r.state), r.phase ? h("span", { class: "muted" }, ` ${phaseText(r.phase)}`) : ""),
    h("td", {}, `${r.wave}/${r.waves} · ${r.exposure}`),
    h("td", {}, fmtTime(r.updated_at))));
  return h("div", {},
    h("h1", {}, "Rollouts"),
    freeze && freeze.active ? h("p", { class: "alert", id: "freeze", role: "status" },
      h("strong", {}, "Freeze on: "), `${freeze.reason || "no reason given"} — every rollout is held where it is (pause and rollback still work); lift it with wavegate freeze off.`) : "",
    holds("admin", "*") ? freezeButton(freeze && freeze.active) : "",
    filters,
    h("p", { class: "muted", id: "rollout-count" }, `${shown.length} of ${state.rollouts.length} rollouts`),
    h("table", { id: "rollouts" },
      h("thead", {}, h("tr", {}, ["Rollout", "Flag", "Env", "Team", "Regions", "Release", "State", "Wave", "Updated"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 9 }, "No rollouts match.")))));
}

function phaseText(phase) {
  if (!phase) return "";
  if (typeof phase === "string") return phase.replace(/_/g, " ");
  const k = Object.keys(phase)[0];
  return k ? k.replace(/_/g, " ") : "";
}

const COMMANDS = {
  approve: { label: "Approve", when: (r) => r.state === "running", reason: false, text: "Approve promotion past this gate." },
  pause: { label: "Pause", when: (r) => r.state === "running", reason: true, text: "Pause: exposure stays where it is; nothing promotes until resumed." },
  resume: { label: "Resume", when: (r) => r.state === "paused", reason: false, text: "Resume: the wave's hold restarts now." },
  rollback: { label: "Roll back", when: (r) => r.state === "running" || r.state === "paused", reason: true, danger: true, text: "Roll back: restore the flag's pre-rollout version now." },
  reject: { label: "Reject (no-go)", when: (r) => r.state === "running", reason: true, danger: true, text: "Reject: call no-go; the rollout stops and rolls back." },
};

// Whether I hold `role` in `env` (admin opens every role; every role reads). An admin token
// minted before roles existed holds admin.
function holds(role, env) {
  if (!state.me || state.me.kind !== "admin") return false;
  return (state.me.roles || []).some((g) =>
    (g.role === role || g.role === "admin" || role === "viewer")
    && (g.environments.includes("*") || g.environments.includes(env)));
}

// The role each rollout command needs.
const COMMAND_ROLE = { approve: "approver", reject: "approver", pause: "releaser", resume: "releaser", rollback: "releaser" };

// Whether a plan's list (approvers, no-go) names me or one of my groups (`group:<name>`).
function listed(list) {
  const groups = (state.me && state.me.groups) || [];
  return (list || []).some((a) => a === state.me.principal || (a.startsWith("group:") && groups.includes(a.slice(6))));
}

function waitingForApproval(r) {
  return r.state === "running" && r.phase === "awaiting_approval";
}

async function rolloutPage(id) {
  const r = await api("GET", `/api/v1/rollouts/${encodeURIComponent(id)}`);
  const [plan, audit] = await Promise.all([
    api("GET", `/api/v1/plans/${encodeURIComponent(r.plan)}`).catch(() => null),
    state.me.kind === "admin"
      ? api("GET", `/api/v1/audit?target=${encodeURIComponent(`rollout:${id}`)}&limit=200`).catch(() => [])
      : Promise.resolve(null),
  ]);
  const page = h("div", { id: "rollout", dataset: { state: r.state, wave: r.wave } });
  page.append(h("p", {}, h("a", { href: "#/rollouts" }, "← all rollouts")));
  page.append(h("h1", {}, `${r.flag} → ${r.release ? r.release.version : ""} in ${r.environment} `, badge(r.state)));
  if (r.reason) page.append(h("p", { id: "state-reason" }, h("strong", {}, "Why: "), r.reason));
  if (waitingForApproval(r)) {
    page.append(h("p", { class: "alert ok", id: "awaiting" },
      `Waiting for approval: ${r.approvals.length} of ${r.approvals_needed} given${r.approvals.length ? ` (${r.approvals.map((a) => a.principal).join(", ")})` : ""}.`));
  }
  const facts = [
    ["Rollout", r.id], ["Plan", `${r.plan} v${r.plan_version}`], ["Wave", `${r.wave} of ${r.waves}`],
    ["Exposure", r.exposure], ["Phase", phaseText(r.phase) || "—"], ["Team", r.team || "—"],
    ["Service", r.service || "—"], ["Regions", (r.regions || []).join(", ") || "—"],
    ["Risk", r.release ? r.release.risk : "—"], ["Requester", r.requester],
    ["Started", fmtTime(r.started_at)], ["Wave started", fmtTime(r.wave_started_at)],
  ];
  // The artifact's signature, as verified at the start (text nodes: nothing here is markup).
  if (r.release_run) facts.push(["Release", h("a", { href: `#/releases/${encodeURIComponent(r.release_run)}` }, r.release_run)]);
  if (r.artifact) facts.push(["Artifact", `signed by key ${r.artifact.key_id} (${r.artifact.key_source} key): ${r.artifact.trusted_comment}`]);
  page.append(h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))));
  if (state.me.kind === "admin") {
    const bar = h("div", { class: "actions", role: "group", "aria-label": "Rollout commands" });
    const owners = (plan && plan.spec && plan.spec.owners) || {};
    const me = state.me.principal;
    const notes = [];
    for (const [cmd, c] of Object.entries(COMMANDS)) {
      if (!c.when(r)) continue;
      if (cmd === "approve" && !waitingForApproval(r)) continue;
      let blocked = null;
      const role = COMMAND_ROLE[cmd];
      if (role && !holds(role, r.environment)) blocked = `needs the ${role} role in ${r.environment}; you hold ${rolesText(state.me.roles) || "none"}`;
      else if (cmd === "approve" && me === r.requester) blocked = "you requested this rollout; someone else must approve it";
      else if (cmd === "approve" && (owners.approvers || []).length && !listed(owners.approvers)) blocked = `only ${owners.approvers.join(", ")} may approve`;
      else if (cmd === "approve" && r.approvals.some((a) => a.principal === me)) blocked = "you have already approved this wave";
      const noteId = `note-${cmd}`;
      if (blocked) notes.push(h("p", { class: "hint", id: noteId }, `${c.label}: ${blocked}.`));
      bar.append(h("button", { type: "button", id: `cmd-${cmd}`, class: c.danger ? "danger" : "", disabled: !!blocked, "aria-describedby": blocked ? noteId : null, onclick: () => runCommand(r, cmd) }, c.label));
    }
    if (bar.childElementCount) page.append(bar);
    for (const n of notes) page.append(n);
  }
  if (r.release && state.me.kind === "admin") page.append(feedbackForm(`${r.release.name} ${r.release.version}`));
  // The post-rollout report (Markdown, as `wavegate report rollout` writes it), on request.
  // Once opened it stays open (and current) across live re-renders of the page.
  const reportBox = h("div", { id: "report-box" });
  const showReport = async () => {
    state.reportOpen = r.id;
    try {
      const text = await apiText(`/api/v1/rollouts/${encodeURIComponent(r.id)}/report?format=markdown`);
      reportBox.replaceChildren(h("pre", { id: "report", tabindex: 0 }, text));
    } catch (e) {
      reportBox.replaceChildren(h("p", { class: "v-fail" }, `The report is unavailable: ${e.message}`));
    }
  };
  page.append(h("h2", {}, "Post-rollout report"),
    h("p", {}, h("button", { type: "button", class: "quiet", id: "show-report", onclick: showReport }, "Show the report")), reportBox);
  if (state.reportOpen === r.id) showReport();
  // Wave timeline.
  const waves = plan && plan.spec ? plan.spec.waves : [];
  page.append(h("h2", {}, "Waves"));
  page.append(h("ol", { class: "timeline", id: "timeline" }, waves.map((w, i) => {
    const n = i + 1;
    const cls = n < r.wave || r.state === "completed" ? "done" : n === r.wave ? "current" : "";
    return h("li", { class: cls, "aria-current": n === r.wave ? "step" : null },
      h("div", { class: "exp" }, w.exposure),
      h("div", {}, `wave ${n}${cls === "current" ? " (current)" : cls === "done" ? " ✓" : ""}`),
      h("div", { class: "muted" }, [w.hold ? `hold ${w.hold}` : "", w.promotion ? `promotion: ${w.promotion}` : "",
        w.gates ? `gates: ${Object.keys(w.gates).join(", ")}` : ""].filter(Boolean).join(" · ")));
  })));
  // Guardrails with charts.
  page.append(h("h2", {}, "Guardrails"));
  const verdicts = r.verdicts || [];
  const guardrails = plan && plan.spec ? plan.spec.guardrails || [] : [];
  if (!guardrails.length) page.append(h("p", { class: "muted" }, "This plan has no guardrails."));
  const vt = h("table", { id: "verdicts" }, h("thead", {}, h("tr", {}, ["Guardrail", "Wave", "Verdict", "Estimate", "Bound", "Tolerance", "Why"].map((c) => h("th", { scope: "col" }, c)))));
  const vb = h("tbody");
  for (const v of verdicts) {
    const rep = v.report || {};
    vb.append(h("tr", {},
      h("td", {}, `${v.name}${v.kind !== "guardrail" && v.kind !== v.name ? ` (${v.kind})` : ""}`),
      h("td", {}, v.wave),
      h("td", { class: `v-${v.verdict}` }, v.verdict),
      h("td", {}, fmtNum(rep.estimate)),
      h("td", {}, rep.lower !== undefined ? `[${fmtNum(rep.lower)}, ${fmtNum(rep.upper)}]` : "—"),
      h("td", {}, fmtNum(rep.tolerance)),
      h("td", {}, rep.explanation || (typeof rep === "string" ? rep : ""))));
  }
  vt.append(vb);
  if (verdicts.length) page.append(vt);
  const charts = h("div", { class: "charts" });
  for (const g of guardrails) {
    const fig = h("figure", { dataset: { guardrail: g.name } }, h("figcaption", {}, `${g.name}: harm estimate, always-valid bound and tolerance`));
    charts.append(fig);
    apiText(`/api/v1/rollouts/${encodeURIComponent(id)}/guardrails/${encodeURIComponent(g.name)}/chart`)
      .then((svg) => { const holder = h("div"); holder.innerHTML = svg; fig.prepend(holder); })
      .catch((e) => fig.append(h("p", { class: "muted" }, `chart unavailable: ${e.message}`)));
  }
  page.append(charts);
  // Go/no-go scorecard.
  if (r.scorecard) page.append(...scorecardSection(r.scorecard, { plan: r.plan, environment: r.environment, requester: r.requester }));
  // Success targets (on track, at risk, met, missed) and the after-release checklist.
  const spec = (plan && plan.spec) || {};
  if ((spec.success_metrics || []).some((m) => m.target)) {
    page.append(h("h2", {}, "Success targets"));
    const holder = h("div", { id: "success" }, h("p", { class: "muted" }, "Loading…"));
    page.append(holder);
    api("GET", `/api/v1/rollouts/${encodeURIComponent(id)}/success`).then((s) => {
      holder.replaceChildren(h("table", { id: "success-targets", tabindex: 0 },
        h("thead", {}, h("tr", {}, ["Metric", "Target", "Cohort", "Status", "Evidence", "By"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, s.targets.map((t) => h("tr", { dataset: { status: t.status } },
          h("td", {}, t.metric), h("td", {}, t.target), h("td", {}, t.cohort),
          h("td", { class: t.status === "met" || t.status === "on_track" ? "v-pass" : t.status === "unknown" ? "" : "v-fail" }, t.status.replace(/_/g, " ")),
          h("td", {}, t.evidence), h("td", {}, fmtTime(t.deadline)))))));
    }).catch((e) => holder.replaceChildren(h("p", { class: "muted" }, `unavailable: ${e.message}`)));
  }
  if ((spec.after_release || []).length) {
    page.append(h("h2", {}, "After release"));
    const done = r.after_release_done || {};
    const mayClose = holds("releaser", r.environment) && r.state !== "rolled_back" && r.state !== "aborted";
    page.append(h("ul", { id: "after-release" }, spec.after_release.map((item) => {
      const d = done[item];
      return h("li", { dataset: { done: d ? "yes" : "no" } }, d ? `✓ ${item} — ${d.principal}, ${fmtTime(d.at)}` : item, " ",
        !d && mayClose ? h("button", { type: "button", class: "quiet", onclick: () => ask({
          title: `Done: ${item}?`, text: "Ticks the item off (audited); the rollout is closed when every item is done.",
          ok: "Done", required: false, label: "What was done (optional)",
          act: ({ text }) => api("POST", `/api/v1/rollouts/${encodeURIComponent(r.id)}/close-item`, { item, reason: text || undefined }).then(() => null),
        }) }, "Mark done") : "");
    })));
  }
  // Adoption by cohort, when the plan tracks it.
  if (plan && plan.spec && plan.spec.adoption) {
    page.append(h("h2", {}, "Adoption by cohort"));
    const holder = h("div", { id: "rollout-adoption" }, h("p", { class: "muted" }, "Loading…"));
    page.append(holder);
    const pct = (x) => x.rate === null || x.rate === undefined ? "—" : `${(x.rate * 100).toFixed(1)}% (${x.adopted}/${x.exposed})`;
    api("GET", `/api/v1/rollouts/${encodeURIComponent(id)}/adoption`).then((a) => {
      const heads = ["", ...a.windows.map((w) => `Last ${w} days`), ""];
      const parts = [h("p", { class: "muted" }, `Share of users served the new variant who did the key task (${a.key_task}).`),
        h("table", { id: "adoption-overall" }, h("thead", {}, h("tr", {}, heads.slice(0, -1).map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, h("tr", {}, h("th", { scope: "row" }, "All users"), a.overall.map((o) => h("td", {}, pct(o))))))];
      for (const attr of a.attributes) {
        parts.push(h("h3", {}, `By ${attr.attribute}`),
          h("table", { class: "adoption-cohorts", dataset: { attribute: attr.attribute } },
            h("thead", {}, h("tr", {}, [attr.attribute, ...heads.slice(1)].map((c) => h("th", { scope: "col" }, c)))),
            h("tbody", {}, attr.cohorts.map((c) => h("tr", { class: c.lagging ? "v-fail" : null },
              h("th", { scope: "row" }, c.value), c.rates.map((x) => h("td", {}, pct(x))), h("td", {}, c.lagging ? "lagging" : ""))))));
      }
      holder.replaceChildren(...parts);
    }).catch((e) => holder.replaceChildren(h("p", { class: "muted" }, `adoption unavailable: ${e.message}`)));
  }
  // Runbook.
  const runbook = Object.entries(r.runbook || {});
  page.append(h("h2", {}, "Runbook"));
  if (!runbook.length) page.append(h("p", { class: "muted" }, "The plan has no runbook."));
  for (const [name, steps] of runbook) page.append(h("h3", {}, name), h("pre", {}, steps));
  // Audit trail.
  if (audit) {
    page.append(h("h2", {}, "Audit trail"));
    page.append(auditTable(audit.slice().reverse(), "rollout-audit"));
  }
  return page;
}

// The one confirmation dialog: asks for a text (required or not) and any `fields`
// (`{id, label, type, required, hint}`); on confirm runs `act({text, ...fields by id})`, reports
// the outcome and re-renders.
function ask({ title, text, label, required, hint, ok, danger, fields, act }) {
  const dlg = $("confirm");
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text || "";
  const input = $("confirm-reason");
  input.value = "";
  input.required = !!required;
  $("confirm-reason-label").textContent = label;
  const extra = (fields || []).map((f) => ({ ...f, el: h("input", { id: `confirm-${f.id}`, type: f.type || "text", autocomplete: "off", required: !!f.required }) }));
  $("confirm-fields").replaceChildren(...extra.map((f) => h("div", {},
    h("label", { for: `confirm-${f.id}` }, f.label), f.el, f.hint ? h("p", { class: "hint" }, f.hint) : "")));
  $("confirm-hint").textContent = hint || "";
  $("confirm-ok").textContent = ok;
  $("confirm-ok").className = danger ? "danger" : "";
  $("confirm-form").onsubmit = async (e) => {
    e.preventDefault();
    if (required && !input.value.trim()) { input.focus(); return; }
    const missing = extra.find((f) => f.required && !f.el.value.trim());
    if (missing) { missing.el.focus(); return; }
    dlg.close();
    const values = { text: input.value.trim() };
    for (const f of extra) values[f.id] = f.el.value.trim();
    try {
      const done = await act(values);
      showAlert(done || `${ok}: done.`, true);
    } catch (err) {
      showAlert(`${ok} refused: ${err.message}`);
    }
    render(true);
  };
  $("confirm-cancel").onclick = () => dlg.close();
  dlg.showModal();
  input.focus();
}

// ---------- plans ----------

async function plansPage() {
  const [plans, rollouts] = await Promise.all([api("GET", "/api/v1/plans"), api("GET", "/api/v1/rollouts")]);
  const live = new Map(rollouts.filter((r) => ["running", "paused"].includes(r.state)).map((r) => [r.plan, r.id]));
  const notes = [];
  const rows = plans.map((p) => {
    const env = p.spec.environment;
    const blocked = holds("releaser", env) ? null : `needs the releaser role in ${env}`;
    const noteId = `note-start-${p.name}`;
    if (blocked) notes.push(h("p", { class: "hint", id: noteId }, `Start ${p.name}: ${blocked}.`));
    const rel = p.spec.release || {};
    return h("tr", { dataset: { plan: p.name } },
      h("td", {}, h("a", { href: `#/plans/${encodeURIComponent(p.name)}` }, p.name)), h("td", {}, env), h("td", {}, p.spec.flag),
      h("td", {}, rel.name ? `${rel.name} ${rel.version}` : "—"), h("td", { class: "num" }, `v${p.version}`),
      h("td", {}, live.has(p.name) ? h("a", { href: `#/rollouts/${encodeURIComponent(live.get(p.name))}` }, live.get(p.name)) : "—"),
      h("td", {}, state.me.kind === "admin" ? h("button", { type: "button", id: `start-${p.name}`, disabled: !!blocked,
        "aria-describedby": blocked ? noteId : null, onclick: () => startPlan(p) }, "Start…") : ""));
  });
  return h("div", {},
    h("h1", {}, "Plans"),
    h("table", { id: "plans" },
      h("thead", {}, h("tr", {}, ["Plan", "Environment", "Flag", "Release", "Version", "Live rollout", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)),
    ...notes,
    (state.me.roles || []).some((g) => g.role === "editor" || g.role === "admin") ? planEditor(plans) : "");
}

// The guided form for a plan's common parts — waves, guardrails, who approves, blackouts — over
// the document the editor's YAML parses to (the rest of the plan is kept as written). A change
// rewrites the YAML from the document (comments are not kept) and is checked like typing.
function planFormFields(doc, edit) {
  const list = (k) => (Array.isArray(doc[k]) ? doc[k] : []);
  const own = (k) => (Array.isArray(doc[k]) ? doc[k] : (doc[k] = []));
  const text = (id, label, obj, k, field, opts = {}) => control(id, label, h("input", { value: obj[k] ?? "", autocomplete: "off", placeholder: opts.placeholder || "",
    oninput: (e) => edit(() => {
      const v = e.target.value.trim();
      if (v === "") delete obj[k]; else obj[k] = opts.number && v !== "" && Number.isFinite(Number(v)) ? Number(v) : v;
    }) }), field);
  const pick = (id, label, obj, k, choices, field, blank) => control(id, label, h("select", { onchange: (e) => edit(() => {
    if (e.target.value === "") delete obj[k]; else obj[k] = e.target.value;
  }) }, blank ? h("option", { value: "" }, blank) : "", choices.map((c) => h("option", { value: c, selected: obj[k] === c }, c))), field);
  const rowButtons = (k, i, what) => [
    h("button", { type: "button", class: "quiet", id: `plan-${k}-${i}-up`, disabled: i === 0, onclick: () => edit(() => { const x = own(k); [x[i - 1], x[i]] = [x[i], x[i - 1]]; }, true) }, "Move up"),
    h("button", { type: "button", class: "quiet", id: `plan-${k}-${i}-remove`, "aria-label": `Remove ${what} ${i + 1}`, onclick: () => edit(() => { own(k).splice(i, 1); if (!doc[k].length) delete doc[k]; }, true) }, "Remove")];
  const owners = doc.owners && typeof doc.owners === "object" ? doc.owners : {};
  const ownersOf = () => (doc.owners && typeof doc.owners === "object" ? doc.owners : (doc.owners = {}));
  return [
    h("fieldset", { id: "plan-form-waves", dataset: { field: "waves" } }, h("legend", {}, "Waves"),
      list("waves").map((w, i) => h("div", { class: "row", dataset: { field: `waves[${i}]` } },
        text(`plan-waves-${i}-exposure`, `Wave ${i + 1} exposure`, w, "exposure", `waves[${i}].exposure`, { placeholder: "5%" }),
        pick(`plan-waves-${i}-promotion`, "Promotion", w, "promotion", ["auto", "approval"], `waves[${i}].promotion`, "(auto)"),
        text(`plan-waves-${i}-hold`, "Hold at least", w, "hold", `waves[${i}].hold`, { placeholder: "30m" }),
        text(`plan-waves-${i}-max`, "At most", w, "max_duration", `waves[${i}].max_duration`, { placeholder: "1d" }),
        ...rowButtons("waves", i, "wave"))),
      h("button", { type: "button", class: "quiet", id: "plan-add-wave", onclick: () => edit(() => { own("waves").push({ exposure: "100%" }); }, true) }, "Add wave")),
    h("fieldset", { id: "plan-form-guardrails", dataset: { field: "guardrails" } }, h("legend", {}, "Guardrails (stop conditions)"),
      list("guardrails").map((g, i) => h("div", { class: "row", dataset: { field: `guardrails[${i}]` } },
        text(`plan-guardrails-${i}-name`, "Name", g, "name", `guardrails[${i}].name`),
        text(`plan-guardrails-${i}-metric`, "Metric", g, "metric", `guardrails[${i}].metric`, { placeholder: "error, latency_ms…" }),
        pick(`plan-guardrails-${i}-comparison`, "Comparison", g, "comparison", ["relative", "absolute", "bound"], `guardrails[${i}].comparison`, "(default)"),
        text(`plan-guardrails-${i}-tolerance`, "Tolerance", g, "tolerance", `guardrails[${i}].tolerance`, { number: true }),
        text(`plan-guardrails-${i}-min-sample`, "Min sample", g, "min_sample", `guardrails[${i}].min_sample`, { number: true }),
        pick(`plan-guardrails-${i}-action`, "Then", g, "action", ["rollback", "pause", "escalate"], `guardrails[${i}].action`),
        ...rowButtons("guardrails", i, "guardrail"))),
      h("button", { type: "button", class: "quiet", id: "plan-add-guardrail", onclick: () => edit(() => {
        own("guardrails").push({ name: `guardrail-${list("guardrails").length + 1}`, metric: "error", comparison: "absolute", tolerance: 0.01, action: "rollback" });
      }, true) }, "Add guardrail")),
    h("fieldset", { id: "plan-form-owners", dataset: { field: "owners" } }, h("legend", {}, "Who asks and who approves"),
      h("div", { class: "row" },
        control("plan-requester", "Requester", h("input", { value: owners.requester || "", autocomplete: "off",
          oninput: (e) => edit(() => { ownersOf().requester = e.target.value.trim(); }) }), "owners.requester"),
        control("plan-approvers", "Approvers (comma-separated; group:NAME for a group)", h("input", { value: (owners.approvers || []).join(", "), autocomplete: "off",
          oninput: (e) => edit(() => {
            const people = e.target.value.split(",").map((x) => x.trim()).filter(Boolean);
            if (people.length) ownersOf().approvers = people; else delete ownersOf().approvers;
          }) }), "owners.approvers"),
        text("plan-required-approvals", "Approvals needed", doc, "required_approvals", "required_approvals", { number: true, placeholder: "1" }))),
    h("fieldset", { id: "plan-form-blackouts", dataset: { field: "blackouts" } }, h("legend", {}, "Blackouts (no promotion, no start)"),
      list("blackouts").map((b, i) => h("div", { class: "row", dataset: { field: `blackouts[${i}]` } },
        text(`plan-blackouts-${i}-name`, "Name", b, "name", `blackouts[${i}].name`),
        text(`plan-blackouts-${i}-start`, "From (RFC 3339)", b, "start", `blackouts[${i}].start`),
        text(`plan-blackouts-${i}-end`, "Until", b, "end", `blackouts[${i}].end`),
        text(`plan-blackouts-${i}-rrule`, "Or repeating (RRULE)", b, "rrule", `blackouts[${i}].rrule`, { placeholder: "FREQ=WEEKLY;BYDAY=FR" }),
        text(`plan-blackouts-${i}-dtstart`, "First (local)", b, "dtstart", `blackouts[${i}].dtstart`, { placeholder: "2026-01-02T16:00:00" }),
        text(`plan-blackouts-${i}-duration`, "For", b, "duration", `blackouts[${i}].duration`, { placeholder: "64h" }),
        text(`plan-blackouts-${i}-tz`, "Time zone", b, "tz", `blackouts[${i}].tz`, { placeholder: "Europe/Oslo" }),
        ...rowButtons("blackouts", i, "blackout"))),
      h("button", { type: "button", class: "quiet", id: "plan-add-blackout", onclick: () => edit(() => {
        own("blackouts").push({ name: "weekend", rrule: "FREQ=WEEKLY;BYDAY=FR", dtstart: "2026-01-02T16:00:00", duration: "64h", tz: "UTC" });
      }, true) }, "Add blackout")),
  ];
}

// The plan editor: YAML, checked as it is typed — findings at their line and column, and how
// long each wave's guardrails take to decide at the traffic entered — with the guided form for
// the common parts kept in step with it, then applied. What is typed survives live re-renders.
function planEditor(plans) {
  const draft = state.planDraft || (state.planDraft = { text: "", traffic: "" });
  const text = h("textarea", { id: "plan-yaml", rows: 14, spellcheck: "false", "aria-describedby": "plan-findings" });
  text.value = draft.text;
  const traffic = h("input", { id: "plan-traffic", type: "number", min: "0", step: "any", value: draft.traffic, placeholder: "requests/s" });
  const pick = h("select", { id: "plan-open" }, h("option", { value: "" }, "a new plan"),
    plans.map((p) => h("option", { value: p.name }, p.name)));
  const findings = h("div", { id: "plan-findings", role: "status", "aria-live": "polite" });
  const forecast = h("div", { id: "plan-forecast" });
  // The guided form: rebuilt from what the YAML parses to, unless the form made the change.
  const form = h("div", { id: "plan-form" });
  let fromForm = false;
  const buildForm = (doc) => {
    if (!doc || typeof doc !== "object" || Array.isArray(doc)) {
      form.replaceChildren(h("p", { class: "muted" }, text.value.trim() ? "The guided form needs YAML that parses." : "Type or pick a plan; its waves, guardrails, approvers and blackouts show here as a form."));
      return;
    }
    draft.doc = doc;
    form.replaceChildren(...planFormFields(doc, (change, rebuild) => {
      change();
      text.value = toYaml(doc);
      fromForm = true;
      if (rebuild) buildForm(doc);
      soon();
    }));
  };
  const lint = async () => {
    draft.text = text.value;
    draft.traffic = traffic.value;
    if (!text.value.trim()) { findings.replaceChildren(); forecast.replaceChildren(); buildForm(null); return; }
    const q = traffic.value && Number(traffic.value) > 0 ? `?traffic=${encodeURIComponent(traffic.value)}` : "";
    try {
      const resp = await fetch(`/api/v1/plans/lint${q}`, { method: "POST", headers: { ...authHeaders("POST"), "Content-Type": "application/yaml" }, body: text.value });
      const out = await resp.json();
      if (!resp.ok) throw new Error(out.message || `HTTP ${resp.status}`);
      if (!fromForm) buildForm(out.document);
      fromForm = false;
      const items = out.findings.map((f) => h("li", { class: f.severity === "error" ? "v-fail" : "" },
        `${f.line ? `line ${f.line}${f.column ? `, column ${f.column}` : ""}: ` : ""}${f.severity}[${f.code}]: ${f.message}`));
      findings.replaceChildren(h("p", { id: "plan-verdict", class: out.ok ? "v-pass" : "v-fail" },
        out.ok ? `No errors${out.findings.length ? `; ${out.findings.length} warning(s)` : ""}.` : "Errors: fix them before applying."),
        items.length ? h("ul", { id: "plan-finding-list" }, items) : "");
      forecast.replaceChildren(out.forecast.length ? h("table", { id: "plan-forecast-table", tabindex: 0 },
        h("thead", {}, h("tr", {}, ["Wave", "Guardrail", "To a pass (s)", "To catch a regression (s)"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, out.forecast.map((f) => h("tr", {}, h("td", {}, f.wave), h("td", {}, f.guardrail),
          h("td", { class: "num" }, fmtNum(f.to_pass_secs)), h("td", { class: "num" }, fmtNum(f.to_fail_secs)))))) : "");
      $("plan-apply").disabled = !out.ok;
    } catch (e) {
      findings.replaceChildren(h("p", { class: "v-fail" }, `Could not check the plan: ${e.message}`));
    }
  };
  let timer = null;
  // The draft follows every keystroke at once (a live re-render may come before the check).
  const soon = () => { draft.text = text.value; draft.traffic = traffic.value; clearTimeout(timer); timer = setTimeout(lint, 300); };
  text.addEventListener("input", soon);
  traffic.addEventListener("input", soon);
  pick.addEventListener("change", () => {
    const p = plans.find((x) => x.name === pick.value);
    text.value = p ? toYaml(p.spec) : "";
    draft.text = text.value;
    lint();
  });
  const apply = h("button", { type: "button", id: "plan-apply", disabled: true, onclick: async () => {
    try {
      const resp = await fetch("/api/v1/plans", { method: "POST", headers: { ...authHeaders("POST"), "Content-Type": "application/yaml" }, body: text.value });
      const out = await resp.json();
      if (!resp.ok) throw new Error(out.message || `HTTP ${resp.status}`);
      showAlert(`Plan ${out.name}: ${out.changed ? `stored as v${out.version}` : `unchanged at v${out.version}`}.`, true);
      state.planDraft = { text: "", traffic: "" };
      render(true);
    } catch (e) {
      showAlert(`Apply refused: ${e.message}`);
    }
  } }, "Apply");
  if (draft.text) setTimeout(lint, 0);
  buildForm(draft.text.trim() ? draft.doc : null);
  return h("section", { id: "plan-editor" },
    h("h2", {}, "Write or edit a plan"),
    h("div", { class: "filters" },
      h("div", {}, h("label", { for: "plan-open" }, "Start from"), pick),
      h("div", {}, h("label", { for: "plan-traffic" }, "Traffic for the forecast"), traffic)),
    h("details", { id: "plan-guided", open: true }, h("summary", {}, "Guided form (waves, guardrails, approvers, blackouts)"), form),
    h("label", { for: "plan-yaml" }, "Plan (YAML)"), text, findings, forecast, h("p", {}, apply));
}

// A plan's versions, each with its diff from the one before, and the drills that rehearsed it
// (their evidence: scenario, outcome, version).
async function planPage(name) {
  const enc = encodeURIComponent(name);
  const [versions, drills] = await Promise.all([api("GET", `/api/v1/plans/${enc}/versions`), api("GET", `/api/v1/plans/${enc}/drills`)]);
  const page = h("div", { id: "plan", dataset: { versions: versions.length } });
  page.append(h("p", {}, h("a", { href: "#/plans" }, "← all plans")), h("h1", {}, name));
  page.append(h("h2", {}, "Versions"));
  const list = h("ol", { id: "plan-versions", reversed: true });
  for (let i = versions.length - 1; i >= 0; i--) {
    const v = versions[i];
    const pre = h("pre", { class: "diff" });
    const before = i > 0 ? toYaml(versions[i - 1].spec) : "";
    for (const [sign, line] of lineDiff(before, toYaml(v.spec))) {
      if (sign !== " ") pre.append(h("span", { class: sign === "+" ? "add" : "del" }, `${sign} ${line}`), "\n");
    }
    list.append(h("li", { dataset: { version: v.version } },
      h("p", {}, h("strong", {}, `v${v.version}`), ` ${v.action} by ${v.actor}, ${fmtTime(v.created_at)}${v.reason ? ` — ${v.reason}` : ""}`),
      h("details", {}, h("summary", {}, i > 0 ? `changes from v${versions[i - 1].version}` : "the first version"), pre)));
  }
  const spec = versions.length ? versions[versions.length - 1].spec : {};
  const card = await api("GET", `/api/v1/plans/${enc}/scorecard`).catch(() => null);
  if (card) page.append(...scorecardSection(card, { plan: name, environment: spec.environment, requester: (spec.owners || {}).requester }));
  page.append(list, h("h2", {}, "Drills"));
  page.append(drills.length
    ? h("table", { id: "plan-drills" },
      h("thead", {}, h("tr", {}, ["When", "Scenario", "Outcome", "Plan version", "By", "Evidence"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, drills.slice().reverse().map((d) => h("tr", { dataset: { drill: d.id } }, h("td", {}, fmtTime(d.at)), h("td", {}, d.scenario),
        h("td", { class: d.passed ? "v-pass" : "v-fail" }, d.passed ? "passed" : "failed"), h("td", {}, `v${d.plan_version}`), h("td", {}, d.actor),
        h("td", {}, drillEvidence(d.report))))))
    : h("p", { class: "muted" }, "No drill recorded yet."));
  if (holds("releaser", spec.environment)) page.append(drillForm(name));
  return page;
}

// What a drill showed: the ending against the expectation, and its timeline.
function drillEvidence(report) {
  if (!report || !Array.isArray(report.timeline)) return "";
  return h("details", {}, h("summary", {}, `${report.outcome || "?"} (expected ${report.expected || "?"})`),
    report.reason ? h("p", {}, report.reason) : "",
    h("p", { class: "muted" }, `${fmtNum(report.simulated_seconds / 3600)} simulated hours, ${report.requests} requests`),
    h("table", { class: "drill-timeline" },
      h("thead", {}, h("tr", {}, ["At", "Wave", "Seen", "Decided"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, report.timeline.map((e) => h("tr", {}, h("td", {}, `${fmtNum(e.t / 60)} min`), h("td", {}, e.wave), h("td", {}, e.seen), h("td", {}, e.event))))));
}

// Rehearses the plan's current version on the server against a scenario typed here (as
// `wavegate drill --record` does), and records the outcome as its evidence.
function drillForm(name) {
  const draft = state.drillDraft && state.drillDraft.plan === name ? state.drillDraft : (state.drillDraft = { plan: name, text: `name: errors spike in wave 2
rate: 50
duration: 2d
baseline: { error_rate: 0.01, latency_ms: 120 }
faults:
  - { kind: error_rate, factor: 5, from_wave: 2 }
` });
  const text = h("textarea", { id: "drill-scenario", rows: 7, spellcheck: "false" });
  text.value = draft.text;
  text.addEventListener("input", () => { draft.text = text.value; });
  // The last outcome is kept with the draft, so a live re-render (the drill's own audit entry
  // brings one) still shows it.
  const out = h("div", { id: "drill-result", role: "status" });
  const show = (box) => {
    const d = draft.outcome;
    if (!d) return;
    box.replaceChildren(...(d.error ? [h("p", { class: "v-fail" }, d.error)]
      : [h("p", { class: d.passed ? "v-pass" : "v-fail" }, `Drill ${d.scenario}: ${d.passed ? "passed" : "failed"} against v${d.plan_version}; recorded.`), drillEvidence(d.report)]));
  };
  const run = async (e) => {
    e.target.disabled = true;
    out.replaceChildren(h("p", { class: "muted" }, "Running…"));
    try {
      draft.outcome = await api("POST", `/api/v1/plans/${encodeURIComponent(name)}/drills/run`, text.value, { "Content-Type": "application/yaml" });
    } catch (err) {
      const field = err.body && err.body.field;
      draft.outcome = { error: `${field && !err.message.startsWith(field) ? `${field}: ` : ""}${err.message}` };
    } finally { e.target.disabled = false; }
    show($("drill-result") || out);
  };
  show(out);
  return h("section", { id: "drill-run" },
    h("h3", {}, "Rehearse it (a drill)"),
    h("p", { class: "hint" }, "Simulated traffic with injected faults runs through the real rollout logic against the current version; the outcome is recorded as evidence."),
    h("label", { for: "drill-scenario" }, "Scenario (YAML: rate, duration, baseline, faults, expect)"), text,
    h("p", {}, h("button", { type: "button", id: "drill-run-button", onclick: run }, "Run and record")), out);
}

// Starts plan `p` now, or schedules it; a refused start says why (freeze, blackout, scorecard,
// promotion path, artifact digest).
function startPlan(p) {
  ask({
    title: `Start ${p.name}?`, text: `Rolls ${p.spec.flag} out in ${p.spec.environment} wave by wave, as the plan says.`,
    label: "Reason (optional)", ok: "Start",
    fields: [
      { id: "start_at", label: "Start at (optional)", type: "datetime-local", hint: "Leave empty to start now." },
      { id: "artifact", label: "Artifact SHA-256 (when the plan pins a digest)" },
    ],
    act: async ({ text, start_at, artifact }) => {
      const body = { plan: p.name, reason: text || undefined, artifact_sha256: artifact || undefined };
      if (start_at) body.start_at = new Date(start_at).toISOString();
      const out = await api("POST", "/api/v1/rollouts", body);
      return out.scheduled ? `${p.name} scheduled for ${fmtTime(out.scheduled.start_at)}.` : `${p.name} started: ${out.id}.`;
    },
  });
}

// The go/no-go scorecard of a plan (`where`: its name, environment and the requester, when a
// rollout names one) with its sign / raise red / waive buttons, as the person's roles allow.
function scorecardSection(card, where) {
  const out = [];
  out.push(h("h2", {}, "Go/no-go scorecard"));
  // Only a declared scorecard decides anything: an undeclared one is advice, and says so
  // rather than "NO-GO" on a rollout that is running.
  const text = card.declared
    ? `${card.go ? "GO" : "NO-GO"}: ${card.not_green} of ${card.items.length} items not green (no-go at ${card.max_red}); declared: gates the start and promotions`
    : `Advisory: ${card.not_green} of ${card.items.length} default items not green; the plan declares no scorecard, so these are warnings only and gate nothing`;
  out.push(h("p", { id: "scorecard-verdict", class: card.blocks ? "v-fail" : "muted" }, text));
  const st = h("table", { id: "scorecard" }, h("thead", {}, h("tr", {}, ["Item", "Status", "Set by", "Evidence or reason", ""].map((c) => h("th", { scope: "col" }, c)))));
  const sb = h("tbody");
  const scNotes = [];
  for (const i of card.items) {
    const acts = h("td", { class: "actions" });
    if (state.me.kind === "admin") {
      for (const [status, label] of [["green", "Sign"], ["red", "Raise red"], ["waived", "Waive"]]) {
        if (i.status === status) continue;
        // Signing and waiving vouch for the change: the approver's, never the requester's.
        let blocked = null;
        const vouch = status !== "red";
        if (vouch && !holds("approver", where.environment)) blocked = `needs the approver role in ${where.environment}`;
        else if (!vouch && !["editor", "releaser", "approver"].some((x) => holds(x, where.environment))) blocked = `needs the editor, releaser or approver role in ${where.environment}`;
        else if (vouch && where.requester === state.me.principal) blocked = "you requested this rollout (separation of duties, rule \"requester\")";
        const noteId = `note-sc-${i.key}-${status}`;
        if (blocked) scNotes.push(h("p", { class: "hint", id: noteId }, `${label} ${i.title}: ${blocked}.`));
        acts.append(h("button", { type: "button", class: "quiet", id: `sc-${i.key}-${status}`, disabled: !!blocked,
          "aria-describedby": blocked ? noteId : null, onclick: () => setScorecardItem(where, i, status, label) }, label));
      }
    }
    sb.append(h("tr", { dataset: { item: i.key, status: i.status } },
      h("td", {}, i.title + (i.automatic ? " (automatic)" : "")),
      h("td", { class: i.status === "green" || i.status === "waived" ? "v-pass" : "v-fail" }, i.status),
      h("td", {}, i.by || "—"),
      h("td", {}, i.note || ""),
      acts));
  }
  st.append(sb);
  out.push(st, ...scNotes);
  return out;
}

// Sets scorecard item `i` of plan `where.plan` to `status` (evidence, or a waiver's reason).
function setScorecardItem(where, i, status, label) {
  ask({
    title: `${label}: ${i.title}?`, ok: label, required: status === "waived",
    label: status === "waived" ? "Reason (required)" : "Evidence (a link or a note)",
    act: ({ text }) => api("PUT", `/api/v1/plans/${encodeURIComponent(where.plan)}/scorecard/${encodeURIComponent(i.key)}`,
      { status, note: text || undefined }).then(() => `${i.title}: ${status}.`),
  });
}

function runCommand(r, cmd) {
  const c = COMMANDS[cmd];
  ask({
    title: `${c.label} ${r.id}?`, text: c.text, ok: c.label, danger: c.danger, required: c.reason,
    label: c.reason ? "Reason (required)" : "Reason (optional)",
    hint: c.reason ? "The reason goes into the audit trail and the notifications." : "",
    act: ({ text }) => api("POST", `/api/v1/rollouts/${encodeURIComponent(r.id)}/${cmd}`, { reason: text || undefined }).then(() => null),
  });
}

// ---------- change requests ----------

// Whether I hold `role` in every one of `envs`.
function holdsAll(role, envs) {
  return envs.every((e) => holds(role, e));
}

async function changesPage() {
  const all = await api("GET", "/api/v1/changes");
  const me = state.me.principal;
  const mine = all.filter((c) => c.state === "open" && c.author.by !== me && holdsAll("approver", c.environments)
    && !c.approvals.some((a) => a.by === me));
  const due = all.filter((c) => c.awaiting_review);
  const row = (c) => h("tr", { dataset: { change: c.id } },
    h("td", {}, h("a", { href: `#/changes/${encodeURIComponent(c.id)}` }, c.id)),
    h("td", {}, c.awaiting_review ? `${c.state}, review due` : c.state),
    h("td", {}, c.author.by), h("td", {}, c.environments.join(", ")),
    h("td", { class: "num" }, `${c.approvals.length}/${c.required_approvals}`),
    h("td", {}, c.emergency ? `EMERGENCY: ${c.description}` : c.description));
  const table = (id, list) => list.length
    ? h("table", { id },
      h("thead", {}, h("tr", {}, ["Change", "State", "Author", "Environments", "Approvals", "Description"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.map(row)))
    : h("p", { class: "muted" }, "None.");
  return h("div", {},
    h("h1", {}, "Change requests"),
    h("p", { class: "hint" }, "Protected environments change only through reviewed requests (wavegate change propose) or a declared emergency."),
    h("h2", {}, "Waiting for my review"), table("changes-mine", mine),
    h("h2", {}, "Emergencies awaiting their post-incident review"), table("changes-due", due),
    h("h2", {}, "All"), table("changes", all));
}

// A line diff (longest common subsequence) of two texts: `[sign, line]` pairs.
function lineDiff(a, b) {
  const x = a.split("\n"), y = b.split("\n");
  const n = x.length, m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) {
    L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  }
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
    else if (L[i + 1][j] >= L[i][j + 1]) out.push(["-", x[i++]]);
    else out.push(["+", y[j++]]);
  }
  while (i < n) out.push(["-", x[i++]]);
  while (j < m) out.push(["+", y[j++]]);
  return out;
}

const CHANGE_ACTIONS = {
  approve: { label: "Approve", role: "approver", when: (c) => c.state === "open" },
  reject: { label: "Reject", role: "approver", when: (c) => ["open", "approved"].includes(c.state), input: "Reason (required)", field: "reason", danger: true },
  comment: { label: "Comment", role: null, when: () => true, input: "Comment", field: "text" },
  apply: { label: "Apply", role: "editor", when: (c) => c.state === "approved" },
  withdraw: { label: "Withdraw", role: null, when: (c) => ["open", "approved"].includes(c.state), danger: true },
  review: { label: "Record post-incident review", role: "approver", when: (c) => c.awaiting_review, input: "Summary (required)", field: "summary", link: true },
};

async function changePage(id) {
  const c = await api("GET", `/api/v1/changes/${encodeURIComponent(id)}`);
  const me = state.me.principal;
  const page = h("div", { id: "change", dataset: { state: c.state } });
  page.append(h("p", {}, h("a", { href: "#/changes" }, "← all change requests")));
  page.append(h("h1", {}, `${c.id} `, badge(c.state)));
  page.append(h("p", { id: "change-description" }, c.description));
  if (c.emergency) page.append(h("p", { class: "alert" }, `Emergency declared by ${c.emergency.by}: ${c.emergency.reason}`));
  const facts = [["Author", `${c.author.by} (${fmtTime(c.author.at)})`], ["Record", c.record || "—"],
    ["Environments", c.environments.join(", ")], ["Protected", c.protected.join(", ") || "—"],
    ["Approvals", `${c.approvals.length} of ${c.required_approvals}${c.approvals.length ? ` (${c.approvals.map((a) => a.by).join(", ")})` : ""}`]];
  page.append(h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))));
  if (c.touches_runbook) page.append(h("p", { class: "alert" }, "This change alters a plan's runbook or checks."));
  // Actions, each disabled with the reason when it is not mine to take.
  const bar = h("div", { class: "actions", role: "group", "aria-label": "Change request actions" });
  const notes = [];
  for (const [act, a] of Object.entries(CHANGE_ACTIONS)) {
    if (!a.when(c)) continue;
    let blocked = null;
    if ((act === "approve" || act === "review") && c.author.by === me) blocked = `you proposed it; another person must (separation of duties, rule "change-author")`;
    else if (a.role && !holdsAll(a.role, c.environments)) blocked = `needs the ${a.role} role in ${c.environments.join(", ")}`;
    else if (act === "approve" && c.approvals.some((x) => x.by === me)) blocked = "you have already approved it";
    else if ((act === "withdraw") && c.author.by !== me) blocked = "only its author withdraws it";
    else if (act === "apply" && c.author.by !== me && !holdsAll("admin", c.environments)) blocked = "its author (or an admin) applies it";
    const noteId = `note-change-${act}`;
    if (blocked) notes.push(h("p", { class: "hint", id: noteId }, `${a.label}: ${blocked}.`));
    bar.append(h("button", { type: "button", id: `change-${act}`, class: a.danger ? "danger" : "", disabled: !!blocked,
      "aria-describedby": blocked ? noteId : null, onclick: () => changeAction(c, act) }, a.label));
  }
  page.append(bar, ...notes);
  // What it changes, against the current versions.
  page.append(h("h2", {}, "What it changes"));
  for (const item of c.items) {
    const path = item.kind === "plan" ? `/api/v1/plans/${encodeURIComponent(item.key)}` : `/api/v1/${item.kind}s/${encodeURIComponent(item.key)}`;
    const current = await api("GET", path).catch(() => null);
    const before = current ? JSON.stringify(current.spec, null, 2) : "";
    const pre = h("pre", { class: "diff", id: `diff-${item.kind}-${item.key}` });
    for (const [sign, line] of lineDiff(before, JSON.stringify(item.spec, null, 2))) {
      pre.append(h("span", { class: sign === "+" ? "add" : sign === "-" ? "del" : "" }, `${sign} ${line}`), "\n");
    }
    page.append(h("h3", {}, `${item.kind} ${item.key}: proposed against v${item.base_version}, now v${current ? current.version : 0} (${item.environments.join(", ")})`), pre);
  }
  page.append(h("h2", {}, "Comments"));
  page.append(c.comments.length
    ? h("ul", { id: "comments" }, c.comments.map((x) => h("li", {}, h("strong", {}, x.by), ` (${fmtTime(x.at)}): `, x.text)))
    : h("p", { class: "muted" }, "None."));
  if (c.rejected) page.append(h("p", { class: "alert" }, `Rejected by ${c.rejected.by}: ${c.rejected.reason}`));
  if (c.review) page.append(h("p", { id: "review" }, `Post-incident review by ${c.review.by}: ${c.review.summary} `, h("a", { href: c.review.link, rel: "noreferrer" }, c.review.link)));
  return page;
}

function changeAction(c, act) {
  const a = CHANGE_ACTIONS[act];
  ask({
    title: `${a.label}: ${c.id}?`, text: c.description, ok: a.label, danger: a.danger,
    required: !!a.input, label: a.input || "Note (not recorded)",
    fields: a.link ? [{ id: "link", label: "Post-mortem link", type: "url", required: true }] : [],
    act: ({ text, link }) => {
      const body = {};
      if (a.field) body[a.field] = text;
      if (a.link) body.link = link;
      return api("POST", `/api/v1/changes/${encodeURIComponent(c.id)}/${act}`, body).then(() => null);
    },
  });
}

// ---------- flags ----------

async function flagsPage() {
  const [flags, staleList, segments, envs] = await Promise.all([api("GET", "/api/v1/flags"), api("GET", "/api/v1/flags?stale=true"),
    api("GET", "/api/v1/segments"), api("GET", "/api/v1/environments")]);
  const stale = new Map(staleList.map((f) => [f.key, f.stale]));
  const editor = (state.me.roles || []).some((g) => g.role === "editor" || g.role === "admin");
  const envNames = envs.map((e) => e.name);
  const flagTemplate = { variants: { on: true, off: false }, default: "off",
    environments: Object.fromEntries(envNames.map((e) => [e, { enabled: false }])) };
  return h("div", {},
    h("h1", {}, "Flags"),
    staleList.length ? h("p", { id: "stale-flags" }, `${staleList.length} stale flag${staleList.length === 1 ? "" : "s"} (rollout finished and settled): remove from code.`) : "",
    h("table", { id: "flags" },
      h("thead", {}, h("tr", {}, ["Flag", "Version", "Description", "Environments", "Updated by", "Updated"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, flags.map((f) => h("tr", { dataset: { flag: f.key } },
        h("td", {}, h("a", { href: `#/flags/${encodeURIComponent(f.key)}` }, f.key),
          stale.has(f.key) ? h("span", { class: "badge stale", title: `stale since ${fmtTime(stale.get(f.key).since)} after ${stale.get(f.key).rollout}` }, " stale: remove from code") : ""),
        h("td", {}, `v${f.version}`),
        h("td", {}, f.spec.description || ""),
        h("td", {}, Object.entries(f.spec.environments || {}).map(([e, c]) => `${e}${c.enabled ? "" : " (off)"}`).join(", ")),
        h("td", {}, f.updated_by),
        h("td", {}, fmtTime(f.updated_at)))))),
    editor ? flagEditor({ key: "", version: 0, spec: flagTemplate },
      { environments: envNames, segments: segments.map((g) => g.key), flags: flags.map((x) => x.key) }) : "",
    h("h2", {}, "Segments"),
    h("table", { id: "segments" },
      h("thead", {}, h("tr", {}, ["Segment", "Version", "Description", "Members", "Updated by"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, segments.map((g) => h("tr", { dataset: { segment: g.key } },
        h("td", {}, g.key), h("td", {}, `v${g.version}`), h("td", {}, g.spec.description || ""),
        h("td", {}, g.spec.keys_redacted ? "withheld" : `${(g.spec.keys || []).length} keys, ${(g.spec.constraints || []).length} constraints`),
        h("td", {}, g.updated_by))))),
    editor ? segmentEditor(segments) : "");
}

// A new or stored segment as a form (description, member keys, constraints) and as YAML, kept
// in step both ways as the flag editor does (the YAML checked by the server as it is typed); a
// problem is shown at its field; saved with a reason. What is typed survives live re-renders.
function segmentEditor(existing) {
  const template = { keys: [] };
  const draft = state.segmentDraft || (state.segmentDraft = { key: "", spec: structuredClone(template), yaml: toYaml(template), problem: null });
  const box = h("div", { id: "segment-form" });
  const general = h("p", { id: "segment-error", class: "v-fail", role: "status" });
  const yaml = h("textarea", { id: "segment-yaml", rows: 8, spellcheck: "false", "aria-describedby": "segment-error" });
  yaml.value = draft.yaml;
  const key = h("input", { id: "segment-new-key", value: draft.key, autocomplete: "off", spellcheck: "false", oninput: () => { draft.key = key.value.trim(); } });
  const show = () => showProblem(box, general, draft.problem);
  const { check, soon, edit, cancel } = draftSync("segment", () => draft.key || "new-segment", draft, yaml, show, () => build());
  const build = () => {
    const spec = draft.spec;
    box.replaceChildren(
      control("segment-description", "Description", h("input", { value: spec.description || "", autocomplete: "off",
        oninput: (e) => edit(() => { if (e.target.value) spec.description = e.target.value; else delete spec.description; }) }), "description"),
      spec.keys_redacted ? h("p", { class: "muted" }, "Its member keys are withheld from this token.")
        : control("segment-keys", "Member keys (targeting keys, one per line)", h("textarea", { rows: 3, spellcheck: "false",
          oninput: (e) => edit(() => {
            const keys = e.target.value.split("\n").map((k) => k.trim()).filter(Boolean);
            if (keys.length) spec.keys = keys; else delete spec.keys;
          }) }, (spec.keys || []).join("\n")), "keys"),
      constraintRows(spec, "", "segment", edit));
    show();
  };
  yaml.addEventListener("input", () => { draft.yaml = yaml.value; draft.touched = true; soon(true); });
  build();
  // Rendered again (a live update) with a draft in hand: check it again here.
  if (draft.touched) soon(false);
  // A stored segment's versions and archive button show once it is picked.
  const history = h("div", { id: "segment-history" });
  if (existing.some((x) => x.key === draft.key)) segmentHistory(draft.key, history);
  const pick = existing.length ? h("select", { id: "segment-open", onchange: (e) => {
    // What is picked is the draft from now on, even in an editor a save has just let go of.
    state.segmentDraft = draft;
    const found = existing.find((x) => x.key === e.target.value);
    if (found) segmentHistory(found.key, history); else history.replaceChildren();
    draft.key = found ? found.key : "";
    draft.spec = structuredClone(found ? found.spec : template);
    draft.yaml = toYaml(draft.spec);
    draft.problem = null;
    key.value = draft.key;
    yaml.value = draft.yaml;
    build();
  } }, h("option", { value: "" }, "a new segment"), existing.map((x) => h("option", { value: x.key, selected: x.key === draft.key }, x.key))) : null;
  const save = async () => {
    if (!draft.key) { key.focus(); draft.problem = { field: "key", message: "the segment needs a key" }; show(); return; }
    cancel();
    await check(true);
    if (draft.problem) { general.prepend("Not saved — "); return; }
    const k = draft.key;
    ask({
      title: `Save segment ${k}?`, label: "Reason (required)", required: true, ok: "Save",
      act: async ({ text: why }) => {
        try {
          const out = await api("PUT", `/api/v1/segments/${encodeURIComponent(k)}`, draft.spec, { "X-Wavegate-Reason": why });
          state.segmentDraft = null;
          return `Saved segment ${k}: v${out.segment.version}${out.changed ? "" : " (unchanged)"}.`;
        } catch (e) {
          draft.problem = { field: e.body && e.body.field, message: e.message };
          show();
          throw e;
        }
      },
    });
  };
  return h("section", { id: "segment-editor" },
    h("h2", {}, "New or changed segment"),
    h("div", { class: "filters" },
      pick ? h("div", {}, h("label", { for: "segment-open" }, "Start from"), pick) : "",
      h("div", {}, h("label", { for: "segment-new-key" }, "Key"), key)),
    box,
    h("details", { open: true }, h("summary", {}, "YAML (the same document; edit either)"),
      h("label", { for: "segment-yaml" }, "The segment as YAML"), yaml),
    general,
    h("p", {}, h("button", { type: "button", id: "segment-new-save", onclick: save }, "Save…")),
    history);
}

function describeRule(rule) {
  const parts = [];
  if (rule.segment) parts.push(`segment ${rule.segment}`);
  for (const c of rule.constraints || []) {
    parts.push(`${c.attribute} ${c.negate ? "not " : ""}${c.op} ${JSON.stringify(c.values ?? c.value)}`);
  }
  const when = parts.length ? `when ${parts.join(" and ")}` : "everyone";
  const serve = rule.serve !== undefined ? `serve ${rule.serve}`
    : rule.split ? `split ${Object.entries(rule.split).map(([v, p]) => `${v} ${p}`).join(" / ")} by ${rule.stickiness || "default"}` : "";
  return `${when} → ${serve}`;
}

// What the flag form offers: the environments, segments and other flags' keys.
async function editorContext() {
  const [envs, segments, flags] = await Promise.all([api("GET", "/api/v1/environments"), api("GET", "/api/v1/segments"), api("GET", "/api/v1/flags")]);
  return { environments: envs.map((e) => e.name), segments: segments.map((g) => g.key), flags: flags.map((x) => x.key) };
}

async function flagPage(key) {
  const enc = encodeURIComponent(key);
  const [f, versions, ctx] = await Promise.all([api("GET", `/api/v1/flags/${enc}`), api("GET", `/api/v1/flags/${enc}/versions`), editorContext()]);
  const page = h("div", { id: "flag", dataset: { version: f.version } });
  page.append(h("p", {}, h("a", { href: "#/flags" }, "← all flags")));
  page.append(h("h1", {}, `${f.key} `, h("span", { class: "muted" }, `v${f.version}`)));
  if (f.spec.description) page.append(h("p", {}, f.spec.description));
  page.append(h("p", {}, `Variants: ${Object.entries(f.spec.variants || {}).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ")}; default ${f.spec.default}`));
  page.append(h("h2", {}, "Rules"));
  for (const [env, c] of Object.entries(f.spec.environments || {})) {
    page.append(h("div", { class: "env", dataset: { env } },
      h("h3", {}, `${env} — ${c.enabled ? "enabled" : "disabled (serves " + (f.spec.disabled_variant || f.spec.default) + ")"}`),
      (c.rules || []).length
        ? h("ol", {}, c.rules.map((rule) => h("li", {}, h("strong", {}, rule.name || "(unnamed)"), `: ${describeRule(rule)}`)))
        : h("p", { class: "muted" }, `no rules; serves ${f.spec.default}`)));
  }
  if ((state.me.roles || []).some((g) => g.role === "editor" || g.role === "admin")) page.append(flagEditor(f, ctx));
  page.append(h("h2", {}, "History"));
  const diffBox = h("div", { id: "diff" });
  const rows = versions.slice().reverse().map((v) => h("tr", {},
    h("td", {}, `v${v.version}`),
    h("td", {}, v.action || ""),
    h("td", {}, v.actor),
    h("td", {}, v.reason || ""),
    h("td", {}, fmtTime(v.created_at)),
    h("td", {},
      v.version > 1 ? h("button", { type: "button", class: "quiet", onclick: () => showDiff(key, v.version - 1, v.version, diffBox) }, `diff v${v.version - 1}→v${v.version}`) : "",
      " ",
      (state.me.roles || []).some((g) => g.role === "editor" || g.role === "admin") && v.version !== f.version
        ? h("button", { type: "button", class: "quiet", id: `revert-${v.version}`, onclick: () => revertDoc("flag", key, v.version) }, `revert to v${v.version}`) : "")));
  page.append(h("table", { id: "versions" },
    h("thead", {}, h("tr", {}, ["Version", "Action", "By", "Reason", "When", ""].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows)));
  page.append(diffBox);
  return page;
}

// ---------- flags and segments as forms and as YAML ----------

// A document as YAML, as the server reads it back (strict booleans: every string that could read
// as something else is quoted, as JSON, which YAML reads the same).
function toYaml(doc) {
  const plain = /^[A-Za-z_][A-Za-z0-9_./ -]*$/;
  const reserved = /^(true|false|null|yes|no|on|off|y|n)$/i;
  const str = (s) => (plain.test(s) && !reserved.test(s) && !/ $/.test(s) ? s : JSON.stringify(s));
  const block = (x) => x !== null && typeof x === "object" && Object.keys(x).length > 0;
  const leaf = (x) => (x === null ? "null" : typeof x === "string" ? str(x)
    : typeof x === "object" ? (Array.isArray(x) ? "[]" : "{}") : String(x));
  const lines = (x, pad) => {
    const out = [];
    if (Array.isArray(x)) {
      for (const item of x) {
        if (!block(item)) { out.push(`${pad}- ${leaf(item)}`); continue; }
        const inner = lines(item, `${pad}  `);
        out.push(`${pad}- ${inner[0].slice(pad.length + 2)}`, ...inner.slice(1));
      }
    } else {
      for (const [k, v] of Object.entries(x)) {
        if (block(v)) out.push(`${pad}${str(k)}:`, ...lines(v, `${pad}  `));
        else out.push(`${pad}${str(k)}: ${leaf(v)}`);
      }
    }
    return out;
  };
  return block(doc) ? `${lines(doc, "").join("\n")}\n` : `${leaf(doc)}\n`;
}

const OPERATORS = ["in", "not_in", "eq", "contains", "starts_with", "ends_with", "lt", "lte", "gt", "gte",
  "semver_lt", "semver_lte", "semver_eq", "semver_gte", "semver_gt", "date_before", "date_after", "regex", "in_cidr"];

function variantType(v) {
  return typeof v === "boolean" ? "boolean" : typeof v === "number" ? "number" : typeof v === "string" ? "string" : "json";
}

// A variant's value from the text typed for its type; throws a message when it does not fit.
function variantValue(type, text) {
  if (type === "boolean") return text === "true";
  if (type === "number") {
    const n = Number(text);
    if (text.trim() === "" || !Number.isFinite(n)) throw new Error(`${JSON.stringify(text)} is not a number`);
    return n;
  }
  if (type === "json") {
    try { return JSON.parse(text); } catch (e) { throw new Error(`not JSON: ${e.message}`); }
  }
  return text;
}

const variantText = (v) => (typeof v === "string" ? v : JSON.stringify(v));

// One labelled control. `field` is the document path the server names in a refusal
// (`environments.prod.rules[0].split`), so a problem is shown beside its control.
function control(id, label, input, field) {
  input.id = id;
  if (field) input.dataset.field = field;
  return h("div", { class: "control" }, h("label", { for: id }, label), input);
}

// Constraints (all must hold) of `owner` (a rule or a segment) as rows: attribute, operator,
// values, not, any case. `edit(change, rebuild)` applies a change to the draft.
function constraintRows(owner, base, idp, edit) {
  const list = owner.constraints || [];
  const at = (i) => `${base ? `${base}.` : ""}constraints[${i}]`;
  const change = (i, fn, rebuild) => edit(() => {
    owner.constraints = owner.constraints || [];
    fn(owner.constraints, i);
    if (!owner.constraints.length) delete owner.constraints;
  }, rebuild);
  return h("fieldset", { class: "constraints" }, h("legend", {}, "Constraints (all must hold)"),
    list.map((c, i) => h("div", { class: "row", dataset: { field: at(i) } },
      control(`${idp}-c${i}-attr`, "Attribute", h("input", { value: c.attribute || "", autocomplete: "off",
        oninput: (e) => change(i, (l) => { l[i].attribute = e.target.value.trim(); }) }), `${at(i)}.attribute`),
      control(`${idp}-c${i}-op`, "Operator", h("select", { onchange: (e) => change(i, (l) => { l[i].op = e.target.value; }) },
        OPERATORS.map((o) => h("option", { value: o, selected: o === c.op }, o.replaceAll("_", " ")))), `${at(i)}.op`),
      control(`${idp}-c${i}-values`, "Values (comma-separated)", h("input", { value: (c.values || []).join(", "), autocomplete: "off",
        oninput: (e) => change(i, (l) => { l[i].values = e.target.value.split(",").map((v) => v.trim()).filter((v) => v !== ""); }) }),
      `${at(i)}.values`),
      control(`${idp}-c${i}-negate`, "Not", h("input", { type: "checkbox", checked: !!c.negate,
        onchange: (e) => change(i, (l) => { if (e.target.checked) l[i].negate = true; else delete l[i].negate; }) })),
      control(`${idp}-c${i}-case`, "Any case", h("input", { type: "checkbox", checked: !!c.case_insensitive,
        onchange: (e) => change(i, (l) => { if (e.target.checked) l[i].case_insensitive = true; else delete l[i].case_insensitive; }) })),
      h("button", { type: "button", class: "quiet", id: `${idp}-c${i}-remove`, "aria-label": `Remove constraint ${i + 1}`,
        onclick: () => change(i, (l) => { l.splice(i, 1); }, true) }, "Remove"))),
    h("button", { type: "button", class: "quiet", id: `${idp}-add-constraint`,
      onclick: () => change(0, (l) => { l.push({ attribute: "", op: "in", values: [] }); }, true) }, "Add constraint"));
}

// One rule of an environment: name, segment, constraints, then serve a variant (to a sticky
// share, optionally) or split by sticky percentages, and what the share sticks to.
function ruleFields(spec, env, rules, i, ctx) {
  const rule = rules[i];
  const base = `environments.${env}.rules[${i}]`;
  const idp = `flag-${env}-r${i}`;
  const variants = Object.keys(spec.variants || {});
  const edit = ctx.edit;
  const set = (k, v, rebuild) => edit(() => { if (v === "" || v === undefined) delete rule[k]; else rule[k] = v; }, rebuild);
  const mode = rule.split ? "split" : "serve";
  return h("li", { class: "rule", dataset: { field: base } },
    h("div", { class: "row" },
      control(`${idp}-name`, "Rule name", h("input", { value: rule.name || "", autocomplete: "off", oninput: (e) => set("name", e.target.value.trim()) }), `${base}.name`),
      control(`${idp}-segment`, "Segment", h("select", { onchange: (e) => set("segment", e.target.value) },
        h("option", { value: "" }, "(anyone)"),
        [...new Set([...ctx.segments, rule.segment].filter(Boolean))].map((s) => h("option", { value: s, selected: s === rule.segment }, s))), `${base}.segment`),
      control(`${idp}-mode`, "Then", h("select", { onchange: (e) => edit(() => {
        if (e.target.value === "split") {
          delete rule.serve; delete rule.percentage;
          rule.split = Object.fromEntries(variants.map((v, k) => [v, k === 0 ? "100%" : "0%"]));
        } else { delete rule.split; rule.serve = spec.default; }
      }, true) }, h("option", { value: "serve", selected: mode === "serve" }, "serve a variant"),
        h("option", { value: "split", selected: mode === "split" }, "split by percentage")))),
    constraintRows(rule, base, idp, edit),
    mode === "serve"
      ? h("div", { class: "row" },
        control(`${idp}-serve`, "Serve", h("select", { onchange: (e) => set("serve", e.target.value) },
          variants.map((v) => h("option", { value: v, selected: v === rule.serve }, v))), `${base}.serve`),
        control(`${idp}-percentage`, "To this sticky share (blank: all)", h("input", { value: rule.percentage ?? "", placeholder: "e.g. 25%", autocomplete: "off",
          onchange: (e) => set("percentage", e.target.value.trim(), true) }), `${base}.percentage`))
      : h("div", { class: "row", dataset: { field: `${base}.split` } }, variants.map((v) =>
        control(`${idp}-split-${v}`, `${v} %`, h("input", { value: String((rule.split || {})[v] ?? "0%"), autocomplete: "off",
          oninput: (e) => edit(() => { rule.split[v] = e.target.value.trim(); }) }), `${base}.split`))),
    rule.split || rule.percentage !== undefined
      ? h("div", { class: "row" }, control(`${idp}-stickiness`, "Sticks to", h("input", { value: rule.stickiness || "", placeholder: "default: targetingKey", autocomplete: "off",
        oninput: (e) => set("stickiness", e.target.value.trim()) }), `${base}.stickiness`)) : "",
    h("p", { class: "actions" },
      h("button", { type: "button", class: "quiet", id: `${idp}-up`, disabled: i === 0, onclick: () => edit(() => { [rules[i - 1], rules[i]] = [rules[i], rules[i - 1]]; }, true) }, "Move up"),
      h("button", { type: "button", class: "quiet", id: `${idp}-down`, disabled: i === rules.length - 1, onclick: () => edit(() => { [rules[i + 1], rules[i]] = [rules[i], rules[i + 1]]; }, true) }, "Move down"),
      h("button", { type: "button", class: "quiet", id: `${idp}-remove`, onclick: () => edit(() => { rules.splice(i, 1); }, true) }, "Remove rule")));
}

// The whole flag as a form over the draft's `spec` (the objects shown are the draft's own):
// `ctx.edit(change, rebuild)` applies a change and rebuilds the form only when its shape
// changed, so typing and Tab keep their place.
function flagFormFields(spec, ctx) {
  const edit = ctx.edit;
  const variants = Object.entries(spec.variants || {});
  const names = variants.map(([k]) => k);
  const envs = [...new Set([...ctx.environments, ...Object.keys(spec.environments || {})])];
  const envOf = (env) => {
    spec.environments = spec.environments || {};
    return (spec.environments[env] = spec.environments[env] || { enabled: false });
  };
  return [
    control("flag-description", "Description", h("input", { value: spec.description || "", autocomplete: "off",
      oninput: (e) => edit(() => { if (e.target.value) spec.description = e.target.value; else delete spec.description; }) }), "description"),
    h("fieldset", { id: "flag-variants", dataset: { field: "variants" } }, h("legend", {}, "Variants"),
      variants.map(([name, value], i) => h("div", { class: "row" },
        control(`flag-v${i}-name`, "Name", h("input", { value: name, autocomplete: "off", onchange: (e) => edit(() => {
          const to = e.target.value.trim();
          if (!to || to === name || to in spec.variants) { e.target.value = name; return; }
          spec.variants = Object.fromEntries(Object.entries(spec.variants).map(([k, v]) => [k === name ? to : k, v]));
          if (spec.default === name) spec.default = to;
          if (spec.disabled_variant === name) spec.disabled_variant = to;
        }, true) }), `variants.${name}`),
        control(`flag-v${i}-type`, "Type", h("select", { onchange: (e) => edit(() => {
          const t = e.target.value;
          spec.variants[name] = t === "boolean" ? false : t === "number" ? 0 : t === "json" ? {} : variantText(value);
        }, true) }, ["boolean", "string", "number", "json"].map((t) => h("option", { value: t, selected: t === variantType(value) }, t)))),
        variantType(value) === "boolean"
          ? control(`flag-v${i}-value`, "Value", h("select", { onchange: (e) => edit(() => { spec.variants[name] = e.target.value === "true"; }) },
            h("option", { value: "true", selected: value === true }, "true"), h("option", { value: "false", selected: value === false }, "false")), `variants.${name}`)
          : control(`flag-v${i}-value`, "Value", h("input", { value: variantText(value), autocomplete: "off", oninput: (e) => edit(() => {
            try { spec.variants[name] = variantValue(variantType(value), e.target.value); e.target.setCustomValidity(""); } catch (err) { e.target.setCustomValidity(err.message); }
          }) }), `variants.${name}`),
        h("button", { type: "button", class: "quiet", id: `flag-v${i}-remove`, disabled: names.length < 2,
          onclick: () => edit(() => { delete spec.variants[name]; }, true) }, "Remove"))),
      h("button", { type: "button", class: "quiet", id: "flag-add-variant", onclick: () => edit(() => {
        let n = names.length + 1;
        while (`variant-${n}` in spec.variants) n++;
        spec.variants[`variant-${n}`] = `variant-${n}`;
      }, true) }, "Add variant")),
    h("div", { class: "row" },
      control("flag-default", "Default variant", h("select", { onchange: (e) => edit(() => { spec.default = e.target.value; }) },
        names.map((v) => h("option", { value: v, selected: v === spec.default }, v))), "default"),
      control("flag-disabled-variant", "When disabled, serve", h("select", { onchange: (e) => edit(() => {
        if (e.target.value) spec.disabled_variant = e.target.value; else delete spec.disabled_variant;
      }) }, h("option", { value: "" }, "(the default)"), names.map((v) => h("option", { value: v, selected: v === spec.disabled_variant }, v))), "disabled_variant")),
    h("fieldset", { id: "flag-prerequisites", dataset: { field: "prerequisites" } }, h("legend", {}, "Prerequisites (flags that must hold first)"),
      (spec.prerequisites || []).map((p, i) => h("div", { class: "row", dataset: { field: `prerequisites[${i}]` } },
        control(`flag-p${i}-flag`, "Flag", h("input", { value: p.flag || "", list: "flag-keys", autocomplete: "off",
          oninput: (e) => edit(() => { p.flag = e.target.value.trim(); }) }), `prerequisites[${i}].flag`),
        control(`flag-p${i}-enabled`, "Must be", h("select", { onchange: (e) => edit(() => {
          if (e.target.value === "off") { p.enabled = false; delete p.variants; } else delete p.enabled;
        }, true) }, h("option", { value: "on", selected: p.enabled !== false }, "on"), h("option", { value: "off", selected: p.enabled === false }, "off"))),
        p.enabled === false ? "" : control(`flag-p${i}-variants`, "Serving one of (comma-separated; blank: any)", h("input", { value: (p.variants || []).join(", "), autocomplete: "off",
          oninput: (e) => edit(() => {
            const list = e.target.value.split(",").map((v) => v.trim()).filter(Boolean);
            if (list.length) p.variants = list; else delete p.variants;
          }) }), `prerequisites[${i}].variants`),
        h("button", { type: "button", class: "quiet", id: `flag-p${i}-remove`, onclick: () => edit(() => {
          spec.prerequisites.splice(i, 1);
          if (!spec.prerequisites.length) delete spec.prerequisites;
        }, true) }, "Remove"))),
      h("datalist", { id: "flag-keys" }, ctx.flags.map((k) => h("option", { value: k }))),
      h("button", { type: "button", class: "quiet", id: "flag-add-prerequisite", onclick: () => edit(() => {
        (spec.prerequisites || (spec.prerequisites = [])).push({ flag: "" });
      }, true) }, "Add prerequisite")),
    envs.map((env) => {
      const c = (spec.environments || {})[env] || { enabled: false };
      const rules = c.rules || [];
      const envEdit = (change, rebuild) => edit(() => {
        const own = envOf(env);
        if (rules.length && !own.rules) own.rules = rules;
        change();
        if (own.rules && !own.rules.length) delete own.rules;
      }, rebuild);
      return h("fieldset", { class: "env", dataset: { env, field: `environments.${env}` } }, h("legend", {}, env),
        control(`flag-enabled-${env}`, `Enabled in ${env}`, h("input", { type: "checkbox", checked: !!c.enabled,
          onchange: (e) => edit(() => { envOf(env).enabled = e.target.checked; }) }), `environments.${env}.enabled`),
        h("ol", { class: "rules" }, rules.map((_, i) => ruleFields(spec, env, rules, i, { ...ctx, edit: envEdit }))),
        h("button", { type: "button", class: "quiet", id: `flag-${env}-add-rule`, onclick: () => edit(() => {
          const own = envOf(env);
          own.rules = own.rules || [];
          own.rules.push({ name: `rule-${own.rules.length + 1}`, serve: spec.default });
        }, true) }, `Add rule in ${env}`));
    }),
  ];
}

// Shows `problem` (a check's or a refusal's) beside the control whose field it names, or at the
// YAML's line and column, in `general` when no control is named.
function showProblem(box, general, problem) {
  for (const el of box.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of box.querySelectorAll(".field-error")) el.remove();
  general.textContent = "";
  if (!problem) return;
  const where = problem.line ? `line ${problem.line}, column ${problem.column}: ` : "";
  const field = (problem.field || "").replace(/^body\.?/, "");
  let best = null;
  for (const el of box.querySelectorAll("[data-field]")) {
    const f = el.dataset.field;
    const fits = field === f || field.startsWith(`${f}.`) || field.startsWith(`${f}[`);
    if (fits && (!best || f.length > best.dataset.field.length)) best = el;
  }
  const text = `${problem.field && !problem.message.startsWith(problem.field) ? `${problem.field}: ` : ""}${problem.message}`;
  if (best && field) {
    best.setAttribute("aria-invalid", "true");
    best.after(h("p", { class: "field-error v-fail", role: "alert" }, text));
  }
  general.textContent = `${where}${text}`;
}
// One draft shown as a form and as YAML (a flag, a segment): `edit(change, rebuild)` applies a
// form change and rewrites the YAML; `soon` checks the YAML on the server 300 ms after the last
// change, and typed YAML (`soon(true)`) fills the form again through `rebuild`. One sequence per
// draft: a check an earlier rendering started (before a live re-render) never overwrites a
// later one.
function draftSync(kind, key, draft, yaml, show, rebuild) {
  let timer = null;
  const check = async (fromYaml) => {
    // A check that supersedes one of typed YAML (a live re-render checks the draft again)
    // still fills the form from that YAML.
    fromYaml = fromYaml || Boolean(draft.yamlPending);
    draft.yamlPending = fromYaml;
    const mine = (draft.seq = (draft.seq || 0) + 1);
    try {
      const r = await checkDoc(kind, key(), draft.yaml);
      if (mine !== draft.seq) return;
      draft.yamlPending = false;
      draft.problem = r.error;
      if (fromYaml && r.spec) { draft.spec = r.spec; rebuild(); }
      show();
    } catch (e) { if (mine === draft.seq) { draft.yamlPending = false; draft.problem = { message: e.message }; show(); } }
  };
  const soon = (fromYaml) => { clearTimeout(timer); timer = setTimeout(() => check(fromYaml), 300); };
  const edit = (change, again) => {
    change();
    draft.touched = true;
    draft.yamlPending = false; // the form is the source now: its YAML replaces what was typed
    draft.yaml = toYaml(draft.spec);
    yaml.value = draft.yaml;
    if (again) rebuild();
    soon(false);
  };
  return { check, soon, edit, cancel: () => clearTimeout(timer) };
}

// Checks `text` (YAML) as the document of `kind` `key` without storing it.
function checkDoc(kind, key, text) {
  return api("POST", `/api/v1/${kind}s/${encodeURIComponent(key || "new")}/check`, text, { "Content-Type": "application/yaml" });
}

// The flag editor, for a stored flag (`f.version` > 0) or a new one: the form and the YAML view
// of one draft, kept in step both ways — the form writes the YAML; typed YAML is checked by the
// server as it is typed and fills the form. A problem is shown at the field it names (or the
// YAML's line and column). The diff against the current version shows before saving; the
// reason is asked for and recorded; saving sends If-Match, so a change made meanwhile is not
// overwritten. The draft survives live re-renders.
function flagEditor(f, ctx) {
  const isNew = !f.version;
  const draft = state.flagDraft && state.flagDraft.key === (isNew ? null : f.key) && state.flagDraft.base === f.version
    ? state.flagDraft
    : (state.flagDraft = { key: isNew ? null : f.key, base: f.version, newKey: "", spec: structuredClone(f.spec), yaml: toYaml(f.spec), problem: null });
  const box = h("div", { id: "flag-form" });
  const general = h("p", { id: "flag-error", class: "v-fail", role: "status" });
  const yaml = h("textarea", { id: "flag-yaml", rows: 14, spellcheck: "false", "aria-describedby": "flag-error" });
  yaml.value = draft.yaml;
  const keyInput = isNew ? h("input", { id: "flag-new-key", value: draft.newKey, autocomplete: "off", spellcheck: "false",
    oninput: (e) => { draft.newKey = e.target.value.trim(); } }) : null;
  const key = () => (isNew ? draft.newKey : f.key);
  const show = () => showProblem(box, general, draft.problem);
  const { check, soon, edit, cancel } = draftSync("flag", () => key() || "new-flag", draft, yaml, show, () => build());
  const build = () => {
    box.replaceChildren(...flagFormFields(draft.spec, { ...ctx, edit }).flat());
    show();
  };
  yaml.addEventListener("input", () => { draft.yaml = yaml.value; draft.touched = true; soon(true); });
  build();
  // Rendered again (a live update) with a draft in hand: check it again here.
  if (draft.touched) soon(false);
  const diff = h("div", { id: "flag-diff" });
  const review = () => {
    const pre = h("pre", { class: "diff" });
    for (const [sign, line] of lineDiff(isNew ? "" : toYaml(f.spec), draft.yaml)) {
      if (sign !== " ") pre.append(h("span", { class: sign === "+" ? "add" : "del" }, `${sign} ${line}`), "\n");
    }
    diff.replaceChildren(h("h3", {}, isNew ? "The new flag" : `Changes against v${f.version}`),
      pre.childElementCount ? pre : h("p", { class: "muted" }, "No changes."));
  };
  const save = async () => {
    if (!key()) { keyInput.focus(); draft.problem = { field: "key", message: "the flag needs a key" }; show(); return; }
    cancel();
    await check(true);
    if (draft.problem) { general.prepend("Not saved — "); return; }
    review();
    ask({
      title: `Save ${key()}?`, text: isNew ? "Creates v1 (shown under the editor)." : `Writes v${f.version + 1} (the changes are shown under the editor).`,
      label: "Reason (required)", required: true, ok: "Save",
      act: async ({ text: why }) => {
        const headers = { "X-Wavegate-Reason": why };
        if (!isNew) headers["If-Match"] = String(f.version);
        try {
          const k = key();
          const out = await api("PUT", `/api/v1/flags/${encodeURIComponent(k)}`, draft.spec, headers);
          state.flagDraft = null;
          if (isNew) location.hash = `#/flags/${encodeURIComponent(k)}`;
          return `Saved flag ${k}: v${out.flag.version}${out.changed ? "" : " (unchanged)"}.`;
        } catch (e) {
          draft.problem = { field: e.body && e.body.field, message: e.message };
          show();
          throw e;
        }
      },
    });
  };
  return h("section", { id: "flag-editor" },
    h("h2", {}, isNew ? "New flag" : "Edit"),
    isNew ? control("flag-new-key", "Key", keyInput) : "",
    box,
    h("details", { id: "flag-yaml-view", open: true }, h("summary", {}, "YAML (the same document; edit either)"),
      h("label", { for: "flag-yaml" }, "The flag as YAML"), yaml),
    general,
    h("p", { class: "actions" },
      h("button", { type: "button", class: "quiet", id: "flag-review", onclick: review }, "Review changes"),
      h("button", { type: "button", id: "flag-save", onclick: save }, "Save…"),
      !isNew && holds("editor", "*") ? h("button", { type: "button", class: "danger", id: "flag-archive", onclick: () => ask({
        title: `Archive ${f.key}?`, text: "An archived flag stops being served in every environment.", label: "Reason (required)", required: true, ok: "Archive", danger: true,
        act: ({ text: why }) => api("POST", `/api/v1/flags/${encodeURIComponent(f.key)}/archive`, undefined, { "X-Wavegate-Reason": why }).then(() => `Archived ${f.key}.`),
      }) }, "Archive…") : ""),
    diff);
}

async function showDiff(key, from, to, box) {
  try {
    const d = await api("GET", `/api/v1/flags/${encodeURIComponent(key)}/diff?from=${from}&to=${to}`);
    const pre = h("pre", { class: "diff" });
    for (const line of String(d.diff).split("\n")) {
      pre.append(h("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }, line), "\n");
    }
    box.replaceChildren(h("h3", {}, `Diff v${from} → v${to}`), pre);
    box.scrollIntoView();
  } catch (e) {
    showAlert(`Diff failed: ${e.message}`);
  }
}

// Reverts flag or segment `key` to `version` (a new version with the old content), with a reason.
function revertDoc(kind, key, version) {
  ask({
    title: `Revert ${kind} ${key} to v${version}?`, text: "This writes a new version with the content of the old one.",
    label: "Reason (required)", required: true, ok: "Revert", danger: true,
    act: async ({ text }) => {
      const out = await api("POST", `/api/v1/${kind}s/${encodeURIComponent(key)}/revert`, { version, reason: text });
      return `Reverted ${key}: now v${out.version ?? "?"}.`;
    },
  });
}

// A stored segment's versions (each revertible) and its archive button, under the editor.
async function segmentHistory(key, box) {
  const enc = encodeURIComponent(key);
  let versions;
  try { versions = await api("GET", `/api/v1/segments/${enc}/versions`); } catch (e) { box.replaceChildren(); return; }
  const current = versions.length ? versions[versions.length - 1].version : 0;
  box.replaceChildren(h("h3", {}, `${key}: versions`),
    h("table", { id: "segment-versions" },
      h("thead", {}, h("tr", {}, ["Version", "Action", "By", "Reason", "When", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, versions.slice().reverse().map((v) => h("tr", { dataset: { version: v.version } },
        h("td", {}, `v${v.version}`), h("td", {}, v.action || ""), h("td", {}, v.actor), h("td", {}, v.reason || ""), h("td", {}, fmtTime(v.created_at)),
        h("td", {}, v.version !== current ? h("button", { type: "button", class: "quiet", id: `segment-revert-${v.version}`,
          onclick: () => revertDoc("segment", key, v.version) }, `revert to v${v.version}`) : "current"))))),
    h("p", { class: "actions" }, h("button", { type: "button", class: "danger", id: "segment-archive", onclick: () => ask({
      title: `Archive segment ${key}?`, text: "Refused while a live flag still uses it.", label: "Reason (required)", required: true, ok: "Archive", danger: true,
      act: ({ text: why }) => api("POST", `/api/v1/segments/${enc}/archive`, undefined, { "X-Wavegate-Reason": why }).then(() => {
        state.segmentDraft = null;
        return `Archived segment ${key}.`;
      }),
    }) }, "Archive…")));
}

// ---------- notifications and audit ----------

// Coordinated releases: each with its state and members.
async function releasesPage() {
  const list = await api("GET", "/api/v1/releases");
  return h("div", {},
    h("h1", {}, "Releases"),
    h("p", { class: "muted" }, "Several plans in order (after), at one pace (with), under one failure policy. Store one with wavegate release apply -f FILE."),
    list.length ? h("table", { id: "releases" },
      h("thead", {}, h("tr", {}, ["Release", "State", "Members", "Started"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, list.map((r) => h("tr", { dataset: { release: r.name } },
        h("td", {}, h("a", { href: `#/releases/${encodeURIComponent(r.name)}` }, r.name)),
        h("td", {}, badge(r.state)),
        h("td", {}, r.members.map((m) => `${m.plan} (${m.state})`).join(", ")),
        h("td", {}, r.started_at ? `${fmtTime(r.started_at)} by ${r.started_by}` : "—"))))) :
      h("p", { class: "muted" }, "No release yet."));
}

// One release: its members (with their rollouts), the Start button, and its one timeline.
async function releasePage(name) {
  const report = await api("GET", `/api/v1/releases/${encodeURIComponent(name)}/report`);
  const r = report.release;
  const page = h("div", {}, h("p", {}, h("a", { href: "#/releases" }, "← all releases")), h("h1", {}, name));
  if (r.doc.description) page.append(h("p", {}, r.doc.description));
  page.append(h("dl", { class: "facts" }, [["State", r.state], ["On failure", r.doc.on_failure || "pause_all"],
    ["Started", r.started_at ? `${fmtTime(r.started_at)} by ${r.started_by}` : "—"]]
    .map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))));
  if (r.failure) page.append(h("p", { class: "alert", id: "release-failure" }, r.failure));
  if (r.waiting) page.append(h("p", { class: "alert", id: "release-waiting" }, `Waiting: ${r.waiting}`));
  if (state.me.kind === "admin" && r.state !== "running") {
    page.append(h("p", {}, h("button", { type: "button", id: "release-start", onclick: () => ask({
      title: `Start ${name}?`, text: "Starts the members nothing precedes now, as you; the others as what they come after completes.",
      label: "Reason (optional)", ok: "Start",
      act: async ({ text }) => {
        const reason = text ? { "X-Wavegate-Reason": text } : undefined;
        const out = await api("POST", `/api/v1/releases/${encodeURIComponent(name)}/start`, undefined, reason);
        return `${name} started (${out.members.filter((m) => m.rollout).length} member(s) running).`;
      },
    }) }, "Start release…")));
  }
  const doc = new Map(r.doc.members.map((m) => [m.plan, m]));
  page.append(h("h2", {}, "Members"), h("table", { id: "release-members" },
    h("thead", {}, h("tr", {}, ["Plan", "After", "With", "State", "Rollout"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, r.members.map((m) => h("tr", { dataset: { plan: m.plan } },
      h("td", {}, h("a", { href: `#/plans/${encodeURIComponent(m.plan)}` }, m.plan)),
      h("td", {}, (doc.get(m.plan).after || []).join(", ") || "—"),
      h("td", {}, (doc.get(m.plan).with || []).join(", ") || "—"),
      h("td", {}, badge(m.state), m.wave ? h("span", { class: "muted" }, ` wave ${m.wave}`) : ""),
      h("td", {}, m.rollout ? h("a", { href: `#/rollouts/${encodeURIComponent(m.rollout)}` }, m.rollout) : "—"))))));
  page.append(h("h2", {}, "Timeline"), report.timeline.length ? h("ol", { id: "release-timeline" },
    report.timeline.map((e) => h("li", {}, `${fmtTime(e.at)} — [${e.member}] ${e.action} by ${e.actor}${e.reason ? `: ${e.reason}` : ""}`))) :
    h("p", { class: "muted" }, "Nothing yet."));
  return page;
}

// DORA metrics (30 days, by service) and the release calendar (14 days).
async function reportsPage() {
  const [dora, cal, adoption] = await Promise.all([api("GET", "/api/v1/reports/dora?since=30d"), api("GET", "/api/v1/calendar?days=14"),
    api("GET", "/api/v1/reports/adoption")]);
  const rate = (r) => r.rate === null || r.rate === undefined ? "—" : `${(r.rate * 100).toFixed(1)}% of ${r.exposed}`;
  const fmt = (m) => m.value === null || m.value === undefined ? "—"
    : m.unit === "ratio" ? `${(m.value * 100).toFixed(1)}%` : m.unit === "per day" ? fmtPerDay(m.value) : `${m.value.toFixed(1)} h`;
  const cell = (m) => h("td", {}, `${fmt(m)} `, h("span", { class: `cluster c-${m.cluster}` }, m.cluster));
  return h("div", {},
    h("h1", {}, "Reports"),
    h("h2", {}, "DORA metrics, last 30 days, by service"),
    dora.groups.length ? h("table", { id: "dora" },
      h("thead", {}, h("tr", {}, ["Service", "Deployments", "Deployment frequency", "Lead time", "Change fail rate", "Recovery time", "Rework rate"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, dora.groups.map((g) => h("tr", {}, h("td", {}, g.group), h("td", {}, g.deployments),
        cell(g.deployment_frequency), cell(g.lead_time), cell(g.change_fail_rate), cell(g.recovery_time), cell(g.rework_rate))))) :
      h("p", { class: "muted" }, "No rollout ended in the last 30 days."),
    h("h2", {}, "Calendar, next 14 days"),
    cal.entries.length ? h("table", { id: "calendar" },
      h("thead", {}, h("tr", {}, ["Start", "End", "Kind", "Environment", "What"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, cal.entries.map((e) => h("tr", { class: e.kind === "conflict" || e.kind === "freeze" ? "v-fail" : null },
        h("td", {}, fmtTime(e.start)), h("td", {}, fmtTime(e.end)), h("td", {}, e.kind), h("td", {}, e.environment || "—"), h("td", {}, e.title))))) :
      h("p", { class: "muted" }, "Nothing on the calendar."),
    h("h2", {}, "Adoption by cohort"),
    adoption.rollouts.length ? h("table", { id: "adoption" },
      h("thead", {}, h("tr", {}, ["Rollout", "Environment", "Release", "Key task", "Last 30 days", "Last 60 days", "Last 90 days", "Lagging cohorts"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, adoption.rollouts.map((r) => h("tr", { dataset: { rollout: r.rollout }, class: r.lagging.length ? "v-fail" : null },
        h("td", {}, h("a", { href: `#/rollouts/${encodeURIComponent(r.rollout)}` }, r.rollout)),
        h("td", {}, r.environment), h("td", {}, r.release), h("td", {}, r.key_task),
        r.overall.map((o) => h("td", {}, rate(o))),
        h("td", {}, r.lagging.length ? r.lagging.map((l) => `${l.attribute} = ${l.value} (${(l.rate.rate * 100).toFixed(1)}%)`).join(", ") : "none"))))) :
      h("p", { class: "muted" }, "No rollout is tracking adoption (a plan opts in with an adoption: section)."));
}

async function notificationsPage() {
  let deliveries;
  try {
    deliveries = await api("GET", "/api/v1/notifications/deliveries?limit=200");
  } catch (e) {
    if (e.status === 404) return h("div", {}, h("h1", {}, "Notifications"), h("p", { class: "muted" }, "This server has no notification support."));
    throw e;
  }
  const list = Array.isArray(deliveries) ? deliveries : deliveries.deliveries || [];
  return h("div", {},
    h("h1", {}, "Notification deliveries"),
    h("table", { id: "deliveries" },
      h("thead", {}, h("tr", {}, ["When", "Target", "Audience", "Event", "Rollout", "Status", "Attempts", "Last error"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, list.length ? list.map((d) => h("tr", {},
        h("td", {}, fmtTime(d.created_at)),
        h("td", {}, d.target),
        h("td", {}, d.audience),
        h("td", {}, d.event),
        h("td", {}, d.rollout ? h("a", { href: `#/rollouts/${encodeURIComponent(d.rollout)}` }, d.rollout) : "—"),
        h("td", { class: d.status === "delivered" ? "v-pass" : d.status === "failed" ? "v-fail" : "v-inconclusive" }, d.status),
        h("td", {}, d.attempts),
        h("td", {}, d.last_error || ""))) : h("tr", {}, h("td", { colspan: 8 }, "No deliveries yet.")))));
}

function auditTable(entries, id) {
  return h("table", { id },
    h("thead", {}, h("tr", {}, ["#", "When", "Who", "What", "Target", "Reason"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, entries.map((e) => h("tr", {},
      h("td", {}, e.seq),
      h("td", {}, fmtTime(e.at)),
      h("td", {}, e.actor, e.via ? h("small", { class: "via" }, ` via ${e.via}`) : ""),
      h("td", {}, e.action),
      h("td", {}, e.target),
      h("td", {}, e.reason || "")))));
}

async function auditPage() {
  if (state.me.kind !== "admin") return h("p", {}, "The audit log needs an admin token.");
  const verify = await api("GET", "/api/v1/audit/verify");
  // The newest 200 entries: page to the end, keep the tail.
  let after = 0;
  let all = [];
  for (;;) {
    const page = await api("GET", `/api/v1/audit?after=${after}&limit=1000`);
    all = all.concat(page).slice(-200);
    if (page.length < 1000) break;
    after = page[page.length - 1].seq;
  }
  return h("div", {},
    h("h1", {}, "Audit log"),
    h("p", { id: "verify", class: verify.ok ? "v-pass" : "v-fail" },
      verify.ok ? `Chain verified: ${verify.verified} entries.` : `Chain broken at #${verify.first_bad.seq}: ${verify.first_bad.problem}`),
    auditTable(all.reverse(), "audit"));
}

// ---------- start ----------

window.addEventListener("hashchange", () => render());
document.addEventListener("DOMContentLoaded", async () => {
  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await signIn($("token").value)) { $("token").value = ""; render(); $("main").focus(); }
  });
  $("signout").addEventListener("click", () => signOut("Signed out."));
  let config = { oidc: false, session: false };
  try {
    config = await (await fetch("/auth/config")).json();
    if (config.oidc) {
      $("signin-oidc").hidden = false;
      $("signin-oidc-issuer").textContent = `Through ${config.issuer}.`;
    }
  } catch { /* tokens only */ }
  if (state.token && (await signIn(state.token))) render();
  else if (config.session && (await resumeSession())) render();
  else signOut("", true);
});
