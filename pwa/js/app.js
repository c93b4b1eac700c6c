// Shanzhi page script: service worker registration and update banner, htmx CSRF header, offline
// banner, forms that never lose what was typed, and a sign-out that never loses a queued record.
// Every user-facing text comes from the server-rendered page (translated there).

const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content || "";
const text = (key) => document.querySelector(`#page-text [data-t="${key}"]`)?.textContent.trim() || "";
const body = document.body;
const userId = body.dataset.user || "";
const PENDING_LOGOUT = "shanzhi.pending-logout";
const SUBMITTING = "shanzhi.submitting";
const DRAFT_PREFIX = "shanzhi.draft:";
// Drafts are personal data (a resident's name and phone): each is kept under the person signed in when it
// was typed ("anon" when nobody was) and never shown to anyone else. Signing out drops them all; a session
// that simply ended (an expired cookie) keeps the person's own until they sign in again (nothing typed is
// lost), and the next page anyone else signs in to drops them. One typed with nobody signed in (the
// suggestion box on a shared phone) lives an hour.
const DRAFT_OWNER = userId ? `user-${userId}` : "anon";
const ANONYMOUS_DRAFT_MS = 60 * 60 * 1000;

// htmx sends the CSRF token as a header on every unsafe request.
document.addEventListener("htmx:configRequest", (event) => {
  const token = csrfToken();
  if (token) event.detail.headers["x-csrftoken"] = token;
});

// --- Forms while offline: disabled, visibly, with what was typed kept -----------------------------------
//
// Field forms, the elder's check-in button and any form marked data-offline-form go through the outbox
// (field.js, checkin.js, signals.js, station.js) and work offline. Every other form posts to the server:
// offline it is disabled with a note, and what was typed is kept on the phone (a draft) until a
// submission reaches the server, so a form sent into a dead network (the service worker answers with a
// "not sent" page) is filled in again when the person goes back.

const guardedForms = () =>
  [...document.querySelectorAll('form[method="post" i]')].filter((form) => !form.matches("[data-field-form], [data-checkin-form], [data-offline-form], .logout-form"));

function draftKey(form) {
  return `${DRAFT_PREFIX}${DRAFT_OWNER}:${location.pathname}|${form.getAttribute("action") || ""}`;
}

function draftKeys() {
  try {
    return Object.keys(localStorage).filter((key) => key.startsWith(DRAFT_PREFIX));
  } catch (error) {
    return []; // storage disabled: there are no drafts
  }
}

function forgetDraft(key) {
  try {
    localStorage.removeItem(key);
  } catch (error) {
    // nothing to clean
  }
}

function dropDrafts() {
  for (const key of draftKeys()) forgetDraft(key);
}

/** The values kept under `key`, or null; a draft that is not this page's to show is dropped. */
function readDraft(key) {
  const owner = key.slice(DRAFT_PREFIX.length).split(":", 1)[0];
  let draft = null;
  try {
    draft = JSON.parse(localStorage.getItem(key) || "null");
  } catch (error) {
    draft = null;
  }
  const usable =
    draft && typeof draft === "object" && draft.values && Number.isFinite(draft.savedAt) &&
    (owner === DRAFT_OWNER || owner === "anon") &&
    (owner !== "anon" || Date.now() - draft.savedAt < ANONYMOUS_DRAFT_MS);
  // Another person's draft is dropped only on a page someone is signed in to: the offline page (which
  // shows nobody) must not throw away what the signed-in worker typed.
  if (!usable && (userId || !owner.startsWith("user-"))) forgetDraft(key);
  return usable ? draft.values : null;
}

function sweepDrafts() {
  for (const key of draftKeys()) readDraft(key);
}

function draftFields(form) {
  return [...form.elements].filter(
    (field) => field.name && field.name !== "_csrf_token" && !["password", "file", "hidden", "submit", "button"].includes(field.type),
  );
}

