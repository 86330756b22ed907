// Keeps the job page's summary current while the job runs: fetches the job's progress
// every 1.5 s and updates the bar, counts, status and time left in place. Stops when the
// job ends (or the page may no longer read it). Every text comes from the server,
// translated and formatted there.
(function () {
  "use strict";
  const panel = document.getElementById("job-summary");
  if (!panel || panel.dataset.active !== "true") return;
  const url = panel.dataset.progressUrl;
  const EVERY_MS = 1500;
  const AFTER_ERROR_MS = 5000;

  function each(name, apply) {
    for (const element of panel.querySelectorAll(`[data-job="${name}"]`)) apply(element);
  }

  function setText(name, text) {
    each(name, (element) => { element.textContent = text; });
  }

  function update(data) {
    each("status", (badge) => {
      badge.className = `console-badge console-badge-${data.status}`;
      badge.textContent = data.status_label;
    });
    for (const name of ["total", "sent", "skipped", "failed", "not_sent", "requests", "percent"]) {
      setText(name, data.text[name]);
    }
    setText("duration", data.duration);
    setText("eta", data.eta);
    each("eta-line", (line) => { line.hidden = !data.is_active; });
    each("bar-sent", (bar) => { bar.style.width = data.bar.sent; });
    each("bar-failed", (bar) => { bar.style.width = data.bar.failed; });
    each("bar-skipped", (bar) => { bar.style.width = data.bar.skipped; });
    each("bar", (bar) => {
      bar.setAttribute("aria-valuemax", data.total);
      bar.setAttribute("aria-valuenow", data.sent + data.failed + data.skipped);
    });
    for (const [status, count] of Object.entries(data.chunks)) {
      setText(`chunks-${status}`, data.text.chunks[status]);
      const item = panel.querySelector(`[data-chunk-status="${status}"]`);
      if (item) item.hidden = count === 0;
    }
  }

  async function poll() {
    let response;
    try {
      response = await fetch(url, {
        headers: {"Accept": "application/json"},
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      setTimeout(poll, AFTER_ERROR_MS);
      return;
    }
    if (response.status === 403 || response.status === 404) return;
    if (!response.ok) {
      setTimeout(poll, AFTER_ERROR_MS);
      return;
    }
    const data = await response.json();
    update(data);
    if (data.is_active) {
      setTimeout(poll, EVERY_MS);
    } else {
      panel.dataset.active = "false";
      each("ended", (note) => { note.hidden = false; });
    }
  }

  setTimeout(poll, EVERY_MS);
})();
