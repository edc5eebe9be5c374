// Toasts fade out on their own after a few seconds; errors stay until clicked.
document.addEventListener("click", (event) => {
  const toast = event.target.closest(".toast");
  if (toast) toast.remove();
});
const expireToasts = () => {
  document.querySelectorAll(".toast:not(.toast-error):not([data-timer])").forEach((toast) => {
    toast.dataset.timer = "1";
    setTimeout(() => toast.remove(), 6000);
  });
};
document.addEventListener("DOMContentLoaded", expireToasts);
document.addEventListener("htmx:afterSettle", expireToasts);
document.addEventListener("htmx:wsAfterMessage", expireToasts);
