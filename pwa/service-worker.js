/* Shanzhi service worker: precached, versioned static assets; network-first pages with a cached
 * fallback (after an error, or after a few seconds of a weak signal) and an offline page. The server
 * fills in the three constants below when it serves this file at /service-worker.js (scope "/"), so
 * any change to an asset makes a new worker version.
 *
 * Rules (docs/field.md, "Offline"): a form sent while the network is gone gets a page that says it was
 * not sent (never the browser's error page); a URL with a query string is never saved (it may carry
 * form data); saved pages are dropped when the session ends (every sign-in page asks for it: see
 * PURGE_PAGES); at most PAGES_LIMIT pages are kept. */
const VERSION = "__SW_VERSION__";
const PRECACHE_URLS = __PRECACHE_URLS__; // the public shell, for every visitor
const AUDIENCE_URLS = __AUDIENCE_URLS__; // cached when a signed-in page asks (message PRECACHE_AUDIENCE)
const OFFLINE_URL = "__OFFLINE_URL__";
const STATIC_CACHE = `shanzhi-static-${VERSION}`;
const PAGES_CACHE = "shanzhi-pages";
const PAGES_LIMIT = 60;
const NAVIGATION_TIMEOUT_MS = 4000;
// Pages that must always come from the server, never from a cache.
const NEVER_CACHE = [/^\/login/, /^\/logout/, /^\/lang\//, /^\/healthz/, /^\/sync\//, /^\/api\//, /^\/open311\//];

// The outbox (pwa/js/outbox.js, a classic script shared with the pages) lets Background Sync flush the
// field app's queued writes while no page is open.
const OUTBOX_URL = "__OUTBOX_URL__";
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
    (async () => {
      // Only the signed-in user's device: the session cookie that goes with this request is theirs,
      // and another user's queued records wait for that user's own sign-in.
      const userId = await self.ShanzhiOutbox.currentUser();
      if (!userId) return;
      const report = await self.ShanzhiOutbox.flush(userId);
      // Rejecting makes the browser retry the sync later, as it does for a failed network.
      if (report.error && report.error !== "not_signed_in") throw new Error(`outbox flush failed: ${report.error}`);
    })(),
  );
});

const INSTALL_RETRIES = 3;

// One asset at a time with a few retries, not one all-or-nothing addAll: on a weak signal a single
// failed download would otherwise throw the whole install away until the next page load.
async function precache(urls) {
  const cache = await caches.open(STATIC_CACHE);
  await Promise.all(
    urls.map(async (url) => {
      if (!(await cache.match(url))) await withRetries(() => cache.add(url));
    }),
  );
}

