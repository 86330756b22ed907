// Keeps the job page current while the job runs, without reloading it: every 1.5 s it
// fetches the job's progress (with the page's own chunk filter and page), updates the
// summary and the job's own dates in place, and replaces the parts that changed: the
// buttons offered, the notes, the failed customers, the chunk table, the skipped
// customers. The server renders those parts with the page's own templates, so every text
// is translated and formatted there. Attempt lists the operator opened or closed stay so,
// and so does the focus. It stops when the job ends (after showing its final state) or
// when the page may no longer read it.
(function () {
  "use strict";
  const panel = document.getElementById("job-summary");
  if (!panel || panel.dataset.active !== "true") return;
  const url = panel.dataset.progressUrl + window.location.search;
  const EVERY_MS = 1500;
  const AFTER_ERROR_MS = 5000;
  const shown = {};

  function each(name, apply) {
    for (const element of panel.querySelectorAll(`[data-job="${name}"]`)) apply(element);
  }

  function setText(name, text) {
    each(name, (element) => { element.textContent = text; });
  }

  function updateSummary(data) {
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
      bar.setAttribute("aria-valuemax", data.bar_total);
      bar.setAttribute("aria-valuenow", data.bar_done);
    });
    for (const [status, count] of Object.entries(data.chunks)) {
      setText(`chunks-${status}`, data.text.chunks[status]);
      const item = panel.querySelector(`[data-chunk-status="${status}"]`);
      if (item) item.hidden = count === 0;
    }
  }

  // The attempt lists the operator opened or closed, by chunk number.
  function openedAttempts(part) {
    const opened = {};
    for (const details of part.querySelectorAll("details[data-chunk]")) {
      opened[details.dataset.chunk] = details.open;
    }
    return opened;
  }

  // Finds, in a freshly rendered part, the element that had the focus in the old one.
  function focusFinder(part) {
    const element = document.activeElement;
    if (!element || element === document.body || !part.contains(element)) return null;
    if (element.id) return (fresh) => fresh.querySelector(`#${CSS.escape(element.id)}`);
    if (element.matches("summary")) {
      const chunk = element.parentElement.dataset.chunk;
      return (fresh) => fresh.querySelector(`details[data-chunk="${chunk}"] > summary`);
    }
    if (element.matches("a[href]")) {
      const href = element.getAttribute("href");
      return (fresh) => [...fresh.querySelectorAll("a[href]")]
        .find((link) => link.getAttribute("href") === href);
    }
    if (element.matches(".console-scroll")) return (fresh) => fresh.querySelector(".console-scroll");
    return null;
  }

  function replacePart(name, html) {
    const part = document.querySelector(`[data-job-part="${name}"]`);
    if (!part || shown[name] === html) return;
    const opened = openedAttempts(part);
    const scroll = part.querySelector(".console-scroll");
    const scrollLeft = scroll ? scroll.scrollLeft : 0;
    const refocus = focusFinder(part);
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    if (!fresh) return;
    for (const details of fresh.querySelectorAll("details[data-chunk]")) {
      if (details.dataset.chunk in opened) details.open = opened[details.dataset.chunk];
    }
    part.replaceWith(fresh);
    const freshScroll = fresh.querySelector(".console-scroll");
    if (freshScroll) freshScroll.scrollLeft = scrollLeft;
    const focused = refocus ? refocus(fresh) : null;
    if (focused) focused.focus({preventScroll: true});
    shown[name] = html;
  }

  function replaceTools(html) {
    const tools = document.querySelector("ul.object-tools");
    if (!tools || shown.tools === html) return;
    for (const item of tools.querySelectorAll("li[data-job-tool]")) item.remove();
    tools.insertAdjacentHTML("afterbegin", html.trim());
    shown.tools = html;
  }

  // The job's own fields below the summary (started, finished, last worker activity...).
  function updateFields(fields) {
    for (const [name, text] of Object.entries(fields || {})) {
      // A row of several fields carries all their classes: each field is its own box.
      const field = document.querySelector(`.fieldBox.field-${name} .readonly`)
        || document.querySelector(`.form-row.field-${name}:not(:has(.fieldBox)) .readonly`);
      if (field && field.textContent !== text) field.textContent = text;
    }
  }

  function update(data) {
    updateSummary(data);
    updateFields(data.fields);
    if (!data.html) return;
    replaceTools(data.html.tools);
    for (const name of ["phases", "notes", "failed", "chunks", "skipped"]) {
      replacePart(name, data.html[name]);
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
      // Ended (a held job is not: its notes ask for a decision instead).
      if (data.is_terminal) each("ended", (note) => { note.textContent = note.dataset.text; });
    }
  }

  setTimeout(poll, EVERY_MS);
})();
