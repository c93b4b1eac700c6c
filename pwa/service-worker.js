/* Shanzhi service worker: precached, versioned static assets; network-first pages with a cached
 * fallback and an offline page. The server fills in the three constants below when it serves this
 * file at /service-worker.js (scope "/"), so any change to an asset makes a new worker version. */
const VERSION = "__SW_VERSION__";
const PRECACHE_URLS = __PRECACHE_URLS__;
const OFFLINE_URL = "__OFFLINE_URL__";
const STATIC_CACHE = `shanzhi-static-${VERSION}`;
const PAGES_CACHE = "shanzhi-pages";
// Pages that must always come from the server, never from a cache.
const NEVER_CACHE = [/^\/login/, /^\/logout/, /^\/lang\//, /^\/healthz/, /^\/sync\//, /^\/api\//, /^\/open311\//];

// The outbox (pwa/js/outbox.js, a classic script shared with the pages) lets Background Sync flush the
// field app's queued writes while no page is open. Its versioned URL is one of the precached ones.
const OUTBOX_URL = PRECACHE_URLS.find((url) => url.startsWith("/static/js/outbox.js"));
if (OUTBOX_URL) {
  try {
    importScripts(OUTBOX_URL);
  } catch (error) {
    console.warn("outbox not loaded in the service worker", error);
  }
}

self.addEventListener("sync", (event) => {
  if (event.tag !== "shanzhi-outbox" || !self.ShanzhiOutbox) return;
  event.waitUntil(
    self.ShanzhiOutbox.flush().then((report) => {
      // Rejecting makes the browser retry the sync later, as it does for a failed network.
      if (report.error) throw new Error(`outbox flush failed: ${report.error}`);
    }),
  );
});

self.addEventListener("install", (event) => {
  // No skipWaiting here: a new version waits until the user taps "refresh", so code is never
  // swapped under an open page.
  event.waitUntil(
    (async () => {
      const cache = await caches.open(STATIC_CACHE);
      await cache.addAll(PRECACHE_URLS);
      const pages = await caches.open(PAGES_CACHE);
      await pages.add(new Request(OFFLINE_URL, { credentials: "same-origin" }));
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const names = await caches.keys();
      await Promise.all(
        names
          .filter((name) => name.startsWith("shanzhi-static-") && name !== STATIC_CACHE)
          .map((name) => caches.delete(name)),
      );
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  const type = event.data && event.data.type;
  if (type === "SKIP_WAITING") {
    self.skipWaiting();
  } else if (type === "CACHE_PAGES") {
    // The page that installed the worker loaded before the worker controlled it: save it now.
    event.waitUntil(Promise.all((event.data.urls || []).map((url) => savePage(url))));
  } else if (type === "PURGE_PAGES") {
    // After sign-out: drop saved pages (they may hold personal data), keep the offline page.
    event.waitUntil(
      (async () => {
        await caches.delete(PAGES_CACHE);
        const pages = await caches.open(PAGES_CACHE);
        await pages.add(new Request(OFFLINE_URL, { credentials: "same-origin" }));
      })(),
    );
  }
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(cacheFirst(request));
  } else if (request.mode === "navigate" && !NEVER_CACHE.some((re) => re.test(url.pathname))) {
    event.respondWith(networkFirstPage(request));
  }
});

async function cacheFirst(request) {
  const cached = await caches.match(request, { cacheName: STATIC_CACHE });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(STATIC_CACHE);
    cache.put(request, response.clone());
  }
  return response;
}

function isSavablePage(response) {
  const type = response.headers.get("content-type") || "";
  // Keep only real pages: not redirects to the login page, not error pages.
  return response.ok && !response.redirected && type.startsWith("text/html");
}

async function savePage(url) {
  const path = new URL(url, self.location.origin).pathname;
  if (NEVER_CACHE.some((re) => re.test(path))) return;
  try {
    const response = await fetch(url, { credentials: "same-origin" });
    if (isSavablePage(response)) await (await caches.open(PAGES_CACHE)).put(url, response);
  } catch (error) {
    // Offline at this moment: the page is saved on the next visit instead.
  }
}

async function networkFirstPage(request) {
  const cache = await caches.open(PAGES_CACHE);
  try {
    const response = await fetch(request);
    if (isSavablePage(response)) cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = (await cache.match(request)) || (await cache.match(request, { ignoreSearch: true }));
    if (cached) return cached;
    const offline = await cache.match(OFFLINE_URL);
    if (offline) return offline;
    throw error;
  }
}
