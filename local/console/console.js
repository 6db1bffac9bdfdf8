// The local stack's web console: watch a challenge's leaderboard live, act as one person,
// connect / reconnect / disconnect their providers through the sandbox consent pages, sync
// their steps and see their last 14 days; as the organizer, see who is not syncing and why,
// send them reminders (delivered to the local receiver) and export the results. Plain JS against the real API; no build step.
"use strict";

const BOARD_EVERY_MS = 2000;
const PERSON_EVERY_MS = 5000;
const ORGANIZER_EVERY_MS = 10000;

const state = {
  user: null,
  token: null,
  challenge: null,
  connectable: [],
  board: new Map(), // user id → steps shown, to flash what changed
};

const $ = (selector) => document.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

const number = (n) => Number(n).toLocaleString("en-US");
const DAY_MS = 86400000;
// A date as the API's local dates (YYYY-MM-DD), in UTC like the demo and its sandboxes.
const isoDay = (date) => date.toISOString().slice(0, 10);

function say(text, isError = false) {
  const message = $("#message");
  message.textContent = text;
  message.classList.toggle("error", isError);
  message.hidden = !text;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? null;
  }
}

async function api(method, path, { body, token = state.token } = {}) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = { message: text }; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

async function devToken(user, admin = false) {
  const answer = await api("POST", "/dev/token", { body: { user, admin }, token: null });
  return answer.token;
}

// ---------------------------------------------------------------------------------------------
// Who we are

async function becomePerson(user) {
  const token = await devToken(user);
  state.user = user;
  state.token = token;
  localStorage.setItem("stepsync.user", user);
  $("#person-input").value = user;
  $("#person-info").textContent = `Signed in as ${user} (a local token; the real API Gateway checks a JWT the same way).`;
  $("#sync").disabled = false;
  await Promise.all([refreshBoard(), refreshPerson()]);
}

// ---------------------------------------------------------------------------------------------
// Challenges and the leaderboard

async function loadChallenges(preferred) {
  const { challenges } = await api("GET", "/v1/challenges");
  const select = $("#challenge");
  select.replaceChildren(
    ...challenges.map((c) => el("option", { value: c.id, text: `${c.name} (${c.state})` })),
  );
  const ids = challenges.map((c) => c.id);
  state.challenge = ids.includes(preferred) ? preferred : ids.includes("demo-walk") ? "demo-walk" : ids[0] ?? null;
  if (state.challenge) select.value = state.challenge;
  if (!state.challenge) {
    $("#challenge-info").textContent = "No challenge yet: create one with “New challenge”.";
    $("#leaderboard tbody").replaceChildren();
  }
}

async function createChallenge() {
  const admin = await devToken(state.user ?? "console-admin", true);
  const today = new Date();
  const end = new Date(today.getTime() + 27 * DAY_MS);
  const created = await api("POST", "/v1/challenges", {
    token: admin,
    body: { name: `Walk challenge ${isoDay(today)}`, start_date: isoDay(today), end_date: isoDay(end), time_zone: "UTC" },
  });
  await loadChallenges(created.id);
  say(`Created “${created.name}”. Join it as a person to appear on its leaderboard.`);
  await Promise.all([refreshBoard(), refreshPerson()]);
}

async function refreshBoard() {
  if (!state.challenge || !state.token) return;
  const id = encodeURIComponent(state.challenge);
  const [details, board] = await Promise.all([
    api("GET", `/v1/challenges/${id}`),
    api("GET", `/v1/challenges/${id}/leaderboard?limit=200`),
  ]);
  $("#challenge-info").textContent =
    `${details.start_date} → ${details.end_date} (${details.time_zone}), ${details.state}; steps count until ${details.closes_at}.`;
  const rows = board.entries.map((entry) => {
    const changed = state.board.has(entry.user_id) && state.board.get(entry.user_id) !== entry.steps;
    state.board.set(entry.user_id, entry.steps);
    const row = el(
      "tr",
      { "data-user": entry.user_id, title: `Be ${entry.user_id}`, onclick: () => becomePerson(entry.user_id).catch(report) },
      el("td", { text: String(entry.rank) }),
      el("td", { class: "user", text: entry.user_id }),
      el("td", { class: "num steps", text: number(entry.steps) }),
    );
    if (entry.user_id === state.user) row.classList.add("me");
    if (changed) row.classList.add("changed");
    return row;
  });
  $("#leaderboard tbody").replaceChildren(...rows);
  $("#people").replaceChildren(...board.entries.map((e) => el("option", { value: e.user_id })));
  // The demo's stories, for the people on this board: one click to look at them.
  const onBoard = new Set(board.entries.map((e) => e.user_id));
  const stories = (state.stories ?? []).filter((s) => onBoard.has(s.user));
  $("#stories").replaceChildren(
    ...stories.map((s) =>
      el("li", {}, el("a", { href: "#", "data-user": s.user, onclick: (event) => { event.preventDefault(); becomePerson(s.user).catch(report); }, text: s.user }), ` ${s.what}`),
    ),
  );
  $("#stories-box").hidden = stories.length === 0;
  const count = board.entries.length;
  $("#board-updated").textContent = `${count} ${count === 1 ? "person" : "people"} · updated ${new Date().toLocaleTimeString()}`;
  $("#join").disabled = details.joined;
  $("#join").hidden = details.joined;
  $("#leave").hidden = !details.joined;
}