function saveDraft(form) {
  const values = {};
  for (const field of draftFields(form)) {
    if (field.type === "checkbox" || field.type === "radio") {
      if (field.checked) (values[field.name] ||= []).push(field.value);
    } else if (field.value) {
      values[field.name] = [field.value];
    }
  }
  try {
    if (Object.keys(values).length) localStorage.setItem(draftKey(form), JSON.stringify({ savedAt: Date.now(), values }));
    else localStorage.removeItem(draftKey(form));
  } catch (error) {
    // Storage full or disabled: the form still works, only the draft is not kept.
  }
}

function restoreDraft(form) {
  const values = readDraft(draftKey(form));
  if (!values) return;
  let restored = false;
  for (const field of draftFields(form)) {
    const kept = values[field.name];
    if (!kept) continue;
    if (field.type === "checkbox" || field.type === "radio") {
      if (!field.checked && kept.includes(field.value)) field.checked = restored = true;
    } else if (!field.value || field.tagName === "SELECT") {
      // What the server filled in (after its own refusal) wins over the draft; an empty field is filled.
      if (field.value !== kept[0]) {
        field.value = kept[0];
        restored = true;
      }
    }
  }
  if (restored) note(form, "draft-restored", text("form_restored"));
}

function note(form, kind, message) {
  let node = form.querySelector(`[data-form-note="${kind}"]`);
  if (!message) {
    node?.remove();
    return;
  }
  if (!node) {
    node = document.createElement("p");
    node.className = kind === "offline" ? "alert alert-warning form-offline-note" : "alert alert-info";
    node.dataset.formNote = kind;
    node.setAttribute("role", "status");
    form.prepend(node);
  }
  node.textContent = message;
}

function showNetworkState() {
  const offline = !navigator.onLine;
  body.classList.toggle("is-offline", offline);
  const banner = document.getElementById("net-status");
  if (banner) banner.hidden = !offline;
  for (const form of guardedForms()) {
    form.dataset.offline = String(offline);
    for (const button of form.querySelectorAll('button[type="submit"], button:not([type]), input[type="submit"]')) {
      if (offline) {
        if (!button.disabled) button.dataset.offlineDisabled = "true";
        button.disabled = true;
      } else if (button.dataset.offlineDisabled) {
        button.disabled = false;
        delete button.dataset.offlineDisabled;
      }
    }
    note(form, "offline", offline ? text("form_offline") : "");
  }
}

function settleLastSubmission() {
  // The page after a submission: if it is the service worker's "not sent" page, the draft stays for
  // when the person goes back; any page from the server means the server has the submission.
  const submitted = sessionStorage.getItem(SUBMITTING);
  if (!submitted) return;
  sessionStorage.removeItem(SUBMITTING);
  // The same for a refusal the server could not read the form of (413: photos too large).
  if (document.querySelector('[data-offline-kind="not-sent"], [data-keep-draft]')) return;
  forgetDraft(submitted);
}

function guardForms(root = document) {
  for (const form of guardedForms()) {
    if (form.dataset.guarded || !root.contains(form)) continue;
    form.dataset.guarded = "true";
    restoreDraft(form);
    form.addEventListener("input", () => saveDraft(form));
    form.addEventListener("change", () => saveDraft(form));
    form.addEventListener("submit", (event) => {
      if (!navigator.onLine) {
        event.preventDefault();
        note(form, "offline", text("form_offline"));
        return;
      }
      saveDraft(form);
      sessionStorage.setItem(SUBMITTING, draftKey(form));
    });
  }
}

window.addEventListener("online", () => {
  showNetworkState();
  finishOfflineSignOut();
});
window.addEventListener("offline", showNetworkState);
// A page restored from the back-forward cache: the network may have changed meanwhile.
window.addEventListener("pageshow", (event) => {
  if (event.persisted) showNetworkState();
});
document.addEventListener("htmx:load", (event) => {
  guardForms(event.target);
  showNetworkState();
});
// The sign-in page (every time it is shown: after signing out, and when a session ended, by the server
// or by the browser dropping an expired cookie) drops the saved pages and reference data the last person
// left on this phone (their drafts stay theirs: see DRAFT_OWNER).
const purgeHere = Boolean(document.querySelector("[data-purge-pages]"));
settleLastSubmission();
sweepDrafts();
guardForms();
showNetworkState();

// --- Signing out without losing queued records ---------------------------------------------------------

