// evaltoolkit web app: polls the background job's status (no library, nothing fetched from elsewhere)
"use strict";
(function () {
  const job = document.getElementById("job");
  if (!job) return;
  const url = job.dataset.statusUrl;
  const show = (id, on) => { const el = document.getElementById(id); if (el) el.hidden = !on; };
  const text = (id, t) => { const el = document.getElementById(id); if (el) el.textContent = t; };
  function render(st) {
    if (st.state === "idle") return false;
    job.hidden = false;
    text("stage", st.stage || "");
    const secs = st.seconds !== undefined ? st.seconds : st.elapsed;
    text("elapsed", secs !== undefined ? "(" + secs + " s)" : "");
    const running = st.state === "starting" || st.state === "running";
    show("cancel-form", running);
    const run = document.getElementById("run");
    if (run) run.disabled = running || run.dataset.ready !== "1";
    const bar = document.getElementById("bar");
    if (!running && bar) { bar.max = 1; bar.value = 1; }
    if (st.message) { text("job-error", st.message); show("job-error", true); } else { show("job-error", false); }
    if (st.state === "done" && st.task === "analyse") show("done", true);
    if (st.state === "done" && st.task === "diagnose" && st.diagnosis) {
      const dx = st.diagnosis;
      text("dx-title", dx.title);
      const body = document.getElementById("dx-rows");
      body.replaceChildren();
      for (const r of dx.rows) {
        const tr = document.createElement("tr");
        for (const v of [r.diagnosand, r.estimate, r.mc_se]) {
          const td = document.createElement("td");
          td.textContent = typeof v === "number" ? (isFinite(v) ? v.toFixed(3) : "-") : (v === null ? "-" : String(v));
          tr.appendChild(td);
        }
        body.appendChild(tr);
      }
      text("dx-rating", "True effect " + Number(dx.true_effect).toFixed(3) + " points; expected evidence rating: " + dx.rating + ".");
      show("diagnosis", true);
    }
    return running;
  }
  async function poll() {
    try {
      const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      const st = await r.json();
      if (render(st)) setTimeout(poll, 1000);
    } catch (e) {
      text("stage", "Lost contact with the app; is it still running?");
    }
  }
  poll();
})();
