// Polls the batch's background files until none is running, then reloads once so the
// batch's counts and buttons reflect the result.
(function () {
  "use strict";
  const table = document.querySelector("table.console-uploads");
  if (!table) return;
  const url = table.dataset.progressUrl;
  let wasActive = false;

  async function poll() {
    let data;
    try {
      const response = await fetch(url, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
      if (!response.ok) return setTimeout(poll, 5000);
      data = await response.json();
    } catch (error) {
      return setTimeout(poll, 5000);
    }
    for (const upload of data.uploads) {
      const row = table.querySelector(`tr[data-upload="${upload.id}"]`);
      if (!row) continue;
      row.querySelector("progress").value = upload.percent;
      row.querySelector(".upload-rows").textContent = upload.rows.toLocaleString();
      row.querySelector(".upload-status").textContent = upload.status_label;
    }
    if (data.active) {
      wasActive = true;
      setTimeout(poll, 1500);
    } else if (wasActive) {
      window.location.reload();
    }
  }
  poll();
})();