const Outbox = () => window.ShanzhiOutbox;

async function waitingRecords() {
  if (!userId || !Outbox()) return 0;
  try {
    const { pending, rejected } = await Outbox().counts(userId);
    return pending + rejected;
  } catch (error) {
    return 0;
  }
}

async function dropPersonalData({ keepDrafts = false } = {}) {
  // Form drafts, saved pages and downloaded reference data may hold personal data. The outbox's
  // records stay (nothing unsent is lost); who is signed in goes, so Background Sync pushes nothing.
  if (!keepDrafts) dropDrafts();
  // getRegistration, not `ready`: `ready` never settles while no worker is active (first visit, a
  // failed install), and sign-out must never wait on it. A worker that is not active yet has saved no
  // page but the offline one. The worker also forgets the outbox's references (it finishes that even
  // if this page is left at once, as a quick sign-in does).
  const registration = await navigator.serviceWorker?.getRegistration("/").catch(() => null);
  const worker = registration?.active || registration?.waiting || registration?.installing;
  worker?.postMessage({ type: "PURGE_PAGES" });
  if (Outbox()) await Outbox().forgetReferences().catch(() => null);
}

function signOutDialog() {
  return document.getElementById("signout-dialog");
}

function openDialog(message, buttons) {
  const dialog = signOutDialog();
  dialog.querySelector("[data-signout-message]").textContent = message;
  for (const button of dialog.querySelectorAll("[data-signout-action]")) button.hidden = !buttons.includes(button.dataset.signoutAction);
  if (!dialog.open) dialog.showModal();
  return new Promise((resolve) => {
    const choose = (event) => {
      const action = event.target.closest("[data-signout-action]")?.dataset.signoutAction;
      if (!action) return;
      dialog.removeEventListener("click", choose);
      resolve(action);
    };
    dialog.addEventListener("click", choose);
  });
}

async function signOutOffline(form, waiting) {
  try {
    localStorage.setItem(PENDING_LOGOUT, csrfToken());
  } catch (error) {
    // Without storage the server session simply expires later.
  }
  await dropPersonalData();
  const message = waiting ? text("signout_offline_waiting").replace("%(count)s", String(waiting)) : text("signout_offline");
  await openDialog(message, ["ok"]);
  signOutDialog().close();
  location.replace("/offline");
}

async function onSignOut(event) {
  const form = event.currentTarget;
  if (form.dataset.confirmed) return;
  event.preventDefault();
  const waiting = await waitingRecords();
  if (!navigator.onLine) {
    await signOutOffline(form, waiting);
    return;
  }
  if (waiting) {
    for (;;) {
      const choice = await openDialog(text("signout_waiting").replace("%(count)s", String(waiting)), ["sync", "anyway", "cancel"]);
      if (choice === "cancel") {
        signOutDialog().close();
        return;
      }
      if (choice === "anyway") break;
      const report = await Outbox().flush(userId);
      if (!report.error && (await waitingRecords()) === 0) break;
      const left = await waitingRecords();
      if (!left) break;
      // Still not sent (no network, or the server refused some): say so and ask again.
      await openDialog(text("signout_sync_failed").replace("%(count)s", String(left)), ["ok"]);
    }
    signOutDialog().close();
  }
  await dropPersonalData();
  form.dataset.confirmed = "true";
  form.requestSubmit();
}

async function finishOfflineSignOut() {
  // Signed out while offline: tell the server as soon as there is a network.
  let token = null;
  try {
    token = localStorage.getItem(PENDING_LOGOUT);
  } catch (error) {
    token = null;
  }
  if (token === null || !navigator.onLine) return;
  try {
    const response = await fetch("/logout", { method: "POST", headers: { "x-csrftoken": token }, credentials: "same-origin" });
    if (!response.ok && response.status !== 401 && response.status !== 403) return;
  } catch (error) {
    return; // still no network: next time
  }
  localStorage.removeItem(PENDING_LOGOUT);
  if (userId) location.replace("/login?signed_out=1");
}

document.querySelector(".logout-form")?.addEventListener("submit", onSignOut);
if (purgeHere) dropPersonalData({ keepDrafts: true });
// The "not sent" page: back to the form, where what was typed is filled in again.
document.querySelector("[data-history-back]")?.addEventListener("click", () => history.back());

