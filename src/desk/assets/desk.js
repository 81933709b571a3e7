// The agent desk: state buttons, the screen pop (shown when the call is offered, before the
// phone rings), disposition and blind transfer. State lives on the server; a reload resumes.
"use strict";
const desk = { me: null, card: null, phase: null, since: 0 };
const STATE_NAMES = { offline: "Phone offline", logged_out: "Logged out", idle: "Ready", ringing: "Ringing",
  busy: "On a call", resting: "Missed a call", paused: "Paused", wrap_up: "Wrap-up" };

function showState(state, reason) {
  const b = $("state");
  b.className = "badge s-" + (state || "offline");
  acd.text(b, STATE_NAMES[state] || state || "—");
  acd.text($("reason"), reason ? "(" + reason + ")" : "");
  $("end-wrapup").disabled = state !== "wrap_up";
  $("ready").disabled = state === "idle" || state === "busy" || state === "ringing";
}

function li(list, text, tags) {
  const el = document.createElement("li");
  el.textContent = text;
  (tags || []).forEach((t) => { const s = document.createElement("span"); s.className = "tag"; s.textContent = t; el.append(" ", s); });
  list.appendChild(el);
}

function showPop(pop, phase) {
  desk.card = pop; desk.phase = phase;
  const box = $("pop");
  box.className = "card " + phase;
  box.dataset.call = pop.call_id;
  box.dataset.interaction = pop.interaction;
  box.dataset.phase = phase;
  acd.text($("pop-phase"), { offer: "incoming", connected: "connected", ended: "ended", withdrawn: "withdrawn" }[phase] || phase);
  $("pop-empty").classList.add("hidden");
  $("pop-body").classList.remove("hidden");
  acd.text($("pop-caller"), pop.caller);
  const idn = $("pop-identity");
  idn.className = pop.caller_verified ? "mute" : "warn";
  acd.text(idn, pop.caller_verified ? "Number verified (" + pop.caller_basis + ")" : "Number not verified: the caller's own claim — check who they are before discussing their account");
  const c = pop.customer;
  acd.text($("pop-customer"), c ? c.name + (c.email ? " · " + c.email : "") + " · customer " + c.id : "Unknown caller");
  acd.text($("pop-route"), (pop.route.reason || "no rule matched") + " → " + pop.route.queue + (pop.route.rule ? " (rule " + pop.route.rule + ")" : ""));
  const camp = $("pop-campaign");
  if (pop.campaign) {
    camp.classList.remove("hidden");
    acd.text(camp, "Campaign " + pop.campaign.name + ": " + (pop.campaign.offer || "") + " — sent " + acd.ago(pop.campaign.sent_at));
  } else { camp.classList.add("hidden"); }
  const tr = $("pop-transfers");
  tr.className = pop.transfers > 2 ? "warn" : "mute";
  acd.text(tr, pop.transfers ? "Transferred " + pop.transfers + "×" + (pop.transfers > 2 ? " — apologise and resolve it here" : "") : "");
  const cb = $("pop-callback");
  acd.text(cb, pop.callback_waited_s == null ? "" : "Callback: the customer asked to be called back " + Math.max(1, Math.round(pop.callback_waited_s / 60)) + " min ago");
  const notes = $("pop-notes"); notes.innerHTML = "";
  (pop.notes || []).forEach((n) => li(notes, "Note: " + n));
  const f = $("pop-fields"); f.innerHTML = "";
  Object.entries(pop.fields || {}).forEach(([k, v]) => {
    const dt = document.createElement("dt"); dt.textContent = k; const dd = document.createElement("dd"); dd.textContent = v; f.append(dt, dd);
  });
  const t = $("pop-tickets"); t.innerHTML = "";
  if (!pop.tickets.length) li(t, "none");
  pop.tickets.forEach((x) => li(t, "#" + x.id + " " + x.subject + " (" + x.status + ", opened " + acd.ago(x.opened_at) + ")"));
  const h = $("pop-history"); h.innerHTML = "";
  if (!pop.history.length) li(h, "first call");
  pop.history.forEach((x) => li(h, acd.when(x.started_at) + " · " + (x.queue || "") + " · " + (x.agent || "no agent") + " · " + (x.outcome || ""), x.tags));
  (pop.tags || []).forEach((t) => { const s = document.createElement("span"); s.className = "tag"; s.textContent = t; $("pop-customer").append(" ", s); });
  $("save-dispo").disabled = !(phase === "connected" || phase === "ended");
  $("transfer").disabled = phase !== "connected";
  if (phase === "offer") { box.dataset.receivedMs = String(Date.now()); desk.since = Date.now(); $("dispo-status").textContent = ""; $("xfer-status").textContent = ""; }
  if (phase === "connected") desk.since = Date.now();
}

