/* The mapping step, live: when a field's column changes, its first values, the file's
   values of a choice field (with what each becomes), a date format and number separators
   follow at once, and Preview waits until every required field has a source. Without
   this script the page does the same through "Show the values of the chosen columns". */
(function () {
  "use strict";
  const form = document.getElementById("mapping-form");
  const data = document.getElementById("mapping-survey");
  if (!form || !data) return;
  const survey = JSON.parse(data.textContent);
  const text = survey.text;

  function hex(value) {
    return Array.from(new TextEncoder().encode(value))
      .map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  function field(name, part) {
    return form.elements[part + "__" + name];
  }

  function suggested(choices, value) {
    const wanted = value.toLocaleLowerCase();
    return choices.find((c) => c.toLocaleLowerCase() === wanted) || "";
  }

  function showSample(name, column) {
    const sample = form.querySelector('[data-sample-for="' + name + '"]');
    if (!sample) return;
    sample.textContent = "";
    if (!column || !column.first.length) return;
    sample.append(text.first + " ");
    column.first.forEach((value, i) => {
      const q = document.createElement("q");
      q.textContent = value.length > 40 ? value.slice(0, 39) + "…" : value;
      sample.append(q);
      if (i < column.first.length - 1) sample.append(", ");
    });
  }

  function valuesTable(name, target, column) {
    const box = form.querySelector('[data-values-for="' + name + '"]');
    if (!box) return;
    const kept = {};
    box.querySelectorAll("select").forEach((s) => { kept[s.name] = s.value; });
    box.textContent = "";
    if (!column || !column.distinct.length) return;
    const table = document.createElement("table");
    const caption = table.createCaption();
    caption.textContent = text.caption.replace("%(field)s", name);
    const head = table.createTHead().insertRow();
    [text.in_file, text.rows, text.becomes].forEach((label) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = label;
      head.append(th);
    });
    const body = table.createTBody();
    column.distinct.forEach(([value, count]) => {
      const row = body.insertRow();
      const select = document.createElement("select");
      select.name = "val__" + name + "__" + hex(value);
      select.id = "id_" + select.name;
      ["", ...target.choices].forEach((choice) => {
        select.add(new Option(choice || "—", choice));
      });
      select.value = kept[select.name] !== undefined ? kept[select.name] : suggested(target.choices, value);
      const label = document.createElement("label");
      label.htmlFor = select.id;
      label.textContent = value;
      row.insertCell().append(label);
      row.insertCell().textContent = count;
      row.insertCell().append(select);
    });
    box.append(table);
    if (column.more) {
      const note = document.createElement("p");
      note.className = "help";
      note.textContent = text.more;
      box.append(note);
    }
  }

  function columnChanged(name) {
    const target = survey.targets[name];
    const column = survey.columns[field(name, "col").value];
    showSample(name, column);
    if (target.type === "choice") valuesTable(name, target, column);
    if (column && (target.type === "date" || target.type === "datetime")) {
      const format = field(name, "fmt");
      if (format && !format.value) format.value = column.date_format;
      const warning = form.querySelector('[data-ambiguous-for="' + name + '"]');
      if (warning) warning.hidden = !column.ambiguous;
    }
    if (column && (target.type === "number" || target.type === "integer")) {
      field(name, "dec").value = column.separators[0];
      field(name, "thou").value = column.separators[1];
    }
  }

  function used() {
    const names = new Set();
    Object.keys(survey.targets).forEach((name) => {
      ["col", "join"].forEach((part) => {
        const select = field(name, part);
        if (select && select.value) names.add(select.value);
      });
    });
    return names;
  }

  function refresh() {
    const missing = Object.keys(survey.targets).filter((name) => {
      if (!survey.targets[name].required) return false;
      return !field(name, "col").value && !field(name, "fixed").value.trim();
    });
    const json = form.elements.use_json && form.elements.use_json.checked;
    const note = document.getElementById("mapping-required");
    const preview = document.getElementById("mapping-preview");
    const blocked = missing.length > 0 && !json;
    note.hidden = !blocked;
    note.textContent = blocked ? text.required.replace("%(fields)s", missing.join(", ")) : "";
    preview.disabled = blocked;
    preview.setAttribute("aria-describedby", "mapping-required");
    const taken = used();
    const unused = Object.keys(survey.columns).filter((c) => c && !taken.has(c));
    const list = document.getElementById("unused-columns");
    list.textContent = unused.length ? text.unused + " " + unused.map((c) => "“" + c + "”").join(", ") : "";
  }

  Object.keys(survey.targets).forEach((name) => {
    field(name, "col").addEventListener("change", () => { columnChanged(name); refresh(); });
    const join = field(name, "join");
    if (join) join.addEventListener("change", refresh);
    field(name, "fixed").addEventListener("input", refresh);
  });
  if (form.elements.use_json) form.elements.use_json.addEventListener("change", refresh);
  // The values follow the columns at once: the button that shows them is not needed.
  document.getElementById("mapping-refresh").hidden = true;
  refresh();
})();
