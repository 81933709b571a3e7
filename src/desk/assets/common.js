// Shared by the desk and the wallboard: log-in, the API, a WebSocket that reconnects.
"use strict";
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "acd.token";
const acd = {
  token: localStorage.getItem(TOKEN_KEY),
  async api(method, path, body) {
    const r = await fetch(path, {
      method,
      headers: Object.assign({ "Authorization": "Bearer " + (acd.token || "") },
        body === undefined ? {} : { "Content-Type": "application/json" }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
    if (r.status === 401 && path !== "/api/login") { acd.forget(); }
    if (!r.ok) { throw new Error((data && data.error) || ("HTTP " + r.status)); }
    return data;
  },
  forget() { acd.token = null; localStorage.removeItem(TOKEN_KEY); },
  // Shows the log-in box until a good log-in, then calls onIn(me).
  login(onIn) {
    $("login-box").classList.remove("hidden");
    $("login-form").onsubmit = async (e) => {
      e.preventDefault();
      $("login-err").textContent = "";
      try {
        const r = await acd.api("POST", "/api/login", { id: $("login-id").value.trim(), password: $("login-pw").value });
        acd.token = r.token; localStorage.setItem(TOKEN_KEY, r.token);
        $("login-pw").value = "";
        $("login-box").classList.add("hidden");
        onIn(await acd.api("GET", "/api/me"));
      } catch (err) { $("login-err").textContent = err.message; }
    };
  },
  // A socket that comes back after a network blip or a server restart, with backoff.
  socket(path, onMessage) {
    let delay = 500;
    const open = () => {
      if (!acd.token) return;
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(proto + "//" + location.host + path + "?token=" + encodeURIComponent(acd.token));
      ws.onopen = () => { delay = 500; $("conn").textContent = "● live"; $("conn").classList.remove("down"); };
      ws.onmessage = (m) => { try { onMessage(JSON.parse(m.data), ws); } catch (e) { console.error(e); } };
      ws.onclose = () => {
        $("conn").textContent = "● reconnecting"; $("conn").classList.add("down");
        setTimeout(open, delay); delay = Math.min(delay * 2, 10000);
      };
    };
    open();
  },
  text(el, s) { el.textContent = s == null ? "" : String(s); },
  when(unix) { return unix ? new Date(unix * 1000).toLocaleString() : ""; },
  ago(unix) {
    const m = Math.round((Date.now() / 1000 - unix) / 60);
    return m < 60 ? m + " min ago" : m < 1440 ? Math.round(m / 60) + " h ago" : Math.round(m / 1440) + " d ago";
  },
};
