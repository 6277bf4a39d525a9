// streamctl live view: swaps in the server-rendered sections every few seconds (no page reload) and
// runs validate from its button with the page's token. Nothing is fetched from anywhere else.
"use strict";
(function () {
  const REFRESH_MS = 2000;
  const token = document.querySelector('meta[name="streamctl-token"]').content;
  const sections = document.getElementById("sections");
  const updated = document.getElementById("updated");
  let busy = false;

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const response = await fetch("/sections", { cache: "no-store" });
      if (response.ok) {
        sections.innerHTML = await response.text();
        updated.textContent = new Date().toISOString().slice(11, 19);
        updated.classList.remove("stale");
      }
    } catch (error) {
      updated.textContent = "live view unreachable, retrying";
      updated.classList.add("stale");
    } finally {
      busy = false;
    }
  }

  async function runValidate(button) {
    button.disabled = true;
    button.textContent = "validating...";
    try {
      await fetch("/api/validate", {
        method: "POST", cache: "no-store",
        headers: { "Content-Type": "application/json", "X-Streamctl-Token": token },
        body: "{}",
      });
    } finally {
      refresh();
    }
  }

  sections.addEventListener("click", (event) => {
    const button = event.target.closest("#run-validate");
    if (button && !button.disabled) runValidate(button);
  });
  setInterval(refresh, REFRESH_MS);
})();
