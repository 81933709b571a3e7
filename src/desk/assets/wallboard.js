// The supervisor wallboard: one tile per queue, the agents below; a new board arrives over the
// WebSocket whenever something changed.
"use strict";
const NAMES = { offline: "offline", logged_out: "logged out", idle: "ready", ringing: "ringing", busy: "talking",
  resting: "missed", paused: "paused", wrap_up: "wrap-up" };

function mmss(s) { return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"); }

function render(b) {
  acd.text($("sl-note"), "service level = answered within " + b.sl_threshold_s + " s, today");
  const q = $("queues"); q.innerHTML = "";
  b.queues.forEach((x) => {
    const t = document.createElement("div"); t.className = "card tile"; t.dataset.queue = x.name;
    const f = x.today;
    const sl = f.service_level_pct == null ? "—" : Math.round(f.service_level_pct) + " %";
    const slClass = f.service_level_pct == null ? "" : f.service_level_pct >= 80 ? "sl-good" : "sl-bad";
    const agents = Object.entries(x.agents).filter(([, n]) => n > 0).map(([k, n]) => n + " " + (NAMES[k] || k)).join(" · ");
    t.innerHTML = "<h2></h2><div class='big waiting'></div><div class='mute'>waiting<span class='cbs'></span> · longest <b class='longest'></b></div>" +
      "<div>SL <b class='sl " + slClass + "'></b> · answered <span class='ans'></span> · abandoned <span class='abd'></span></div>" +
      "<div class='mute'>ASA <span class='asa'></span> · abandon <span class='abp'></span></div><div class='mute ag'></div>";
    acd.text(t.querySelector("h2"), x.name);
    acd.text(t.querySelector(".waiting"), x.waiting);
    acd.text(t.querySelector(".longest"), mmss(x.longest_wait_s));
    acd.text(t.querySelector(".cbs"), x.callbacks ? " (" + x.callbacks + " to call back)" : "");
    acd.text(t.querySelector(".sl"), sl);
    acd.text(t.querySelector(".ans"), x.today.answered);
    acd.text(t.querySelector(".abd"), x.today.abandoned);
    acd.text(t.querySelector(".asa"), f.asa_s == null ? "—" : f.asa_s.toFixed(1) + " s");
    acd.text(t.querySelector(".abp"), f.abandon_pct == null ? "—" : f.abandon_pct.toFixed(1) + " %");
    acd.text(t.querySelector(".ag"), agents || "no agents");
    q.appendChild(t);
  });
  const a = $("agents"); a.innerHTML = "";
  b.agents.forEach((x) => {
    const tr = document.createElement("tr");
    const cells = [x.id, (NAMES[x.state] || x.state) + (x.reason ? " (" + x.reason + ")" : ""), mmss(x.in_state_s), x.skills.join(", ")];
    cells.forEach((c, i) => { const td = document.createElement("td"); if (i === 1) { const s = document.createElement("span"); s.className = "badge s-" + x.state; s.textContent = c; td.appendChild(s); } else td.textContent = c; tr.appendChild(td); });
    a.appendChild(tr);
  });
}

function start(me) {
  if (me.role !== "supervisor" && me.role !== "admin") {
    acd.forget();
    $("login-err").textContent = "The wallboard is for supervisors.";
    return acd.login(start);
  }
  acd.text($("who"), me.name + " (" + me.role + ")");
  $("board").classList.remove("hidden");
  acd.socket("/ws/wallboard", (m) => { if (m.type === "wallboard") render(m.board); });
}

(async () => {
  if (acd.token) {
    try { return start(await acd.api("GET", "/api/me")); } catch (_) { acd.forget(); }
  }
  acd.login(start);
})();