async function setMembership(join) {
  const id = encodeURIComponent(state.challenge);
  await api(join ? "POST" : "DELETE", `/v1/challenges/${id}/join`);
  say(join ? `${state.user} joined the challenge.` : `${state.user} left the challenge.`);
  await refreshBoard();
}

// ---------------------------------------------------------------------------------------------
// The person: connections, diagnosis, the last 14 days

function connectionItem(provider, name, connection) {
  const status = connection?.status ?? "not_connected";
  const diagnosis = connection?.diagnosis;
  const oauth = state.connectable.some((c) => c.provider === provider);
  const actions = [];
  // As a deployed app does: ask for a one-time start link with the token in the header, then
  // open it (a navigation cannot carry the token).
  const go = (verb) => async () => {
    say(`${verb} ${name}…`);
    const back = `${location.origin}/`;
    const link = await api("POST", `/v1/connections/${provider}/authorize`, { body: { return_to: back } });
    location.assign(link.authorize_url);
  };
  if (oauth && (!connection || status === "disconnected")) {
    actions.push(el("button", { type: "button", "data-action": "connect", onclick: () => go("Connecting")().catch(report) }, `Connect ${name}`));
  } else if (oauth && (status === "reconnect_required" || diagnosis?.action === "reconnect")) {
    actions.push(el("button", { type: "button", "data-action": "reconnect", onclick: () => go("Reconnecting")().catch(report) }, `Reconnect ${name}`));
  }
  if (connection && status !== "disconnected") {
    actions.push(
      el("button", {
        type: "button", class: "danger", "data-action": "disconnect",
        onclick: () => disconnect(provider, name).catch(report),
      }, "Disconnect"),
    );
  }
  const facts = [];
  if (connection?.last_success_at) facts.push(`last synced ${new Date(connection.last_success_at).toLocaleString()}`);
  if (connection?.newest_data_date) facts.push(`newest day ${connection.newest_data_date}`);
  if (connection?.next_sync_at) facts.push(`next sweep ${new Date(connection.next_sync_at).toLocaleTimeString()}`);
  if (!oauth && !connection) facts.push("uploads from the phone app");
  return el(
    "li",
    { class: "connection", "data-provider": provider, "data-status": status },
    el("div", {}, el("span", { class: "name", text: name }), el("span", { class: `status ${status}`, text: status.replaceAll("_", " ") })),
    diagnosis
      ? el("p", { class: `diagnosis${diagnosis.action === "none" ? "" : " act"}`, "data-action": diagnosis.action, text: diagnosis.message })
      : "",
    facts.length ? el("p", { class: "muted", text: facts.join(" · ") }) : "",
    el("div", { class: "row" }, ...actions),
  );
}

async function refreshPerson() {
  if (!state.token) return;
  const to = new Date();
  const from = new Date(to.getTime() - 13 * DAY_MS);
  const [status, steps] = await Promise.all([
    api("GET", "/v1/sync/status"),
    api("GET", `/v1/steps?from=${isoDay(from)}&to=${isoDay(to)}`),
  ]);
  const byProvider = new Map(status.connections.map((c) => [c.provider, c]));
  const items = state.connectable.map(({ provider, name }) => connectionItem(provider, name, byProvider.get(provider)));
  for (const connection of status.connections) {
    if (!state.connectable.some((c) => c.provider === connection.provider)) {
      items.push(connectionItem(connection.provider, providerName(connection.provider), connection));
    }
  }
  $("#connections").replaceChildren(...items);
  drawChart(from, steps.days);
}

