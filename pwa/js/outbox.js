/* Shanzhi outbox: the device side of the offline sync protocol (docs/sync.md).
 *
 * Every field write is stored here as a mutation before the worker is told "saved"; a flush
 * uploads the photos it names, pushes pending mutations in `seq` order and applies the server's
 * per-mutation answers. Reference data (places, cases, visits, conflicts) comes the other way by
 * pull and is kept here for the pages to draw when offline.
 *
 * A classic script on purpose (not an ES module): the service worker loads the same file with
 * importScripts() to flush on Background Sync, so there is one implementation of the protocol.
 * It exposes `self.ShanzhiOutbox`. No user-facing text lives here.
 */
(function (scope) {
  "use strict";

  const DB_NAME = "shanzhi-field";
  // 1: devices, outbox, photos, refs. 2: meta (who is signed in on this profile).
  const DB_VERSION = 2;
  const LOCK_NAME = "shanzhi-outbox-flush";
  const SYNC_TAG = "shanzhi-outbox";
  const BATCH_SIZE = 100;
  const MAX_DRIFT_MS = 5 * 60 * 1000;
  const SENT_KEPT_MS = 7 * 24 * 3600 * 1000;
  const PHOTO_LONG_EDGE = 1600;
  // Tunable (tests shorten them): a request that takes longer is abandoned and tried again later.
  const settings = { requestTimeoutMs: 30000, photoTimeoutMs: 60000 };
  const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("shanzhi-outbox") : null;

  // --- IndexedDB -----------------------------------------------------------------------------------

  let dbPromise = null;

  /** Each step brings a database of the previous version up to the next one, keeping every record:
   * a phone that last ran version 1 keeps its queued mutations through any later upgrade. */
  const UPGRADES = [
    (db) => {
      // One row per signed-in user on this profile: device id, seq counter, clock, pull cursor.
      db.createObjectStore("devices", { keyPath: "userId" });
      const outbox = db.createObjectStore("outbox", { keyPath: "mutation_id" });
      outbox.createIndex("by_device_seq", ["device_id", "seq"], { unique: true });
      outbox.createIndex("by_user", "user_id");
      db.createObjectStore("photos", { keyPath: "sha" });
      const refs = db.createObjectStore("refs", { keyPath: ["userId", "entity", "id"] });
      refs.createIndex("by_user_entity", ["userId", "entity"]);
    },
    (db) => {
      db.createObjectStore("meta", { keyPath: "key" });
    },
  ];

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, DB_VERSION);
      request.onupgradeneeded = (event) => {
        for (let version = event.oldVersion; version < DB_VERSION; version += 1) UPGRADES[version](request.result);
      };
      request.onsuccess = () => {
        const db = request.result;
        db.onversionchange = () => {
          db.close();
          dbPromise = null;
        };
        resolve(db);
      };
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error("IndexedDB upgrade blocked"));
    }).catch((error) => {
      dbPromise = null; // a failure is not kept: the next call tries again
      throw error;
    });
    return dbPromise;
  }

  const req = (request) =>
    new Promise((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });

  const done = (tx) =>
    new Promise((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
    });

  async function readAll(storeName, indexName, key) {
    const db = await openDb();
    const store = db.transaction(storeName).objectStore(storeName);
    const source = indexName ? store.index(indexName) : store;
    return req(key === undefined ? source.getAll() : source.getAll(key));
  }

  function announce(type, detail) {
    const message = { type, ...(detail || {}) };
    if (channel) channel.postMessage(message);
    if (typeof scope.dispatchEvent === "function" && typeof CustomEvent === "function") {
      scope.dispatchEvent(new CustomEvent("shanzhi-outbox", { detail: message }));
    }
  }

  // --- Hybrid logical clock (same packed format as sync/hlc.py) -------------------------------------

  function packHlc(wall, counter, node) {
    return `${String(wall).padStart(13, "0")}-${counter.toString(16).padStart(4, "0")}-${node}`;
  }

  function parseHlc(text) {
    const match = /^(\d{13})-([0-9a-f]{4})-(.+)$/.exec(text || "");
    return match ? { wall: Number(match[1]), counter: parseInt(match[2], 16) } : null;
  }

  function tick(clock, node) {
    const last = clock || { wall: 0, counter: 0 };
    const wall = Math.max(last.wall, Date.now());
    const counter = wall === last.wall ? last.counter + 1 : 0;
    return { clock: { wall, counter }, stamp: packHlc(wall, counter, node) };
  }

  function observe(clock, remoteText) {
    const remote = parseHlc(remoteText);
    const last = clock || { wall: 0, counter: 0 };
    if (!remote) return last;
    const now = Date.now();
    if (remote.wall - now > MAX_DRIFT_MS) return last; // a server far ahead of us: keep our own time
    const wall = Math.max(last.wall, remote.wall, now);
    let counter = 0;
    if (wall === last.wall && wall === remote.wall) counter = Math.max(last.counter, remote.counter) + 1;
    else if (wall === last.wall) counter = last.counter + 1;
    else if (wall === remote.wall) counter = remote.counter + 1;
    return { wall, counter };
  }

  // --- Devices ----------------------------------------------------------------------------------------

  function newDevice(userId) {
    return { userId, deviceId: crypto.randomUUID(), seq: 0, clock: { wall: 0, counter: 0 }, cursor: null, pulledAt: null };
  }

  async function device(userId) {
    const db = await openDb();
    const tx = db.transaction("devices", "readwrite");
    const store = tx.objectStore("devices");
    let row = await req(store.get(userId));
    if (!row) {
      row = newDevice(userId);
      store.put(row);
    }
    await done(tx);
    return row;
  }

  async function updateDevice(userId, change) {
    const db = await openDb();
    const tx = db.transaction("devices", "readwrite");
    const store = tx.objectStore("devices");
    const row = (await req(store.get(userId))) || newDevice(userId);
    change(row);
    store.put(row);
    await done(tx);
    return row;
  }

  function localIso(date) {
    const offset = -date.getTimezoneOffset();
    const sign = offset >= 0 ? "+" : "-";
    const abs = Math.abs(offset);
    const pad = (n, w = 2) => String(n).padStart(w, "0");
    return (
      `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:` +
      `${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
    );
  }

  // --- Writing mutations ------------------------------------------------------------------------------

  /** Store mutations ({entity, entity_id, op, fields, base_version, photos, summary}) in one transaction,
   * each with its own id, the next seq numbers and a fresh clock stamp. Returns the stored rows. */
  async function enqueue(userId, drafts) {
    const db = await openDb();
    const tx = db.transaction(["devices", "outbox"], "readwrite");
    const devices = tx.objectStore("devices");
    const outbox = tx.objectStore("outbox");
    const row = (await req(devices.get(userId))) || newDevice(userId);
    const now = new Date();
    const stored = [];
    for (const draft of drafts) {
      row.seq += 1;
      const ticked = tick(row.clock, row.deviceId);
      row.clock = ticked.clock;
      const mutation = {
        mutation_id: draft.mutation_id || crypto.randomUUID(),
        device_id: row.deviceId,
        user_id: userId,
        seq: row.seq,
        entity: draft.entity,
        entity_id: draft.entity_id,
        op: draft.op,
        fields: draft.fields,
        base_version: draft.base_version ?? null,
        hlc: ticked.stamp,
        recorded_at: localIso(now),
        photos: draft.photos || [],
        summary: draft.summary || "",
        state: "pending",
        result: null,
        created_at: now.getTime(),
        sent_at: null,
      };
      outbox.add(mutation);
      stored.push(mutation);
    }
    devices.put(row);
    await done(tx);
    announce("changed");
    return stored;
  }

  /** A corrected rejected mutation goes back to pending: same id and seq (nothing was recorded), new stamp. */
  async function resubmit(mutationId, fields, photos) {
    const db = await openDb();
    const tx = db.transaction(["devices", "outbox"], "readwrite");
    const outbox = tx.objectStore("outbox");
    const mutation = await req(outbox.get(mutationId));
    if (!mutation || mutation.state !== "rejected") {
      tx.abort();
      return null;
    }
    const devices = tx.objectStore("devices");
    const row = (await req(devices.get(mutation.user_id))) || newDevice(mutation.user_id);
    const ticked = tick(row.clock, mutation.device_id);
    row.clock = ticked.clock;
    devices.put(row);
    mutation.fields = fields;
    if (photos) mutation.photos = photos;
    mutation.hlc = ticked.stamp;
    mutation.state = "pending";
    mutation.previous = mutation.result;
    mutation.result = null;
    outbox.put(mutation);
    await done(tx).catch(() => null);
    announce("changed");
    return mutation;
  }

  async function discard(mutationId) {
    const db = await openDb();
    const tx = db.transaction("outbox", "readwrite");
    const store = tx.objectStore("outbox");
    const mutation = await req(store.get(mutationId));
    // Only what the server refused can be thrown away: pending writes must reach the server.
    if (mutation && mutation.state === "rejected") store.delete(mutationId);
    await done(tx);
    announce("changed");
    return Boolean(mutation && mutation.state === "rejected");
  }

  async function list(userId) {
    const rows = await readAll("outbox", "by_user", userId);
    return rows.sort((a, b) => (a.device_id === b.device_id ? a.seq - b.seq : a.created_at - b.created_at));
  }

  async function get(mutationId) {
    const db = await openDb();
    return req(db.transaction("outbox").objectStore("outbox").get(mutationId));
  }

  async function counts(userId) {
    const rows = await list(userId);
    return {
      pending: rows.filter((m) => m.state === "pending").length,
      rejected: rows.filter((m) => m.state === "rejected").length,
      sent: rows.filter((m) => m.state === "sent").length,
    };
  }

  // --- Photos -------------------------------------------------------------------------------------------

  async function sha256Hex(blob) {
    const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** A JPEG whose long edge is at most 1600 px (the server's own limit): {blob, width, height}. Used
   * by the field app before a photo is queued, and by the suggestion box before a form is sent. */
  async function downscale(file) {
    const bitmap = await createImageBitmap(file);
    const ratio = Math.min(1, PHOTO_LONG_EDGE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * ratio));
    const height = Math.max(1, Math.round(bitmap.height * ratio));
    let blob;
    if (typeof OffscreenCanvas === "function") {
      const canvas = new OffscreenCanvas(width, height);
      const context = canvas.getContext("2d");
      context.fillStyle = "#fff"; // transparent PNG areas become white, not black
      context.fillRect(0, 0, width, height);
      context.drawImage(bitmap, 0, 0, width, height);
      blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.85 });
    } else {
      const canvas = document.createElement("canvas");
      canvas.width = width;
      canvas.height = height;
      const context = canvas.getContext("2d");
      context.fillStyle = "#fff";
      context.fillRect(0, 0, width, height);
      context.drawImage(bitmap, 0, 0, width, height);
      blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
    }
    bitmap.close?.();
    return { blob, width, height };
  }

  /** Downscale (see `downscale`), store it by its SHA-256, return the digest. */
  async function addPhoto(userId, file) {
    const { blob, width, height } = await downscale(file);
    const sha = await sha256Hex(blob);
    const db = await openDb();
    const tx = db.transaction("photos", "readwrite");
    const store = tx.objectStore("photos");
    const known = await req(store.get(sha));
    if (!known) store.put({ sha, userId, blob, width, height, uploaded: false, created_at: Date.now() });
    await done(tx);
    return { sha, width, height, size: blob.size };
  }

  async function photo(sha) {
    const db = await openDb();
    return req(db.transaction("photos").objectStore("photos").get(sha));
  }

  async function setPhotoUploaded(sha, uploaded) {
    const db = await openDb();
    const tx = db.transaction("photos", "readwrite");
    const store = tx.objectStore("photos");
    const row = await req(store.get(sha));
    if (row) {
      row.uploaded = uploaded;
      store.put(row);
    }
    await done(tx);
  }

  // --- Network --------------------------------------------------------------------------------------------

  class SyncHttpError extends Error {
    constructor(status, body) {
      super(`sync request failed with ${status}`);
      this.status = status;
      this.body = body;
    }
  }

  /** fetch, abandoned after `timeoutMs` (a stalled upload must not hold the flush lock forever). */
  async function fetchWithin(path, init, timeoutMs) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      return await fetch(path, { ...init, credentials: "same-origin", cache: "no-store", signal: controller.signal });
    } finally {
      clearTimeout(timer);
    }
  }

  async function call(path, deviceId, init) {
    const headers = { "X-Shanzhi-Device": deviceId, Accept: "application/json", ...(init.headers || {}) };
    const response = await fetchWithin(path, { ...init, headers }, settings.requestTimeoutMs);
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) throw new SyncHttpError(response.status, body);
    if (body === null) throw new SyncHttpError(response.status, null); // unreadable answer: treat as not acknowledged
    return { status: response.status, body };
  }

  async function uploadPhoto(deviceId, sha) {
    const row = await photo(sha);
    if (!row) return false; // not on this phone any more: the server will say photo_missing
    if (row.uploaded) return true;
    const headers = { "X-Shanzhi-Device": deviceId, "Content-Type": "image/jpeg" };
    const response = await fetchWithin(`/sync/photos/${sha}`, { method: "PUT", body: row.blob, headers }, settings.photoTimeoutMs);
    if (!response.ok) throw new SyncHttpError(response.status, await response.json().catch(() => null));
    await setPhotoUploaded(sha, true);
    return true;
  }

  function photosOf(mutation) {
    const shas = new Set(mutation.photos || []);
    const fields = mutation.fields || {};
    for (const sha of fields.photos || []) shas.add(sha);
    for (const appeal of fields.appeals || []) for (const sha of appeal.photos || []) shas.add(sha);
    return [...shas];
  }

  function wire(mutation) {
    const { mutation_id, device_id, seq, entity, entity_id, op, fields, base_version, hlc, recorded_at } = mutation;
    return { mutation_id, device_id, seq, entity, entity_id, op, fields, base_version, hlc, recorded_at };
  }

  /** Apply one batch's answers: committed ones are sent, refused ones need attention, the rest stay. */
  async function applyResults(batch, answer, userId) {
    const byId = new Map((answer.results || []).map((r) => [r.mutation_id, r]));
    const db = await openDb();
    const tx = db.transaction(["outbox", "devices", "photos"], "readwrite");
    const outbox = tx.objectStore("outbox");
    const photos = tx.objectStore("photos");
    const summary = { applied: 0, duplicate: 0, conflict: 0, rejected: 0, photoMissing: [] };
    for (const sent of batch) {
      const result = byId.get(sent.mutation_id);
      if (!result) continue; // no answer for it: keep it pending
      const mutation = await req(outbox.get(sent.mutation_id));
      if (!mutation || mutation.state !== "pending") continue;
      if (result.status === "applied" || result.status === "duplicate" || result.status === "conflict") {
        mutation.state = "sent";
        mutation.sent_at = Date.now();
        mutation.result = result;
        summary[result.status] += 1;
      } else if (result.status === "rejected" && result.code === "photo_missing") {
        mutation.result = result;
        const rows = await Promise.all(photosOf(mutation).map((sha) => req(photos.get(sha))));
        if (rows.every(Boolean)) {
          // Still on this phone: stays pending, the photos are uploaded again before the next push.
          for (const row of rows) photos.put({ ...row, uploaded: false });
          summary.photoMissing.push(mutation);
        } else {
          mutation.state = "rejected"; // lost on this phone too: the worker must remove or retake it
          summary.rejected += 1;
        }
      } else if (result.status === "rejected") {
        mutation.state = "rejected";
        mutation.result = result;
        summary.rejected += 1;
      } else {
        continue;
      }
      outbox.put(mutation);
    }
    if (answer.server_hlc) {
      const devices = tx.objectStore("devices");
      const row = await req(devices.get(userId));
      if (row) {
        row.clock = observe(row.clock, answer.server_hlc);
        devices.put(row);
      }
    }
    await done(tx);
    return summary;
  }

  /** A device that pushes with a credential instead of a session (an elder's phone: its check-in link). */
  async function useCredential(userId, credential) {
    await updateDevice(userId, (row) => {
      row.credential = credential;
    });
  }

  async function pushDevice(userId, deviceId, report, credential = null) {
    for (let round = 0; round < 2; round += 1) {
      const pending = (await readAll("outbox", "by_user", userId))
        .filter((m) => m.device_id === deviceId && m.state === "pending")
        .sort((a, b) => a.seq - b.seq);
      if (!pending.length) return;
      let photoMissing = 0;
      for (let start = 0; start < pending.length; start += BATCH_SIZE) {
        const batch = pending.slice(start, start + BATCH_SIZE);
        for (const mutation of batch) for (const sha of photosOf(mutation)) await uploadPhoto(deviceId, sha);
        const { body } = await call("/sync/push", deviceId, {
          method: "POST",
          headers: { "Content-Type": "application/json", ...(credential ? { "X-Shanzhi-Credential": credential } : {}) },
          body: JSON.stringify({ device_id: deviceId, mutations: batch.map(wire) }),
        });
        const summary = await applyResults(batch, body, userId);
        for (const key of ["applied", "duplicate", "conflict", "rejected"]) report[key] += summary[key];
        photoMissing += summary.photoMissing.length;
        announce("changed");
      }
      if (!photoMissing) return;
    }
  }

  async function pruneSent() {
    const db = await openDb();
    const tx = db.transaction("outbox", "readwrite");
    const store = tx.objectStore("outbox");
    const rows = await req(store.getAll());
    const limit = Date.now() - SENT_KEPT_MS;
    for (const row of rows) if (row.state === "sent" && row.sent_at && row.sent_at < limit) store.delete(row.mutation_id);
    await done(tx);
  }

  async function withLock(work) {
    if (scope.navigator && scope.navigator.locks) return scope.navigator.locks.request(LOCK_NAME, work);
    return work();
  }

  /** Push the signed-in user's pending mutations (only theirs: the session cookie sent with the push
   * is theirs, and another user's device must never be bound to it). */
  async function flush(userId) {
    return withLock(async () => {
      const report = { applied: 0, duplicate: 0, conflict: 0, rejected: 0, error: null, status: null };
      announce("flush-start");
      try {
        const row = await device(userId);
        await pushDevice(row.userId, row.deviceId, report, row.credential || null);
        await pruneSent();
      } catch (error) {
        // Network down, server gone, stalled, 5xx, unreadable answer: everything stays pending.
        report.error = error instanceof SyncHttpError ? error.body?.code || `http_${error.status}` : "network";
        report.status = error instanceof SyncHttpError ? error.status : null;
      } finally {
        announce("flush-end", { report });
      }
      return report;
    });
  }

  // --- Who is signed in on this profile (for Background Sync) ------------------------------------------

  async function setCurrentUser(userId) {
    const db = await openDb();
    const tx = db.transaction("meta", "readwrite");
    if (userId) tx.objectStore("meta").put({ key: "currentUser", userId });
    else tx.objectStore("meta").delete("currentUser");
    await done(tx);
  }

  async function currentUser() {
    const db = await openDb();
    const row = await req(db.transaction("meta").objectStore("meta").get("currentUser"));
    return row ? row.userId : null;
  }

  // --- Pull --------------------------------------------------------------------------------------------

  async function storeRefs(userId, records, reset) {
    const db = await openDb();
    const tx = db.transaction("refs", "readwrite");
    const store = tx.objectStore("refs");
    if (reset) {
      const old = await req(store.index("by_user_entity").getAllKeys(IDBKeyRange.bound([userId], [userId, []])));
      for (const key of old) store.delete(key);
    }
    for (const record of records) {
      const key = [userId, record.entity, String(record.id)];
      const known = await req(store.get(key));
      if (known && (known.version || 0) > (record.version || 0)) continue; // keep the newer one
      if (record.deleted) store.delete(key);
      else store.put({ userId, entity: record.entity, id: String(record.id), version: record.version || 0, data: record.data || {} });
    }
    await done(tx);
  }

  /** Bring the reference data up to date; a reset (no cursor, or the server asked for a resync) replaces it. */
  async function pull(userId) {
    const row = await device(userId);
    let cursor = row.cursor;
    let resyncs = 0;
    let pages = 0;
    for (;;) {
      let answer;
      try {
        const query = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
        answer = (await call(`/sync/pull${query}`, row.deviceId, { method: "GET" })).body;
      } catch (error) {
        if (error instanceof SyncHttpError && error.status === 410 && resyncs === 0) {
          resyncs += 1;
          cursor = null;
          await updateDevice(userId, (d) => {
            d.cursor = null;
          });
          continue;
        }
        throw error;
      }
      // Only the first page of a snapshot clears what we had.
      await storeRefs(userId, answer.records || [], Boolean(answer.reset) && pages === 0);
      pages += 1;
      cursor = answer.cursor;
      await updateDevice(userId, (d) => {
        d.cursor = cursor;
        d.pulledAt = Date.now();
        if (answer.server_hlc) d.clock = observe(d.clock, answer.server_hlc);
      });
      if (!answer.more || pages > 50) break;
    }
    announce("refs-changed");
    return pages;
  }

  async function refs(userId, entity) {
    const rows = await readAll("refs", "by_user_entity", [userId, entity]);
    return rows.map((r) => ({ id: r.id, version: r.version, ...r.data }));
  }

  async function ref(userId, entity, id) {
    const db = await openDb();
    const row = await req(db.transaction("refs").objectStore("refs").get([userId, entity, String(id)]));
    return row ? { id: row.id, version: row.version, ...row.data } : null;
  }

  // --- Storage and Background Sync ---------------------------------------------------------------------

  async function persist() {
    if (!scope.navigator?.storage?.persist) return "unsupported";
    if (await scope.navigator.storage.persisted()) return "granted";
    return (await scope.navigator.storage.persist()) ? "granted" : "refused";
  }

  async function requestBackgroundSync() {
    try {
      const registration = await scope.navigator.serviceWorker?.ready;
      if (registration && registration.sync) await registration.sync.register(SYNC_TAG);
      return Boolean(registration && registration.sync);
    } catch (error) {
      return false;
    }
  }

  /** After sign-out: drop the downloaded reference data (it holds residents' names and phones), the pull
   * cursors (the next sign-in downloads afresh) and who is signed in. The outbox itself stays: nothing
   * unsent is lost; it is sent after its user signs in again. */
  async function forgetReferences() {
    const db = await openDb();
    const tx = db.transaction(["refs", "devices", "meta"], "readwrite");
    tx.objectStore("refs").clear();
    tx.objectStore("meta").delete("currentUser"); // nobody is signed in: Background Sync pushes nothing
    const devices = tx.objectStore("devices");
    for (const row of await req(devices.getAll())) devices.put({ ...row, cursor: null, pulledAt: null });
    await done(tx);
  }

  scope.ShanzhiOutbox = {
    downscale,
    useCredential,
    settings,
    setCurrentUser,
    currentUser,
    forgetReferences,
    SYNC_TAG,
    openDb,
    device,
    enqueue,
    resubmit,
    discard,
    list,
    get,
    counts,
    addPhoto,
    photo,
    flush,
    pull,
    refs,
    ref,
    persist,
    requestBackgroundSync,
    packHlc,
    parseHlc,
    tick,
    observe,
    localIso,
    channel,
    SyncHttpError,
  };
})(self);
