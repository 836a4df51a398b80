// The operator console: plain JavaScript over Execution's API, live through its event
// stream. The API key is kept in sessionStorage (this tab only) and sent as X-API-Key on
// every call, the stream included (read with fetch, since EventSource cannot send headers
// and a key in the URL would land in access logs).
"use strict";

const $ = (id) => document.getElementById(id);
const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
const num = new Intl.NumberFormat("en-US", { maximumFractionDigits: 8 });
const RANK = { viewer: 1, trader: 2, admin: 3 };
const state = { key: null, role: null, filters: {}, cursor: null, points: [], stream: null };

function money(v) { return v === null || v === undefined ? "–" : usd.format(v); }
function signed(el, v) {
  el.textContent = money(v);
  el.classList.toggle("pos", v > 0);
  el.classList.toggle("neg", v < 0);
}
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}
function newKey() {
  return crypto.randomUUID ? crypto.randomUUID()
    : Date.now().toString(36) + Math.random().toString(36).slice(2);
}

async function api(path, options = {}) {
  const headers = Object.assign({ "X-API-Key": state.key }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    signOut("That key was not accepted.");
    throw new Error("unauthorised");
  }
  return response;
}
async function json(path, options) {
  const response = await api(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || response.statusText);
    error.body = body;
    error.status = response.status;
    throw error;
  }
  return body;
}

// Sign in / out ---------------------------------------------------------------------
async function signIn(key) {
  state.key = key;
  const session = await json("/api/v1/session");
  state.role = session.role;
  sessionStorage.setItem("tradestack-key", key);
  $("who").textContent = `${session.role}` + (session.key_id ? ` · key ${session.key_id}` : "");
  for (const el of document.querySelectorAll("[data-role]")) {
    el.hidden = (RANK[state.role] || 0) < RANK[el.dataset.role];
  }
  $("signin").hidden = true;
  $("app").hidden = $("who").hidden = $("signout").hidden = false;
  await Promise.allSettled([loadPortfolio(), loadHistory(), loadOrders(), loadTradingState()]);
  loadRegimes();
  listen();
}
function signOut(message) {
  sessionStorage.removeItem("tradestack-key");
  if (state.stream) state.stream.abort();
  state.key = state.role = state.stream = null;
  $("app").hidden = $("who").hidden = $("signout").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message || "";
}

// Panels ----------------------------------------------------------------------------
async function loadPortfolio() {
  const p = await json("/api/v1/portfolio");
  showTotals(p);
  signed($("unrealized"), p.unrealized_pnl);
  state.account = p.account;
  $("account").textContent = `account ${p.account}`;
  const rows = $("positions");
  rows.replaceChildren();
  for (const pos of p.positions) {
    const tr = document.createElement("tr");
    tr.append(cell(pos.symbol), cell(num.format(pos.quantity)), cell(money(pos.market_value)),
      cell(money(pos.unrealized_pnl), pos.unrealized_pnl < 0 ? "neg" : "pos"),
      cell(money(pos.realized_pnl)));
    rows.append(tr);
  }
  for (const pos of p.closed) {
    const tr = document.createElement("tr");
    tr.append(cell(pos.symbol), cell("closed", "muted"), cell("–"), cell("–"),
      cell(money(pos.realized_pnl), pos.realized_pnl < 0 ? "neg" : "pos"));
    rows.append(tr);
  }
  const symbols = new Set(["BTC-USD", "ETH-USD", "SOL-USD", ...p.positions.map((x) => x.symbol)]);
  $("symbols").replaceChildren(...[...symbols].map((s) => new Option(s)));
  state.traded = [...p.positions, ...p.closed].map((x) => x.symbol);
}
function showTotals(p) {
  $("cash").textContent = money(p.cash);
  $("equity").textContent = money(p.equity);
  signed($("realized"), p.realized_pnl);
}

