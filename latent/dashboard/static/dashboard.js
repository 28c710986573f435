// Latent dashboard: polls /api/state and renders tables and canvas charts.
// Hand-written, no dependencies. Every string from the chain or a validator is untrusted:
// it is only ever set as textContent (or an http(s) href), never as HTML.
"use strict";

const POLL_MS = 2000;
const PALETTE = ["#4fc3f7", "#f2a65a", "#9ccc65", "#e57373", "#ba68c8", "#ffd54f",
  "#4db6ac", "#f06292", "#90a4ae", "#aed581", "#7986cb", "#ff8a65"];
const CHART_BG = "#171d25";
const GRID = "#263040";
const AXIS_TEXT = "#7d8a9c";

let sortKey = "uid";
let sortAsc = true;
let lastState = null;

// ------------------------------------------------------------------ formatting

function fmtNum(x, digits) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const fmtTokens = (x, d = 4) => fmtNum(x, d);
const fmtFrac = (x) => fmtNum(x, 4);
const fmtPct = (x) => (x === null || x === undefined ? "–" : Math.round(x * 100) + "%");
function fmtTtft(s) {
  if (s === null || s === undefined) return "–";
  return s < 1 ? Math.round(s * 1000) + " ms" : fmtNum(s, 2) + " s";
}
function fmtPrice(prompt, completion) {
  if (prompt === null || prompt === undefined) return "–";
  // LAT per 1M tokens, as the CLI shows prices (README, CLI reference)
  return fmtNum(prompt * 1e6, 2) + " / " + fmtNum(completion * 1e6, 2);
}
function shortAddr(a) {
  if (!a) return "–";
  return a.length > 14 ? a.slice(0, 6) + "…" + a.slice(-4) : a;
}
function colorOf(uid) { return PALETTE[uid % PALETTE.length]; }

// ------------------------------------------------------------------ DOM helpers

function el(tag, opts = {}, children = []) {
  const node = document.createElement(tag);
  if (opts.text !== undefined) node.textContent = String(opts.text);
  if (opts.cls) node.className = opts.cls;
  if (opts.title) node.title = opts.title;
  for (const child of children) node.appendChild(child);
  return node;
}
function td(text, cls = "", title = "") { return el("td", { text, cls, title }); }
function addrCell(address, extraCls = "") {
  return td(shortAddr(address), "addr " + extraCls, address || "");
}
function fillBody(table, rows, columns) {
  const body = document.querySelector(table + " tbody");
  body.replaceChildren();
  if (!rows.length) {
    const cell = td("nothing yet", "empty");
    cell.colSpan = columns;
    body.appendChild(el("tr", {}, [cell]));
    return;
  }
  for (const row of rows) body.appendChild(row);
}

// ------------------------------------------------------------------ sections

function card(label, value, unit = "") {
  const v = el("div", { cls: "value", text: value });
  if (unit) v.appendChild(el("span", { cls: "unit", text: unit }));
  return el("div", { cls: "card" }, [el("div", { cls: "label", text: label }), v]);
}

function renderHeader(s) {
  const n = s.network;
  document.getElementById("chain").textContent =
    `${n.name || "chain"} · id ${n.chain_id} · block ${n.block.toLocaleString("en-US")} · ` +
    `metagraph ${s.contracts.metagraph}`;
  const sub = s.subnet, esc = s.escrow.totals;
  document.getElementById("summary").replaceChildren(
    card("Neurons", `${sub.n}`, `/ ${sub.max_uids}`),
    card("Validators", `${sub.validators}`, "permits"),
    card("Active", `${sub.active}`, `of ${sub.n}`),
    card("Total stake", fmtTokens(sub.total_stake, 2), "tok"),
    card("Neuron emission", fmtTokens(sub.emission_per_epoch, 2), "tok / epoch"),
    sub.blocks_to_epoch > 0
      ? card("Next epoch", `${sub.blocks_to_epoch}`, `/ ${sub.tempo} blocks`)
      : card("Next epoch", "due", `tempo ${sub.tempo}`),
    card("Registration", fmtTokens(sub.registration_price, 4), "tok"),
    card("Channels", `${esc.open}`, `open of ${esc.channels}`),
    card("Escrowed", fmtTokens(esc.remaining, 2), "tok"),
  );
}

function renderErrors(s) {
  const box = document.getElementById("errors");
  const messages = [...(s.errors || [])];
  if (s.error) messages.unshift("last refresh failed: " + s.error);
  box.hidden = messages.length === 0;
  box.replaceChildren(...messages.map((m) => el("div", { text: m })));
}

function sortedNeurons(neurons) {
  const rows = [...neurons];
  rows.sort((a, b) => {
    let x = a[sortKey], y = b[sortKey];
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    if (typeof x === "string") { x = x.toLowerCase(); y = String(y).toLowerCase(); }
    const c = x < y ? -1 : x > y ? 1 : 0;
    return sortAsc ? c : -c;
  });
  return rows;
}

