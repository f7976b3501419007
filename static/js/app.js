// Behaviour the pages declare with data attributes, so that no page needs an
// inline script (Content-Security-Policy: script-src 'self').
//   <form data-confirm="Question?">     asks before submitting
//   <form data-busy="Working…">         disables its button while it submits
//   <button data-print>                 prints the page
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  if (form.dataset.busy) {
    const button = form.querySelector("button");
    if (button) {
      button.disabled = true;
      button.textContent = form.dataset.busy;
    }
  }
});
document.addEventListener("click", (event) => {
  if (event.target instanceof Element && event.target.closest("[data-print]")) window.print();
});
// Tabs (role="tablist"): the arrow keys, Home and End move between tabs.
document.addEventListener("keydown", (event) => {
  const tab = event.target instanceof Element ? event.target.closest("[role=tab]") : null;
  if (!tab) return;
  const tabs = Array.from(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
  const at = tabs.indexOf(tab);
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  tabs[(to + tabs.length) % tabs.length].focus();
});
// A confirmation that htmx brings in takes the focus, and an older message
// above it (the last action's) goes: it is about something already done.
document.addEventListener("htmx:afterSwap", (event) => {
  const dialog = event.detail.target.querySelector("[role=dialog]");
  if (!dialog) return;
  const panel = dialog.closest("#subscription-billing");
  if (panel) panel.querySelectorAll(":scope > .messages").forEach((m) => m.remove());
  dialog.setAttribute("tabindex", "-1");
  dialog.focus();
});
