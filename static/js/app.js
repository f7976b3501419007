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