function renderMetagraph(s) {
  document.getElementById("mg-note").textContent =
    `${s.neurons.length} uids · quality is the median over ${s.validators.filter((v) => v.ok).length} ` +
    `validator(s) reporting`;
  const rows = sortedNeurons(s.neurons).map((n) => {
    const uid = td(n.uid, "num");
    const sw = el("span", { cls: "swatch" });
    sw.style.background = colorOf(n.uid);
    uid.prepend(sw);
    const hotkey = addrCell(n.hotkey);
    if (n.validator_permit) hotkey.appendChild(el("span", { cls: "badge", text: "V", title: "validator permit" }));
    const endpoint = el("td", { cls: "addr endpoint", title: n.endpoint || "" });
    if (/^https?:\/\//.test(n.endpoint)) {
      const a = el("a", { text: n.endpoint.replace(/^https?:\/\//, "") });
      a.href = n.endpoint;
      a.rel = "noopener noreferrer";
      endpoint.appendChild(a);
    } else {
      endpoint.appendChild(el("span", { text: n.endpoint || "–", cls: "dim" }));
    }
    const passTitle = n.reported_by
      ? `${n.checks} checks by ${n.reported_by} validator(s)` + (n.last_reason ? ` · last: ${n.last_reason}` : "")
      : "no validator reports this miner";
    const tr = el("tr", {}, [
      uid,
      hotkey,
      addrCell(n.coldkey, "dim"),
      td(fmtTokens(n.stake, 2), "num"),
      td(fmtFrac(n.vtrust), "num"),
      td(fmtFrac(n.consensus), "num"),
      td(fmtFrac(n.incentive), "num"),
      td(fmtFrac(n.dividends), "num"),
      td(fmtTokens(n.emission, 4), "num"),
      td(n.updated, "num"),
      td(n.active ? "yes" : "no", n.active ? "yes" : "no"),
      td(fmtPct(n.pass_rate), "num", passTitle),
      td(fmtNum(n.tokens_per_s, 1), "num"),
      td(fmtTtft(n.ttft_s), "num"),
      td(fmtPrice(n.price_prompt, n.price_completion), "num"),
      endpoint,
    ]);
    tr.dataset.uid = n.uid;
    return tr;
  });
  fillBody("#metagraph", rows, 16);
}

function renderEscrow(s) {
  const esc = s.escrow;
  document.getElementById("ch-note").textContent = s.contracts.escrow
    ? `${fmtTokens(esc.totals.settled, 4)} tok settled of ${fmtTokens(esc.totals.deposited, 4)} deposited`
    : "no escrow configured";
  const uidLabel = (uid, addr) => (uid === null || uid === undefined ? shortAddr(addr) : `uid ${uid} · ${shortAddr(addr)}`);
  fillBody("#channels", esc.channels.map((c) => el("tr", {}, [
    td(shortAddr(c.channel_id), "addr", c.channel_id),
    addrCell(c.renter),
    td(uidLabel(c.miner_uid, c.miner), "addr", c.miner),
    td(fmtTokens(c.deposit), "num"),
    td(fmtTokens(c.settled), "num"),
    td(fmtTokens(c.remaining), "num"),
    td(c.settlements, "num"),
    td(c.status, c.status === "open" ? "yes" : "dim"),
  ])), 8);
  fillBody("#payments", esc.settlements.map((p) => el("tr", {}, [
    td(p.block.toLocaleString("en-US"), "num"),
    td(p.timestamp ? new Date(p.timestamp * 1000).toLocaleTimeString() : "–", "dim"),
    td(uidLabel(p.miner_uid, p.miner), "addr", p.miner),
    addrCell(p.renter),
    td(fmtTokens(p.amount), "num"),
    td(fmtTokens(p.fee), "num dim"),
    td(shortAddr(p.tx_hash), "addr dim", p.tx_hash),
  ])), 7);
}

function renderValidators(s) {
  fillBody("#validators", s.validators.map((v) => el("tr", {}, [
    td(v.url, "addr"),
    addrCell(v.hotkey),
    td(v.round === null ? "–" : v.round, "num"),
    td(v.miners, "num"),
    td(v.ok ? "ok" : (v.error || "unreachable"), v.ok ? "yes" : "no"),
  ])), 5);
}

// ------------------------------------------------------------------ charts

function niceMax(x) {
  if (!(x > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

function drawChart(canvas, history, metric) {
  const dpr = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  const W = Math.max(1, Math.round(rect.width)), H = Math.max(1, Math.round(rect.height));
  canvas.width = W * dpr; canvas.height = H * dpr;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = CHART_BG;
  ctx.fillRect(0, 0, W, H);
  const epochs = history.epochs;
  const pad = { l: 46, r: 10, t: 8, b: 22 };
  const pw = W - pad.l - pad.r, ph = H - pad.t - pad.b;
  ctx.font = "11px system-ui, sans-serif";
  if (!epochs.length) {
    ctx.fillStyle = AXIS_TEXT;
    ctx.textAlign = "center";
    ctx.fillText("no completed epoch yet", W / 2, H / 2);
    canvas.dataset.points = "0";
    return;
  }
  let max = 0;
  for (const s of history.series) for (const v of s[metric]) if (v !== null && v > max) max = v;
  const ymax = metric === "emission" ? niceMax(max) : Math.max(niceMax(max), 0.0001);
  const x = (i) => pad.l + (epochs.length === 1 ? pw / 2 : (i * pw) / (epochs.length - 1));
  const y = (v) => pad.t + ph - (v / ymax) * ph;
  // grid and y labels
  ctx.strokeStyle = GRID; ctx.lineWidth = 1; ctx.fillStyle = AXIS_TEXT; ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4, yy = Math.round(y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(pad.l, yy); ctx.lineTo(W - pad.r, yy); ctx.stroke();
    ctx.fillText(fmtNum(v, ymax <= 10 ? 2 : ymax <= 100 ? 1 : 0), pad.l - 6, yy);
  }
  // x labels: first, last and a middle epoch block
  ctx.textAlign = "center"; ctx.textBaseline = "top";
  const ticks = new Set([0, epochs.length - 1, Math.floor((epochs.length - 1) / 2)]);
  for (const i of ticks) ctx.fillText("#" + epochs[i], x(i), H - pad.b + 6);
  // series
  let points = 0;
  for (const s of history.series) {
    const color = colorOf(s.uid);
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2;
    ctx.beginPath();
    let drawing = false;
    s[metric].forEach((v, i) => {
      if (v === null) { drawing = false; return; }
      if (drawing) ctx.lineTo(x(i), y(v)); else ctx.moveTo(x(i), y(v));
      drawing = true;
    });
    ctx.stroke();
    s[metric].forEach((v, i) => {
      if (v === null) return;
      ctx.beginPath(); ctx.arc(x(i), y(v), 3, 0, 2 * Math.PI); ctx.fill();
      points += 1;
    });
  }
  canvas.dataset.points = String(points);
}

function renderCharts(s) {
  for (const canvas of document.querySelectorAll("canvas[data-metric]")) {
    drawChart(canvas, s.history, canvas.dataset.metric);
    const r = canvas.getBoundingClientRect();
    // Where the chart sits on the page (CSS px): lets a headless test find it in a screenshot.
    canvas.dataset.rect = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]
      .map(Math.round).join(",");
  }
  const legend = document.getElementById("legend");
  legend.replaceChildren(...s.history.series.map((series) => {
    const sw = el("span", { cls: "swatch" });
    sw.style.background = colorOf(series.uid);
    return el("span", { title: series.hotkey }, [sw, document.createTextNode(`uid ${series.uid} · ${shortAddr(series.hotkey)}`)]);
  }));
}

// ------------------------------------------------------------------ loop

function render(s) {
  lastState = s;
  renderHeader(s);
  renderErrors(s);
  renderMetagraph(s);
  renderCharts(s);
  renderEscrow(s);
  renderValidators(s);
  document.getElementById("footer").textContent =
    `updated ${new Date(s.generated_at * 1000).toLocaleTimeString()} · epochs in charts: ` +
    `${s.history.epochs.length} · schema ${s.schema}`;
  document.body.dataset.block = String(s.network.block);
}

function setLive(cls, text) {
  const live = document.getElementById("live");
  live.className = "live " + cls;
  document.getElementById("live-text").textContent = text;
}

async function poll() {
  try {
    const response = await fetch("/api/state", { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) {
      setLive("stale", body.error || "starting");
    } else {
      render(body);
      setLive(body.stale ? "stale" : "ok", body.stale ? "stale" : "live");
    }
  } catch (err) {
    setLive("down", "dashboard unreachable");
  }
  setTimeout(poll, POLL_MS);
}

for (const th of document.querySelectorAll("#metagraph th[data-key]")) {
  th.addEventListener("click", () => {
    const key = th.dataset.key;
    if (sortKey === key) sortAsc = !sortAsc; else { sortKey = key; sortAsc = key === "uid"; }
    for (const other of document.querySelectorAll("#metagraph th")) other.classList.remove("sorted", "asc");
    th.classList.add("sorted");
    if (sortAsc) th.classList.add("asc");
    if (lastState) renderMetagraph(lastState);
  });
}
window.addEventListener("resize", () => { if (lastState) renderCharts(lastState); });
poll();