async function loadHistory() {
  const h = await json("/api/v1/portfolio/history?limit=1000");  // the newest 1000, newest first
  state.points = h.points.map((p) => [Date.parse(p.timestamp), p.equity]).reverse();
  drawChart();
}
function drawChart() {
  const svg = $("chart");
  const pts = state.points;
  if (pts.length === 0) {
    svg.innerHTML = '<text x="300" y="95" text-anchor="middle" fill="#6b7280" font-size="14">No points yet: trade, or wait for the timer</text>';
    $("chart-range").textContent = "";
    return;
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  const pad = (y1 - y0) * 0.1 || Math.max(1, y1 * 0.001);
  y0 -= pad; y1 += pad;
  const X = (x) => ((x - x0) / (x1 - x0)) * 590 + 5, Y = (y) => 175 - ((y - y0) / (y1 - y0)) * 170;
  const line = pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
  svg.innerHTML =
    `<polyline points="5,175 ${line} ${X(x1).toFixed(1)},175" fill="#dbeafe" stroke="none"/>` +
    `<polyline points="${line}" fill="none" stroke="#1d4ed8" stroke-width="2" vector-effect="non-scaling-stroke"/>` +
    pts.map((p) => `<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="2.5" fill="#1d4ed8"/>`).join("");
  $("chart-range").textContent =
    `${pts.length} points · low ${money(Math.min(...ys))} · high ${money(Math.max(...ys))} · last ${money(ys[ys.length - 1])}`;
}

function orderRow(o) {
  const tr = document.createElement("tr");
  tr.dataset.id = o.order_id;
  if (o.account !== undefined && o.account !== null && state.account && o.account < state.account) {
    tr.className = "earlier";
    tr.title = `placed on the earlier account ${o.account}`;
  }
  const time = new Date(o.created_at).toLocaleString();
  tr.append(cell(time), cell(o.symbol), cell(o.side), cell(o.status, o.status),
    cell(o.status === "FILLED" ? money(o.filled_amount) : "–"),
    cell(o.price === null ? "–" : num.format(o.price)), cell(o.reason, "reason"));
  return tr;
}
function filterQuery(extra = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(Object.assign({}, state.filters, extra))) if (v) q.set(k, v);
  return q.toString();
}
function readFilters() {
  const form = new FormData($("filters"));
  const f = {};
  for (const [k, v] of form.entries()) {
    if (!v) continue;
    f[k] = k === "since" || k === "until" ? new Date(v).toISOString()
      : k === "symbol" ? v.trim().toUpperCase() : v;
  }
  state.filters = f;
}
async function loadOrders(more = false) {
  $("orders-error").textContent = "";
  try {
    const page = await json(`/api/v1/orders?${filterQuery(more ? { cursor: state.cursor } : {})}`);
    if (!more) $("orders").replaceChildren();
    $("orders").append(...page.orders.map(orderRow));
    state.cursor = page.next_cursor;
    $("more").hidden = !page.next_cursor;
  } catch (e) {
    $("orders-error").textContent = e.message;
  }
}
function matches(o) {
  const f = state.filters;
  return (!f.symbol || f.symbol === o.symbol) && (!f.side || f.side === o.side) &&
    (!f.status || f.status === o.status) && !f.until;
}
async function downloadCsv() {
  const response = await api(`/api/v1/orders?${filterQuery()}`, { headers: { Accept: "text/csv" } });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = "orders.csv";
  link.click();
  URL.revokeObjectURL(link.href);
}

async function loadTradingState() {
  try {
    showTradingState(await json("/api/v1/trading-state"));
  } catch (e) {
    $("state").textContent = "trading state unknown";
  }
}
function showTradingState(s) {
  $("state").dataset.state = s.state;
  $("state").textContent = s.state;
  $("state-name").textContent = s.state;
  $("state-reason").textContent = s.reason ? `— ${s.reason}` + (s.changed_by ? ` (${s.changed_by})` : "") : "";
}
async function setTradingState(next) {
  $("state-error").textContent = "";
  try {
    const body = JSON.stringify({ state: next, reason: $("state-reason-input").value });
    showTradingState(await json("/api/v1/trading-state", {
      method: "PUT", headers: { "Content-Type": "application/json" }, body }));
    $("state-reason-input").value = "";
  } catch (e) {
    $("state-error").textContent = e.message;
  }
}

async function loadRegimes() {
  const symbols = state.traded && state.traded.length ? state.traded : ["BTC-USD"];
  try {
    const answer = await json(`/api/v1/regimes?symbols=${symbols.join(",")}`);
    const rows = answer.regimes.map((r) => {
      const tr = document.createElement("tr");
      const ind = r.indicators || {};
      const f = (v, d) => (v === undefined || v === null ? "–" : Number(v).toFixed(d));
      if (r.error) {
        const why = cell(r.error, "note");
        why.colSpan = 5;
        tr.append(cell(r.symbol), why);
        return tr;
      }
      tr.append(cell(r.symbol), cell(r.regime), cell(f(r.confidence, 2)),
        cell(f(ind.adx, 1)), cell(f(ind.choppiness, 1)), cell(f(ind.volatility_annualized, 2)));
      return tr;
    });
    $("regimes").replaceChildren(...rows);
  } catch (e) {
    $("regimes").innerHTML = `<tr><td colspan="6" class="muted">${e.message}</td></tr>`;
  }
}