function setPhase(callId, phase, extra) {
  if (!desk.card || desk.card.call_id !== callId) return;
  showPop(desk.card, phase);
  if (extra) acd.text($("xfer-status"), extra);
}

function onMessage(m, ws) {
  switch (m.type) {
    case "offer":
      showPop(m, "offer");
      // On screen now: tell the server, which rings the phone only after this.
      ws.send(JSON.stringify({ type: "shown", call_id: m.call_id }));
      break;
    case "withdrawn": setPhase(m.call_id, "withdrawn"); acd.text($("pop-timer"), m.reason); break;
    case "connected": setPhase(m.call_id, "connected"); break;
    case "ended": setPhase(m.call_id, "ended", m.transferred_to ? "sent to " + m.transferred_to : ""); break;
    case "state": showState(m.state, m.reason); break;
    case "resume": if (m.card) showPop(m.card.pop, m.card.phase); break;
  }
}

async function command(body) {
  $("state-err").textContent = "";
  try { await acd.api("POST", "/api/me/state", body); } catch (e) { $("state-err").textContent = e.message; }
}

function start(me) {
  desk.me = me;
  $("desk").classList.remove("hidden");
  acd.text($("who"), me.name + " (" + me.agent + ", " + me.role + ")");
  showState(me.state, me.reason);
  const q = $("xfer-queue"); q.innerHTML = "<option value=''>queue…</option>";
  (me.queues || []).forEach((n) => { const o = document.createElement("option"); o.value = n; o.textContent = n; q.appendChild(o); });
  if (me.card) showPop(me.card.pop, me.card.phase);
  acd.socket("/ws/desk", onMessage);
}

$("ready").onclick = () => command({ state: "ready" });
$("pause-reason").onchange = () => $("pause-custom").classList.toggle("hidden", $("pause-reason").value !== "custom");
$("pause").onclick = () => {
  const r = $("pause-reason").value === "custom" ? $("pause-custom").value : $("pause-reason").value;
  command({ state: "pause", reason: r });
};
$("end-wrapup").onclick = () => command({ state: "end_wrapup" });
$("logout").onclick = async () => {
  await command({ state: "logout" });
  try { await acd.api("POST", "/api/logout"); } catch (_) {}
  acd.forget(); location.reload();
};
$("disposition").onchange = () => $("dispo-custom").classList.toggle("hidden", $("disposition").value !== "custom");
$("save-dispo").onclick = async () => {
  if (!desk.card) return;
  const d = $("disposition").value === "custom" ? $("dispo-custom").value : $("disposition").value;
  const tags = $("tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  try {
    await acd.api("POST", "/api/interactions/" + encodeURIComponent(desk.card.interaction) + "/disposition", { disposition: d, note: $("note").value, tags });
    acd.text($("dispo-status"), "saved ✓");
  } catch (e) { acd.text($("dispo-status"), e.message); }
};
$("transfer").onclick = async () => {
  if (!desk.card) return;
  const agent = $("xfer-agent").value.trim(), queue = $("xfer-queue").value;
  const body = agent ? { agent } : { queue };
  body.note = $("note").value;
  try {
    const r = await acd.api("POST", "/api/calls/" + desk.card.call_id + "/transfer", body);
    acd.text($("xfer-status"), "transferred" + (r.warning ? " — " + r.warning : ""));
  } catch (e) { acd.text($("xfer-status"), e.message); }
};
setInterval(() => {
  if (desk.phase === "offer" || desk.phase === "connected") {
    const s = Math.round((Date.now() - desk.since) / 1000);
    acd.text($("pop-timer"), (desk.phase === "offer" ? "ringing " : "talking ") + Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"));
  }
}, 1000);

(async () => {
  if (acd.token) {
    try { return start(await acd.api("GET", "/api/me")); } catch (_) { acd.forget(); }
  }
  acd.login(start);
})();
