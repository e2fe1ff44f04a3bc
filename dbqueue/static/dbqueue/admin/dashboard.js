// Re-read the dashboard's panel every few seconds and swap it in, so the
// numbers stay live without a full page reload. No dependencies: the admin
// ships no script framework, and dbqueue loads nothing from a CDN.
"use strict";
(function () {
  function start() {
    const panel = document.getElementById("dbqueue-panel");
    if (!panel) return;
    const seconds = Number(panel.dataset.refresh) || 5;
    let busy = false;
    async function refresh() {
      // A form being used (a pause button focused) is not replaced under the pointer.
      if (busy || document.hidden || panel.contains(document.activeElement)) return;
      busy = true;
      try {
        const response = await fetch(panel.dataset.url, {
          credentials: "same-origin",
          headers: { "X-Requested-With": "XMLHttpRequest" },
        });
        if (response.ok) {
          panel.innerHTML = await response.text();
          panel.dispatchEvent(new CustomEvent("dbqueue:refreshed"));
        }
      } catch (error) {
        // The server is away (a deploy): keep the last numbers and try again.
      } finally {
        busy = false;
      }
    }
    window.setInterval(refresh, seconds * 1000);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