function showHealth(h) {
  const items = Object.entries(h.services).map(([name, body]) => {
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = `dot ${body.status}`;
    const breakers = Object.entries(body.details || {})
      .filter(([, d]) => d && d.breaker)
      .map(([dep, d]) => `${dep} breaker ${d.breaker}`);
    li.append(dot, `${name}: ${body.status}`);
    if (breakers.length) li.append(` · ${breakers.join(", ")}`);
    return li;
  });
  $("health").replaceChildren(...items);
}

// Trading -----------------------------------------------------------------------------
async function placeOrder(event) {
  event.preventDefault();
  const verdict = $("verdict");
  verdict.textContent = "Asking Risk…";
  const body = JSON.stringify({
    symbol: $("symbol").value.trim().toUpperCase(), side: $("side").value,
    amount: Number($("amount").value),
  });
  const response = await api("/api/v1/trade", {
    method: "POST", body,
    headers: { "Content-Type": "application/json", "Idempotency-Key": newKey() },
  });
  const o = await response.json().catch(() => ({}));
  verdict.replaceChildren();
  const head = document.createElement("div");
  if (!response.ok) {
    head.innerHTML = `<span class="REJECTED">Refused (${response.status})</span>`;
    verdict.append(head, o.detail || response.statusText);
    return;
  }
  head.innerHTML = `<span class="${o.status}">${o.status}</span> ${o.side} ${o.symbol}: ` +
    `${money(o.filled_amount)} of ${money(o.requested_amount)}` +
    (o.price ? ` at ${num.format(o.price)}` : "");
  const risk = o.risk || {};
  const why = document.createElement("div");
  why.className = "muted";
  why.textContent = `Risk: ${risk.approved ? "approved" : "not approved"}` +
    (risk.max_amount !== undefined ? `, max ${money(risk.max_amount)}` : "") +
    (risk.regime ? `, regime ${risk.regime}` : "") + ` — ${o.reason}`;
  verdict.append(head, why);
}

// The live stream -----------------------------------------------------------------------
let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => loadPortfolio().then(loadRegimes, () => {}), 300);
}
const handlers = {
  order(o) {
    if (matches(o) && !document.querySelector(`tr[data-id="${o.order_id}"]`)) {
      $("orders").prepend(orderRow(o));
    }
    if (o.status === "FILLED") refreshSoon();
  },
  portfolio(p) {
    showTotals(p);
    state.points.push([Date.parse(p.timestamp), p.equity]);
    drawChart();
  },
  trading_state: showTradingState,
  health: showHealth,
};
async function listen() {
  const controller = new AbortController();
  state.stream = controller;
  while (state.stream === controller) {
    try {
      const response = await api("/api/v1/events", { signal: controller.signal });
      if (!response.ok) throw new Error(`events: ${response.status}`);
      $("live").textContent = "connected";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          dispatch(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (e) {
      if (controller.signal.aborted) return;
    }
    $("live").textContent = "reconnecting…";
    await new Promise((r) => setTimeout(r, 2000));
  }
}
function dispatch(block) {
  let kind = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (data && handlers[kind]) handlers[kind](JSON.parse(data));
}

// Wiring ------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    $("signin-error").textContent = "";
    signIn($("key").value.trim()).catch((err) => {
      if (state.key) signOut(err.status === 403 ? "That key may not read the console." : err.message);
    });
  });
  $("signout").addEventListener("click", () => signOut());
  $("trade-form").addEventListener("submit", (e) => placeOrder(e).catch((err) => {
    $("verdict").textContent = err.message;
  }));
  $("state-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setTradingState(e.submitter.value);
  });
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); readFilters(); loadOrders(); });
  $("more").addEventListener("click", () => loadOrders(true));
  $("csv").addEventListener("click", () => { readFilters(); downloadCsv(); });
  drawChart();
  const saved = sessionStorage.getItem("tradestack-key");
  if (saved) signIn(saved).catch(() => signOut());
});