async function withRetries(step) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await step();
    } catch (error) {
      if (attempt >= INSTALL_RETRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

self.addEventListener("install", (event) => {
  // No skipWaiting here: a new version waits until the user taps "refresh", so code is never
  // swapped under an open page.
  event.waitUntil(
    (async () => {
      await precache(PRECACHE_URLS);
      const pages = await caches.open(PAGES_CACHE);
      await withRetries(() => pages.add(new Request(OFFLINE_URL, { credentials: "same-origin" })));
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
  } else if (type === "CLAIM") {
    // A page that loaded while this worker was activating missed the claim in "activate".
    event.waitUntil(self.clients.claim());
  } else if (type === "CACHE_PAGES") {
    // The page that installed the worker loaded before the worker controlled it: save it now.
    event.waitUntil(Promise.all((event.data.urls || []).map((url) => savePage(url))));
  } else if (type === "PRECACHE_AUDIENCE") {
    // A signed-in page: cache its audience's files now (the field app for a grid worker), so they
    // are there offline even if no page has used them yet.
    const urls = [...(AUDIENCE_URLS.signed_in || []), ...(AUDIENCE_URLS[event.data.audience] || [])];
    event.waitUntil(precache([...new Set(urls)]).catch(() => null)); // what fails is cached on first use

  } else if (type === "PURGE_PAGES") {
    // Signed out, or the session ended (a sign-in page asks): drop saved pages (they may hold personal
    // data), keep the offline page; forget the outbox's reference data and who was signed in, so
    // Background Sync pushes nobody's records with the next person's session. Unsent records stay.
    event.waitUntil(
      Promise.all([purgePages(), self.ShanzhiOutbox ? self.ShanzhiOutbox.forgetReferences().catch(() => null) : null]),
    );
  }
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && request.method !== "GET") {
    // A form sent as a page load: if it cannot reach the server, say so on a page of ours.
    event.respondWith(fetch(request).catch(() => offlinePage("not-sent")));
    return;
  }
  if (request.method !== "GET") return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(cacheFirst(request));
  } else if (request.mode === "navigate") {
    if (NEVER_CACHE.some((re) => re.test(url.pathname))) {
      event.respondWith(fetch(request).catch(() => offlinePage("page")));
    } else {
      event.respondWith(networkFirstPage(event));
    }
  }
});

async function cacheFirst(request) {
  const cached = await caches.match(request, { cacheName: STATIC_CACHE });
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) {
    const cache = await caches.open(STATIC_CACHE);
    await cache.put(request, response.clone());
  }
  return response;
}

// A saved copy of this very URL is revalidated with its ETag: an unchanged page answers 304 (a few
// hundred bytes) and the saved copy is shown (`saved: true`: nothing to save again); a changed one
// comes whole and replaces it.
async function revalidate(request, cache) {
  const saved = await cache.match(request);
  const etag = saved && saved.headers.get("ETag");
  if (!etag) return { response: await fetch(request), saved: false };
  const response = await fetch(
    new Request(request.url, { headers: { "If-None-Match": etag }, credentials: "same-origin", redirect: "manual" }),
  );
  return response.status === 304 ? { response: saved, saved: true } : { response, saved: false };
}

function isSavablePage(request, response) {
  const type = response.headers.get("content-type") || "";
  // Only real pages at plain addresses: not redirects (to the login page), not errors, and never an
  // address with a query string, which may carry what someone typed into a form.
  return response.ok && !response.redirected && type.startsWith("text/html") && !new URL(request.url).search;
}

// Changes to the saved pages run one after another, in the order they were asked for: a purge asked for
// by the sign-in page is over before the next person's first page is saved, never half-way through it.
let pagesQueue = Promise.resolve();

function inTurn(step) {
  const run = pagesQueue.then(step);
  pagesQueue = run.catch(() => null);
  return run;
}

function purgePages() {
  // Everything but the offline page (which must still be there when this happens offline).
  return inTurn(async () => {
    const cache = await caches.open(PAGES_CACHE);
    const keys = await cache.keys();
    await Promise.all(keys.filter((key) => new URL(key.url).pathname !== OFFLINE_URL).map((key) => cache.delete(key)));
  });
}

function putPage(request, response) {
  return inTurn(async () => {
    const cache = await caches.open(PAGES_CACHE);
    await cache.put(request, response);
    const keys = await cache.keys();
    // Oldest first (the Cache API keeps insertion order); the offline page is never dropped.
    const extra = keys.filter((key) => new URL(key.url).pathname !== OFFLINE_URL).slice(0, Math.max(0, keys.length - PAGES_LIMIT));
    await Promise.all(extra.map((key) => cache.delete(key)));
  });
}

async function savePage(url) {
  // Marked as the worker's own background save: a page that counts its opens (a QR guide's scans)
  // does not count it.
  const request = new Request(url, { credentials: "same-origin", headers: { "X-Shanzhi-Background": "1" } });
  const path = new URL(request.url).pathname;
  if (NEVER_CACHE.some((re) => re.test(path))) return;
  try {
    // A few tries: a busy server (503) or a dropped connection must not leave the page unsaved until
    // the next visit, which may be the offline one.
    const response = await withRetries(async () => {
      const answer = await fetch(request);
      if (answer.status >= 500) throw new Error(`status ${answer.status}`);
      return answer;
    });
    if (isSavablePage(request, response)) await putPage(request, response);
  } catch (error) {
    // Offline at this moment: the page is saved on the next visit instead.
  }
}

async function offlinePage(kind) {
  const cache = await caches.open(PAGES_CACHE);
  const offline = await cache.match(OFFLINE_URL);
  if (!offline) return Response.error();
  // The same cached page serves "this page is not saved" and "your form was not sent".
  const html = (await offline.text()).replace('data-offline-kind="page"', `data-offline-kind="${kind}"`);
  return new Response(html, { status: 200, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function networkFirstPage(event) {
  const request = event.request;
  const cache = await caches.open(PAGES_CACHE);
  const cached = cache.match(request).then((hit) => hit || cache.match(request, { ignoreSearch: true }));
  const revalidated = revalidate(request, cache);
  const network = revalidated.then(({ response }) => response);
  // Whatever the page gets, the fresh copy is saved (a redirect to the sign-in page is not: that page
  // itself asks for the purge, PURGE_PAGES).
  event.waitUntil(
    revalidated
      .then(({ response, saved }) => {
        if (!saved && isSavablePage(request, response)) return putPage(request, response.clone());
        return null;
      })
      .catch(() => null),
  );
  try {
    // A weak signal must not hang the worker's screen: after a few seconds a saved copy wins.
    const slow = pause(NAVIGATION_TIMEOUT_MS).then(async () => (await cached) || network);
    const response = await Promise.race([network, slow]);
    return response;
  } catch (error) {
    return (await cached) || offlinePage("page");
  }
}