function providerName(provider) {
  const names = { apple_health: "Apple Health", health_connect: "Health Connect", fitbit: "Fitbit" };
  return state.connectable.find((c) => c.provider === provider)?.name ?? names[provider] ?? provider;
}

function drawChart(from, days) {
  const byDate = new Map(days.map((d) => [d.local_date, d.steps]));
  const series = Array.from({ length: 14 }, (_, i) => {
    const date = isoDay(new Date(from.getTime() + i * DAY_MS));
    return { date, steps: byDate.get(date) ?? 0 };
  });
  const width = 560, height = 180, top = 16, bottom = 22, gap = 6;
  const max = Math.max(1000, ...series.map((d) => d.steps));
  const barWidth = (width - gap * 13) / 14;
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  series.forEach((d, i) => {
    const x = i * (barWidth + gap);
    const h = ((height - top - bottom) * d.steps) / max;
    const bar = document.createElementNS(svgNs, "rect");
    Object.entries({ class: "bar", x, y: height - bottom - h, width: barWidth, height: h, "data-date": d.date, "data-steps": d.steps })
      .forEach(([k, v]) => bar.setAttribute(k, v));
    const title = document.createElementNS(svgNs, "title");
    title.textContent = `${d.date}: ${number(d.steps)} steps`;
    bar.append(title);
    const label = document.createElementNS(svgNs, "text");
    Object.entries({ class: "label", x: x + barWidth / 2, y: height - 6 }).forEach(([k, v]) => label.setAttribute(k, v));
    label.textContent = d.date.slice(8);
    svg.append(bar, label);
    if (d.steps > 0) {
      const value = document.createElementNS(svgNs, "text");
      Object.entries({ class: "value", x: x + barWidth / 2, y: height - bottom - h - 4 }).forEach(([k, v]) => value.setAttribute(k, v));
      value.textContent = d.steps >= 10000 ? `${Math.round(d.steps / 1000)}k` : number(d.steps);
      svg.append(value);
    }
  });
  $("#chart").replaceChildren(svg);
}

// ---------------------------------------------------------------------------------------------
// The organizer: the challenge's sync health, who needs to act, reminders, the CSV export

const ORGANIZER = "console-organizer";

async function organizerToken() {
  state.organizer ??= await devToken(ORGANIZER, true);
  return state.organizer;
}

async function refreshOrganizer() {
  if (!state.challenge) return;
  const id = encodeURIComponent(state.challenge);
  const token = await organizerToken();
  const [health, received] = await Promise.all([
    api("GET", `/v1/challenges/${id}/sync-health?limit=200`, { token }),
    api("GET", "/dev/receiver", { token: null }),
  ]);
  const share = (s) => `${Math.round(s.share * 100)}%`;
  $("#health-summary").textContent =
    `${health.participants} participants · with steps yesterday ${share(health.with_data.yesterday)}, today ${share(health.with_data.today)}` +
    ` · ${health.needing_action_total} need an action · as of ${new Date(health.as_of).toLocaleTimeString()}`;
  $("#health-counts").replaceChildren(
    ...Object.entries(health.by_code)
      .sort(([, a], [, b]) => b - a)
      .map(([code, count]) => el("li", { "data-code": code, class: code === "healthy" ? "" : "act", text: `${code.replaceAll("_", " ")}: ${count}` })),
  );
  $("#needing-action tbody").replaceChildren(
    ...health.needing_action.map((n) =>
      el(
        "tr",
        { "data-user": n.user_id, "data-code": n.code },
        el("td", {}, el("a", { href: "#", onclick: (event) => { event.preventDefault(); becomePerson(n.user_id).catch(report); }, text: n.user_id })),
        el("td", { text: n.provider ? providerName(n.provider) : "none" }),
        el("td", { text: n.code.replaceAll("_", " ") }),
        el("td", { text: n.action.replaceAll("_", " ") }),
        el("td", { class: "muted", text: new Date(n.since).toLocaleString() }),
      ),
    ),
  );
  $("#received").replaceChildren(
    ...received.received.map((r) =>
      el("li", { "data-kind": r.body?.kind ?? "", "data-user": r.body?.detail?.user ?? "", text: r.body?.text ?? JSON.stringify(r.body) }),
    ),
  );
}

