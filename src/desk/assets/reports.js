// The marketer's page: which calls each SMS campaign produced (no call content), with charts.
"use strict";
function query() {
  const p = new URLSearchParams();
  if ($("since").value) p.set("since", $("since").value);
  if ($("until").value) p.set("until", $("until").value);
  p.set("attribution", $("attribution").value);
  return p;
}

function pct(v) { return v == null ? "—" : v.toFixed(1) + " %"; }
function secs(v) { return v == null ? "—" : v.toFixed(1) + " s"; }

async function run() {
  $("report-err").textContent = "";
  try {
    const r = await acd.api("GET", "/api/reports/campaigns?" + query());
    const tb = $("rows"); tb.innerHTML = "";
    r.campaigns.forEach((c) => {
      const tr = document.createElement("tr"); tr.dataset.campaign = c.campaign;
      [c.campaign, c.offer, c.recipients, c.callers, pct(c.response_pct), c.calls, c.answered, c.abandoned,
        secs(c.avg_wait_s), secs(c.avg_talk_s), c.dispositions.sale || 0, pct(c.conversion_pct)].forEach((v) => {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      });
      tb.appendChild(tr);
    });
    // The chart is our own SVG (text escaped server-side); fetched with the token, then shown.
    const p = query(); p.set("format", "svg");
    const res = await fetch("/api/reports/campaigns?" + p, { headers: { Authorization: "Bearer " + acd.token } });
    const blob = await res.blob();
    const img = document.createElement("img");
    img.alt = "Calls by hours since the SMS; answered and abandoned per campaign";
    img.style.maxWidth = "100%";
    img.src = URL.createObjectURL(blob);
    $("chart").innerHTML = ""; $("chart").appendChild(img);
  } catch (e) { $("report-err").textContent = e.message; }
}

$("run").onclick = run;
$("csv").onclick = async (e) => {
  e.preventDefault();
  const p = query(); p.set("format", "csv");
  const res = await fetch("/api/reports/campaigns?" + p, { headers: { Authorization: "Bearer " + acd.token } });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(await res.blob()); a.download = "campaigns.csv"; a.click();
};

function start(me) {
  if (!["marketer", "supervisor", "admin"].includes(me.role)) {
    acd.forget();
    $("login-err").textContent = "Reports are for marketers and supervisors.";
    return acd.login(start);
  }
  acd.text($("who"), me.name + " (" + me.role + ")");
  $("reports").classList.remove("hidden");
  run();
}

(async () => {
  if (acd.token) {
    try { return start(await acd.api("GET", "/api/me")); } catch (_) { acd.forget(); }
  }
  acd.login(start);
})();
