// Shanzhi page script: service worker registration and update banner, htmx CSRF header, offline
// banner. Every user-facing text comes from the server-rendered page (translated there).

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

// htmx sends the CSRF token as a header on every unsafe request.
document.addEventListener("htmx:configRequest", (event) => {
  const token = csrfToken();
  if (token) event.detail.headers["x-csrftoken"] = token;
});

function showOfflineState() {
  const offline = !navigator.onLine;
  document.body.classList.toggle("is-offline", offline);
  const banner = document.getElementById("net-status");
  if (banner) banner.hidden = !offline;
}
window.addEventListener("online", showOfflineState);
window.addEventListener("offline", showOfflineState);
showOfflineState();

function offerUpdate(worker) {
  const banner = document.getElementById("sw-update");
  const button = document.getElementById("sw-update-button");
  if (!banner || !button || !worker) return;
  banner.hidden = false;
  button.addEventListener(
    "click",
    () => {
      button.disabled = true;
      worker.postMessage({ type: "SKIP_WAITING" });
    },
    { once: true },
  );
}

async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return;
  const hadController = Boolean(navigator.serviceWorker.controller);
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    // Reload only when a new version replaced an old one at the user's request; the first
    // install just takes control of this page.
    if (!hadController || reloading) return;
    reloading = true;
    window.location.reload();
  });
  const registration = await navigator.serviceWorker.register("/service-worker.js", { scope: "/" });
  if (!hadController) {
    // First visit: once the worker is active, let it save this page for offline use too.
    const ready = await navigator.serviceWorker.ready;
    ready.active?.postMessage({ type: "CACHE_PAGES", urls: [window.location.pathname + window.location.search] });
  }
  if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const installing = registration.installing;
    if (!installing) return;
    installing.addEventListener("statechange", () => {
      if (installing.state === "installed" && navigator.serviceWorker.controller) offerUpdate(installing);
    });
  });
  if (document.querySelector("[data-purge-pages]")) {
    // Signed out: saved pages and downloaded reference data may hold personal data; the outbox stays.
    if (window.ShanzhiOutbox) await window.ShanzhiOutbox.forgetReferences().catch(() => null);
    const ready = await navigator.serviceWorker.ready;
    ready.active?.postMessage({ type: "PURGE_PAGES" });
  }
}

registerServiceWorker().catch((error) => console.warn("Service worker registration failed", error));
