// Show the next runs of the timing being edited, as the server computes them
// (the same code the scheduler uses), each time a timing field changes.
"use strict";
(function () {
  const FIELDS = ["schedule_type", "cron", "minutes", "timezone", "next_run_0", "next_run_1"];
  function start() {
    const box = document.getElementById("dbqueue-preview");
    if (!box) return;
    let timer = null;
    async function update() {
      const query = new URLSearchParams();
      for (const name of FIELDS) {
        const field = document.querySelector(`[name="${name}"]`);
        if (field) query.set(name, field.value);
      }
      try {
        const response = await fetch(`${box.dataset.url}?${query}`, { credentials: "same-origin" });
        const data = await response.json();
        box.replaceChildren();
        const errors = Object.values(data.errors || {});
        if (errors.length) {
          const note = document.createElement("p");
          note.className = "errornote";
          note.textContent = errors.join(" ");
          box.append(note);
          return;
        }
        const list = document.createElement("ol");
        for (const run of data.runs) {
          const item = document.createElement("li");
          item.textContent = run;
          list.append(item);
        }
        box.append(data.runs.length ? list : "No runs.");
      } catch (error) {
        box.textContent = "The preview is not available right now.";
      }
    }
    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(update, 300);
    }
    for (const name of FIELDS) {
      const field = document.querySelector(`[name="${name}"]`);
      if (field) {
        field.addEventListener("input", later);
        field.addEventListener("change", later);
      }
    }
    update();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