// Photos chosen in a form marked data-downscale are shrunk on the phone before the form is sent (the
// field app's code, ShanzhiOutbox.downscale): an 8 MB camera photo becomes a few hundred KB. Where the
// browser cannot (no createImageBitmap, or a format it cannot decode) the file goes as chosen.
// The script that holds it is fetched only once a photo is chosen: a visit without photos costs nothing.
function loadScript(src) {
  if (window.ShanzhiOutbox) return Promise.resolve();
  return new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = src;
    script.onload = script.onerror = () => resolve();
    document.head.append(script);
  });
}

for (const input of document.querySelectorAll("input[type=file][data-downscale]")) {
  const form = input.form;
  if (!form || typeof DataTransfer !== "function") continue;
  let loading = null;
  input.addEventListener("change", () => {
    if (input.files.length) loading ||= loadScript(input.dataset.downscale);
  });
  form.addEventListener("submit", async (event) => {
    if (!input.files.length || form.dataset.downscaled === "true" || event.defaultPrevented) return;
    event.preventDefault();
    await (loading ||= loadScript(input.dataset.downscale));
    const shrink = window.ShanzhiOutbox?.downscale;
    if (!shrink) {
      form.dataset.downscaled = "true"; // cannot shrink here: send the photos as chosen
      form.requestSubmit(event.submitter || undefined);
      return;
    }
    const files = new DataTransfer();
    for (const file of input.files) {
      try {
        const { blob } = await shrink(file);
        files.items.add(new File([blob], file.name.replace(/\.[^.]+$/, "") + ".jpg", { type: "image/jpeg" }));
      } catch (error) {
        files.items.add(file);
      }
    }
    input.files = files.files;
    form.dataset.downscaled = "true";
    form.requestSubmit(event.submitter || undefined);
  });
}

// The tracking page's "copy" and "share" buttons (a resident keeps the case number and query code).
// Without the API the button is hidden: the text stays on screen to write down or screenshot.
for (const button of document.querySelectorAll("[data-copy]")) {
  if (!navigator.clipboard) { button.hidden = true; continue; }
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = button.dataset.done || button.textContent;
    } catch (error) {
      console.warn("copy failed", error);
    }
  });
}
for (const button of document.querySelectorAll("[data-share]")) {
  if (!navigator.share) { button.hidden = true; continue; }
  button.addEventListener("click", () => {
    navigator.share({ title: document.title, text: button.dataset.share, url: button.dataset.url }).catch(() => {});
  });
}
finishOfflineSignOut();

// --- Service worker: registration, updates -------------------------------------------------------------

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
  const audience = document.body.dataset.role;
  if (audience) {
    // Signed in: the worker caches this audience's files now (the field app for a grid worker); a
    // resident's first visit downloaded only the public shell.
    navigator.serviceWorker.ready.then((ready) => ready.active?.postMessage({ type: "PRECACHE_AUDIENCE", audience }));
  }
  if (!window.location.search) {
    const ready = await navigator.serviceWorker.ready;
    // A page whose load began before the worker activated is not claimed by "activate" (the claim ran
    // while the document was still loading): ask again, or this page would go on without the worker.
    if (!navigator.serviceWorker.controller) ready.active?.postMessage({ type: "CLAIM" });
    // Save this page for offline use if the worker has not: a first visit, or a page reached by a form
    // (the sign-in lands on the home page through a POST, which the worker never saves).
    const here = window.location.pathname;
    const saved = await caches.open("shanzhi-pages").then((cache) => cache.match(here)).catch(() => null);
    if (!saved) ready.active?.postMessage({ type: "CACHE_PAGES", urls: [here] });
  }
  if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
  registration.addEventListener("updatefound", () => {
    const installing = registration.installing;
    if (!installing) return;
    installing.addEventListener("statechange", () => {
      if (installing.state === "installed" && navigator.serviceWorker.controller) offerUpdate(installing);
    });
  });
}

registerServiceWorker().catch((error) => console.warn("Service worker registration failed", error));