async function sendReminders() {
  const id = encodeURIComponent(state.challenge);
  const answer = await api("POST", `/v1/challenges/${id}/reminders`, { token: await organizerToken() });
  if (answer.off) {
    say("Reminders are off: no delivery target is configured (NudgeTargetUrl).", true);
  } else {
    const digest = answer.digest.result === "sent" ? "the organizer's digest sent" : `digest ${answer.digest.result.replaceAll("_", " ")}`;
    say(`Reminders: ${answer.sent} sent, ${answer.already_sent} already sent this period, ${answer.not_needed} only waiting; ${digest}.`);
  }
  // The bus hands them to the receiver a moment later.
  setTimeout(() => refreshOrganizer().catch(report), 500);
  await refreshOrganizer();
}

async function exportResults() {
  const id = encodeURIComponent(state.challenge);
  const response = await fetch(`/v1/challenges/${id}/export`, { headers: { authorization: `Bearer ${await organizerToken()}` } });
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") ?? "")?.[1] ?? "results.csv";
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
  link.click();
  // Given back once the download has taken the blob.
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  say(`Exported ${name}.`);
}

// ---------------------------------------------------------------------------------------------
// Actions

async function syncNow() {
  const button = $("#sync");
  button.disabled = true;
  say("Syncing…");
  try {
    const answer = await api("POST", "/v1/sync", { body: state.challenge ? { challenge: state.challenge } : {} });
    const parts = answer.connections.map((c) => {
      const name = providerName(c.provider);
      if (c.outcome === "synced") return `${name}: ${c.days_changed} day(s) changed`;
      return `${name}: ${c.outcome.replaceAll("_", " ")}${c.message ? ` (${c.message})` : ""}`;
    });
    if (answer.standing) parts.push(`rank ${answer.standing.rank} with ${number(answer.standing.steps)} steps`);
    if (answer.message) parts.push(answer.message);
    say(parts.length ? `Synced. ${parts.join("; ")}.` : "Nothing to sync: connect a provider first.");
    await Promise.all([refreshBoard(), refreshPerson()]);
  } finally {
    button.disabled = false;
  }
}

async function disconnect(provider, name) {
  await api("DELETE", `/v1/connections/${provider}`);
  say(`Disconnected ${name}. Steps already counted stay counted.`);
  await refreshPerson();
}

function report(error) {
  say(error instanceof ApiError ? `${error.message}${error.code ? ` (${error.code})` : ""}` : String(error), true);
}

// The OAuth callback sends the browser back here with ?connected= or ?error=.
function readReturn() {
  const params = new URLSearchParams(location.search);
  const connected = params.get("connected");
  const error = params.get("error");
  if (connected) say(`Connected ${providerName(connected)}. Your recent days are being fetched now.`);
  if (error) say(`Connecting did not finish: ${error.replaceAll("_", " ")}.`, true);
  if (connected || error) history.replaceState(null, "", "/");
}

async function start() {
  const info = await api("GET", "/dev/info", { token: null });
  state.connectable = info.connectable ?? [];
  state.stories = info.stories ?? [];
  readReturn();
  $("#person-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const user = $("#person-input").value.trim();
    if (user) becomePerson(user).catch(report);
  });
  $("#challenge").addEventListener("change", (event) => {
    state.challenge = event.target.value;
    state.board.clear();
    Promise.all([refreshBoard(), refreshPerson(), refreshOrganizer()]).catch(report);
  });
  $("#new-challenge").addEventListener("click", () => createChallenge().catch(report));
  $("#sync").addEventListener("click", () => syncNow().catch(report));
  $("#join").addEventListener("click", () => setMembership(true).catch(report));
  $("#leave").addEventListener("click", () => setMembership(false).catch(report));
  $("#health-refresh").addEventListener("click", () => refreshOrganizer().catch(report));
  $("#send-reminders").addEventListener("click", () => sendReminders().catch(report));
  $("#export").addEventListener("click", () => exportResults().catch(report));

  const user = localStorage.getItem("stepsync.user") ?? "walker-01";
  state.token = await devToken(user);
  await loadChallenges(localStorage.getItem("stepsync.challenge"));
  await becomePerson(user);
  setInterval(() => refreshBoard().catch(report), BOARD_EVERY_MS);
  setInterval(() => refreshPerson().catch(report), PERSON_EVERY_MS);
  await refreshOrganizer();
  setInterval(() => refreshOrganizer().catch(report), ORGANIZER_EVERY_MS);
  document.body.dataset.ready = "true";
}

start().catch(report);
