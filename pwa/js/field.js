// Shanzhi field app: the grid worker's forms and lists. Every form writes through the outbox
// (outbox.js, loaded before this module): build the mutation, store it, say "saved", then flush if
// online. Lists are redrawn from the reference data pulled into IndexedDB, so a page that came from
// the service worker's cache still shows what this phone knows. All texts come from the page.

const Outbox = self.ShanzhiOutbox;
const app = document.getElementById("field-app");
const userId = app?.dataset.worker || "";
const page = app?.dataset.page || "";
const OPEN_STATUSES = new Set(["received", "transferred", "in_progress"]);

// --- Texts and small helpers ------------------------------------------------------------------------

function t(key, params = {}) {
  const node = document.querySelector(`#field-text [data-t="${key}"]`);
  let text = node ? node.textContent.trim() : key;
  for (const [name, value] of Object.entries(params)) text = text.replaceAll(`%(${name})s`, String(value));
  return text;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const formatTime = (iso) => {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(document.documentElement.lang || "zh-CN", {
    timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
};

const categoryLabel = (code) => document.querySelector(`#field-category-labels [data-category="${code}"]`)?.textContent || code;
const fieldLabel = (name) => {
  const key = `field_${name.split(".").pop()}`;
  return document.querySelector(`#field-text [data-t="${key}"]`) ? t(key) : name;
};

function setStatus(message) {
  const node = document.getElementById("sync-status");
  if (node) node.textContent = message;
}

// --- Outbox badge, sync, pull -------------------------------------------------------------------------

async function refreshBadge() {
  if (!userId) return;
  const { pending, rejected } = await Outbox.counts(userId);
  for (const badge of document.querySelectorAll("[data-outbox-badge]")) {
    badge.hidden = pending + rejected === 0;
    badge.classList.toggle("badge-danger", rejected > 0);
    for (const count of badge.querySelectorAll("[data-outbox-count]")) count.textContent = String(pending + rejected);
  }
  return { pending, rejected };
}

async function describeState(report) {
  const { pending, rejected } = (await refreshBadge()) || { pending: 0, rejected: 0 };
  const parts = [];
  if (report?.error === "not_signed_in") parts.push(t("sync_signed_out"));
  else if (report?.error) parts.push(navigator.onLine ? t("sync_failed") : t("sync_offline"));
  else if (!navigator.onLine && pending) parts.push(t("sync_offline"));
  if (pending) parts.push(t("sync_pending", { count: pending }));
  if (rejected) parts.push(t("sync_attention", { count: rejected }));
  if (!parts.length) parts.push(t("sync_done"));
  setStatus(parts.join(" "));
}

let syncing = null;
let retryTimer = null;
let failures = 0;

/** After a failed sync, try again by itself: 5 s, 15 s, 45 s ... at most every 5 minutes. */
function retryLater(report) {
  clearTimeout(retryTimer);
  if (!report?.error || report.error === "not_signed_in") {
    failures = 0;
    return;
  }
  failures += 1;
  const delay = Math.min(5000 * 3 ** (failures - 1), 300000);
  retryTimer = setTimeout(() => {
    if (navigator.onLine) syncNow();
  }, delay);
}

/** Flush the outbox, then pull fresh reference data. Never throws: failures leave the records queued. */
function syncNow() {
  if (syncing) return syncing;
  syncing = (async () => {
    let report = null;
    if (!navigator.onLine) {
      await describeState({ error: "offline" });
      Outbox.requestBackgroundSync();
      return null;
    }
    setStatus(t("syncing"));
    try {
      report = await Outbox.flush(userId);
      if (!report.error) await Outbox.pull(userId).catch(() => null);
    } catch (error) {
      report = { error: "network" };
    }
    if (report?.error) Outbox.requestBackgroundSync();
    retryLater(report);
    await describeState(report);
    await redraw();
    return report;
  })().finally(() => {
    syncing = null;
  });
  return syncing;
}

// --- Reference data: lists drawn from what this phone knows ------------------------------------------

async function conflictsFor() {
  const fromPull = await Outbox.refs(userId, "conflict");
  const known = new Set(fromPull.map((c) => c.mutation_id));
  // A conflict answered to a push shows at once, before the next pull brings its full record.
  const fromPush = (await Outbox.list(userId))
    .filter((m) => m.result?.status === "conflict" && m.result.conflict && !known.has(m.mutation_id))
    .map((m) => ({
      id: m.result.conflict.id, kind: m.result.conflict.kind, fields: m.result.conflict.fields || [],
      applied: m.result.conflict.applied, message: m.result.conflict.message, reference: m.summary,
      recorded_at: new Date(m.sent_at || m.created_at).toISOString(), mine: true,
    }));
  return [...fromPull, ...fromPush].sort((a, b) => String(b.recorded_at).localeCompare(String(a.recorded_at)));
}

function conflictText(conflict) {
  const parts = [];
  if (conflict.kind === "field") parts.push(t("conflict_field", { fields: (conflict.fields || []).map(fieldLabel).join("、") }));
  else parts.push(t("conflict_transition"));
  if (conflict.message) parts.push(conflict.message);
  if (conflict.kind === "field") parts.push(conflict.applied ? t("conflict_applied") : t("conflict_not_applied"));
  parts.push(conflict.resolved_at ? t("conflict_resolved") : t("conflict_open"));
  return parts.join(" ");
}

async function drawConflicts() {
  const list = document.querySelector("[data-conflict-list]");
  if (!list) return;
  const conflicts = await conflictsFor();
  list.replaceChildren(
    ...conflicts.map((c) =>
      el("li", { class: "field-conflict", "data-conflict": c.id },
        el("strong", { text: c.reference || (c.entity_id || "").slice(0, 8) }), " ",
        el("span", { class: `badge ${c.resolved_at ? "badge-success" : "badge-warning"}`, text: c.kind === "field" ? t("state_conflict") : t("state_conflict") }),
        el("br"), el("span", { class: "small", text: conflictText(c) }),
        c.recorded_at ? el("span", { class: "muted small", text: ` · ${formatTime(c.recorded_at)}` }) : null)));
  const empty = document.querySelector("[data-conflict-empty]");
  if (empty) empty.hidden = conflicts.length > 0;
}

const mine = (a) => a.assignee_id === userId || a.created_by_id === userId;

async function appealsWith(statuses) {
  const all = await Outbox.refs(userId, "appeal");
  return all.filter((a) => statuses.has(a.status) && mine(a)).sort((a, b) => String(b.received_at).localeCompare(String(a.received_at)));
}

async function pulled() {
  return Boolean((await Outbox.device(userId)).pulledAt);
}

async function drawHome() {
  const device = await Outbox.device(userId);
  const refsStatus = document.querySelector("[data-refs-status]");
  if (refsStatus) refsStatus.textContent = device.pulledAt ? t("refs_updated", { time: formatTime(new Date(device.pulledAt).toISOString()) }) : t("refs_never");
  if (device.pulledAt) {
    const list = document.querySelector("[data-open-cases]");
    const cases = (await appealsWith(OPEN_STATUSES)).filter((a) => a.assignee_id === userId || a.created_by_id === userId);
    if (list) {
      list.replaceChildren(
        ...cases.map((a) => {
          const due = a.first_response_at ? a.resolve_due_at : a.response_due_at;
          const late = due && new Date(due) < new Date();
          return el("li", {},
            el("a", { href: `/field/appeals/edit?id=${a.id}`, text: a.reference }), ` ${a.status_label || ""} · ${categoryLabel(a.category)}`,
            el("br"),
            el("span", { class: late ? "badge badge-danger" : "small", text: late ? t("overdue", { time: formatTime(due) }) : t("due", { time: formatTime(due) }) }));
        }));
      const empty = document.querySelector("[data-open-cases-empty]");
      if (empty) empty.hidden = cases.length > 0;
    }
  }
  // Visits recorded on this phone today that the server may not have yet.
  const pending = document.querySelector("[data-visits-pending]");
  if (pending) {
    const today = new Date().toDateString();
    const visits = (await Outbox.list(userId)).filter((m) => m.entity === "visit" && m.state !== "sent" && new Date(m.created_at).toDateString() === today);
    pending.replaceChildren(
      ...visits.map((m) => el("li", {}, `${formatTime(new Date(m.created_at).toISOString())} ${m.fields.subject_name} `,
        el("span", { class: m.state === "rejected" ? "badge badge-danger" : "badge badge-warning", text: t(`state_${m.state}`) }))));
    const empty = document.querySelector("[data-visits-empty]");
    if (empty && visits.length) empty.hidden = true;
  }
  await drawConflicts();
}

// --- Enterprises and policies (政策上门): the one matching rule of docs/policies.md, on the phone ---------------

const FACET_KEYS = [["industries", "industry"], ["sizes", "size"], ["stages", "stage"], ["place_kinds", "place_kind"]];
const todayInShanghai = () => new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });

/** An enterprise matches a policy when every facet the policy states includes the enterprise's value. */
function policyMatches(policy, enterprise) {
  return FACET_KEYS.every(([facet, key]) => !(policy[facet] || []).length || policy[facet].includes(enterprise[key]));
}

function policyLive(policy, today) {
  return policy.status === "published" && (policy.long_term || !policy.deadline || policy.deadline >= today);
}

async function livePolicies() {
  const today = todayInShanghai();
  return (await Outbox.refs(userId, "policy")).filter((p) => policyLive(p, today))
    .sort((a, b) => String(a.deadline || "9999").localeCompare(String(b.deadline || "9999")) || a.title.localeCompare(b.title));
}

async function drawWorkList() {
  const list = document.querySelector("[data-work-list]");
  if (!list || !(await pulled())) return;
  const live = await livePolicies();
  const items = [];
  for (const e of await Outbox.refs(userId, "enterprise")) {
    if (!(e.is_key || e.stage === "new")) continue;
    const pushed = new Set(e.pushed_policy_ids || []);
    const unpushed = live.filter((p) => !pushed.has(p.id) && policyMatches(p, e)).length;
    if (e.last_visited_at && !unpushed) continue;
    items.push({ e, unpushed });
  }
  // As the server orders them: never visited first, then the longest unvisited, ties by id.
  const key = (item) => `${item.e.last_visited_at ? "1" : "0"}${item.e.last_visited_at || ""}`;
  items.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.e.id < b.e.id ? -1 : a.e.id > b.e.id ? 1 : 0));
  const shown = Number(list.dataset.shown || 10);
  list.replaceChildren(...items.slice(0, shown).map(({ e, unpushed }) => {
    const notes = [!e.last_visited_at ? t("never_visited") : null, unpushed ? t("unpushed", { n: unpushed }) : null].filter(Boolean);
    return el("li", {}, el("a", { href: `/field/visit?enterprise=${e.id}`, text: e.name }),
      e.is_key ? el("span", { class: "badge", text: ` ${t("key_enterprise")}` }) : null,
      e.stage === "new" ? el("span", { class: "badge", text: ` ${t("newly_registered")}` }) : null,
      el("br"), el("span", { class: "small", text: notes.join(" · ") }));
  }));
  const empty = document.querySelector("[data-work-empty]");
  if (empty) empty.hidden = items.length > 0;
  const more = document.querySelector("[data-work-more]");
  if (more) {
    more.hidden = items.length <= shown;
    more.textContent = t("work_more", { n: Math.max(0, items.length - shown) });
  }
}

async function drawEnterpriseChoices() {
  const select = document.querySelector("[data-enterprise-select]");
  if (!select || !(await pulled())) return;
  const known = (await Outbox.refs(userId, "enterprise")).sort((a, b) => a.name.localeCompare(b.name, "zh-CN"));
  if (!known.length) return;
  const current = select.value || new URLSearchParams(location.search).get("enterprise") || "";
  select.replaceChildren(select.options[0].cloneNode(true), ...known.map((e) => el("option", { value: e.id, text: e.name })));
  if (known.some((e) => e.id === current)) select.value = current;
  select.dispatchEvent(new Event("change"));
}

function policyChoice(policy, pushed) {
  const due = policy.long_term || !policy.deadline ? t("long_term") : t("deadline_on", { date: policy.deadline });
  return el("li", {}, el("label", { class: "check" },
    el("input", { type: "checkbox", name: "policy_id", value: policy.id }),
    el("span", {}, policy.title, el("br"),
      el("span", { class: "muted small", text: `${policy.category_label || ""} · ${due}${pushed ? ` · ${t("already_pushed")}` : ""}` }))));
}

async function drawPushChoices(form) {
  const section = form.querySelector("[data-push-section]");
  const id = value(form, "enterprise_id");
  section.hidden = !id;
  if (!id) return;
  const enterprise = await Outbox.ref(userId, "enterprise", id);
  const live = await livePolicies();
  const ticked = new Set([...form.querySelectorAll('input[name="policy_id"]:checked')].map((i) => i.value));
  const pushed = new Set(enterprise?.pushed_policy_ids || []);
  const matched = enterprise ? live.filter((p) => policyMatches(p, enterprise)) : [];
  const others = enterprise ? live.filter((p) => !policyMatches(p, enterprise)) : [];
  // Not yet pushed first: those are the ones to explain today.
  matched.sort((a, b) => Number(pushed.has(a.id)) - Number(pushed.has(b.id)));
  form.querySelector("[data-push-list]").replaceChildren(...matched.map((p) => policyChoice(p, pushed.has(p.id))));
  form.querySelector("[data-push-other-list]").replaceChildren(...others.map((p) => policyChoice(p, pushed.has(p.id))));
  for (const box of form.querySelectorAll('input[name="policy_id"]')) box.checked = ticked.has(box.value);
  form.querySelector("[data-push-empty]").hidden = !enterprise || matched.length > 0;
  form.querySelector("[data-push-unknown]").hidden = Boolean(enterprise);
}

async function drawResolvedChoices() {
  if (!(await pulled())) return;
  const resolved = await appealsWith(new Set(["resolved"]));
  const list = document.querySelector("[data-resolved-list]");
  if (list) {
    const checked = new Set([...list.querySelectorAll('input[name="confirm"]:checked')].map((i) => i.value));
    list.replaceChildren(
      ...resolved.map((a) => {
        const select = el("select", { id: `evaluation-${a.id}`, name: `evaluation-${a.id}` });
        for (const option of document.getElementById("evaluation-options")?.content.querySelectorAll("option") || []) select.append(option.cloneNode(true));
        return el("li", { "data-appeal-id": a.id, "data-version": a.version },
          el("label", { class: "check" }, el("input", { type: "checkbox", name: "confirm", value: a.id, checked: checked.has(a.id) }), ` ${a.reference} · ${(a.description || "").slice(0, 40)}`),
          el("label", { for: `evaluation-${a.id}`, text: document.getElementById("evaluation-label")?.textContent || "" }), select);
      }));
    const empty = document.querySelector("[data-resolved-empty]");
    if (empty) empty.hidden = resolved.length > 0;
  }
  const select = document.querySelector("[data-resolved-select]");
  if (select) fillCaseSelect(select, resolved);
}

function fillCaseSelect(select, cases) {
  const current = select.value;
  const first = select.options[0].cloneNode(true);
  select.replaceChildren(first, ...cases.map((a) => el("option", { value: a.id, "data-version": a.version, text: `${a.reference} · ${(a.description || "").slice(0, 30)}` })));
  if (cases.some((a) => a.id === current)) select.value = current;
}

async function redraw() {
  await refreshBadge();
  if (page === "home") {
    await drawHome();
    await drawWorkList();
  }
  if (page === "visit") await drawEnterpriseChoices();
  if (page === "outcomes") await drawOutcomeChoices();
  if (page === "signals") await drawElderChoices();
  if (page === "visit" || page === "return-visit") await drawResolvedChoices();
  if (page === "appeal-edit") await drawEditChoices();
  if (page === "outbox") await drawOutbox();
}

// --- Forms: errors and status ---------------------------------------------------------------------------

function formStatus(form, message, kind) {
  const node = form.querySelector("[data-form-status]");
  node.replaceChildren();
  node.className = `field-form-status${kind ? ` alert alert-${kind}` : ""}`;
  if (!message) return node;
  node.append(el("p", { text: message }));
  return node;
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) {
    slot.hidden = true;
    slot.textContent = "";
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const describedBy = (input.getAttribute("aria-describedby") || "").split(" ").filter((id) => !id.endsWith("-error"));
    if (describedBy.length) input.setAttribute("aria-describedby", describedBy.join(" "));
    else input.removeAttribute("aria-describedby");
  }
}

/** Put one server error next to its field: "description" or "appeals.2.description" (the third appeal). */
function showFieldError(form, key, message, prefixOf) {
  const match = /^appeals\.(\d+)\.(.+)$/.exec(key);
  const id = match ? `${prefixOf(Number(match[1]))}${match[2]}` : key;
  const slot = form.querySelector(`[data-error-for="${CSS.escape(id)}"]`);
  if (!slot) return false;
  slot.textContent = message;
  slot.hidden = false;
  const input = form.querySelector(`#${CSS.escape(id)}`);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    const describedBy = new Set((input.getAttribute("aria-describedby") || "").split(" ").filter(Boolean));
    describedBy.add(slot.id);
    input.setAttribute("aria-describedby", [...describedBy].join(" "));
  }
  return true;
}

function showRejection(form, mutation, prefixOf = () => "") {
  const result = mutation.result || {};
  const node = formStatus(form, t("saved_rejected"), "error");
  node.append(el("p", { text: result.message || result.code || "" }));
  for (const [key, message] of Object.entries(result.errors || {})) {
    if (!showFieldError(form, key, message, prefixOf)) node.append(el("p", { class: "small", text: `${fieldLabel(key)}: ${message}` }));
  }
  node.focus();
}

const value = (form, name) => (form.elements.namedItem(name)?.value ?? "").toString();
const optional = (text) => (text.trim() ? text : null);

async function photosFrom(input) {
  const shas = [];
  const max = Number(input?.dataset.max || 3);
  for (const file of [...(input?.files || [])].slice(0, max)) shas.push((await Outbox.addPhoto(userId, file)).sha);
  return shas;
}

function appealFields(form, prefix, id) {
  return {
    id,
    submitter_kind: form.querySelector(`input[name="${prefix}submitter_kind"]:checked`)?.value || "",
    category: value(form, `${prefix}category`),
    description: value(form, `${prefix}description`),
    place_id: null,
    location_detail: optional(value(form, `${prefix}location_detail`)),
    submitter_name: optional(value(form, `${prefix}submitter_name`)),
    submitter_phone: optional(value(form, `${prefix}submitter_phone`)),
    photos: [],
  };
}

/**
 * The write path shared by every form. `build()` returns drafts keyed by what they are ("visit",
 * "rv:<appeal id>", ...). A draft stored before and refused by the server is corrected in place
 * (same mutation); one stored and accepted is not stored again; new ones are stored together.
 */
function handleForm(form, build, { prefixOf = () => "", onSaved = () => {} } = {}) {
  const stored = new Map(); // draft key -> mutation id, until the form is saved cleanly
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!form.checkValidity()) {
      form.reportValidity();
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const drafts = await build();
      if (!drafts.length) {
        formStatus(form, t("nothing_changed"), "info");
        return;
      }
      const fresh = [];
      for (const draft of drafts) {
        const known = stored.get(draft.key) && (await Outbox.get(stored.get(draft.key)));
        if (known && known.state === "rejected") await Outbox.resubmit(known.mutation_id, draft.fields, draft.photos);
        else if (!known) fresh.push(draft);
      }
      const saved = await Outbox.enqueue(userId, fresh);
      fresh.forEach((draft, i) => stored.set(draft.key, saved[i].mutation_id));
      formStatus(form, t("saved_pending"), "success");
      await refreshBadge();
      if (navigator.onLine) await syncNow();
      const now = await Promise.all([...stored.values()].map((id) => Outbox.get(id)));
      const rejected = now.find((m) => m && m.state === "rejected");
      if (rejected) {
        showRejection(form, rejected, prefixOf); // keep what was typed: the worker corrects and saves again
        return;
      }
      const conflict = now.find((m) => m && m.result?.status === "conflict");
      const synced = now.every((m) => m && m.state === "sent");
      formStatus(form, conflict ? t("saved_conflict") : synced ? t("saved_synced") : t("saved_pending"), conflict ? "warning" : "success");
      stored.clear();
      form.reset();
      onSaved();
      form.querySelector("[data-form-status]").focus();
    } catch (error) {
      console.error(error);
      formStatus(form, t("sync_failed"), "error");
    } finally {
      button.disabled = false;
    }
  });
}

// --- The visit form -------------------------------------------------------------------------------------

function cloneTemplate(id, n) {
  const fragment = document.getElementById(id).content.cloneNode(true);
  for (const node of fragment.querySelectorAll("*")) {
    for (const attr of ["id", "for", "name", "aria-describedby", "data-error-for"]) {
      const current = node.getAttribute(attr);
      if (current && current.includes("__N__")) node.setAttribute(attr, current.replaceAll("__N__", String(n)));
    }
  }
  return fragment;
}

function filterCategories(scope) {
  const kind = scope.querySelector("[data-audience-choice]:checked")?.value;
  const select = scope.querySelector("[data-category-select]");
  if (!select) return;
  for (const option of select.options) {
    if (!option.dataset.audience) continue;
    option.hidden = option.dataset.audience !== kind;
    option.disabled = option.hidden;
  }
  if (select.selectedOptions[0]?.disabled) select.value = "";
}

function wireAppealFields(scope) {
  for (const radio of scope.querySelectorAll("[data-audience-choice]")) radio.addEventListener("change", () => filterCategories(scope));
  filterCategories(scope);
  const photos = scope.querySelector("[data-photo-input]");
  photos?.addEventListener("change", () => {
    const max = Number(photos.dataset.max || 3);
    photos.setCustomValidity(photos.files.length > max ? t("too_many_photos", { count: max }) : "");
  });
}

function setupVisit(form) {
  let counter = 0;
  const list = form.querySelector("[data-appeal-list]");
  const renumber = () =>
    [...list.querySelectorAll("[data-appeal-item]")].forEach((item, i) => {
      item.querySelector("[data-appeal-title]").textContent = t("appeal_n", { n: i + 1 });
    });
  const addAppeal = () => {
    counter += 1;
    const fragment = cloneTemplate("appeal-template", counter);
    const item = fragment.querySelector("[data-appeal-item]");
    item.dataset.prefix = `a${counter}-`;
    item.dataset.id = crypto.randomUUID();
    item.querySelector("[data-remove-appeal]").addEventListener("click", () => {
      item.remove();
      renumber();
    });
    list.append(fragment);
    wireAppealFields(item);
    renumber();
    item.querySelector("select, textarea, input")?.focus();
  };
  form.querySelector("[data-add-appeal]").addEventListener("click", addAppeal);

  let lines = 0;
  const policies = form.querySelector("[data-policy-list]");
  form.querySelector("[data-add-policy]").addEventListener("click", () => {
    lines += 1;
    const fragment = cloneTemplate("policy-template", lines);
    const line = fragment.querySelector("li");
    line.querySelector("[data-remove-line]").addEventListener("click", () => line.remove());
    policies.append(fragment);
    line.querySelector("input").focus();
  });

  const returnSection = form.querySelector("[data-return-section]");
  const showReturn = () => {
    returnSection.hidden = form.querySelector("[data-purpose]:checked")?.value !== "return";
  };
  for (const radio of form.querySelectorAll("[data-purpose]")) radio.addEventListener("change", showReturn);
  showReturn();

  const enterpriseSelect = form.querySelector("[data-enterprise-select]");
  const subjectInput = form.querySelector("#subject_name");
  let filledName = "";
  enterpriseSelect.addEventListener("change", () => {
    const option = enterpriseSelect.selectedOptions[0];
    if (enterpriseSelect.value) {
      // The registry's name, unless the worker typed another one.
      if (!subjectInput.value.trim() || subjectInput.value === filledName) subjectInput.value = filledName = option.textContent;
      const enterpriseKind = form.querySelector('input[name="subject_kind"][value="enterprise"]');
      if (enterpriseKind) enterpriseKind.checked = true;
    }
    drawPushChoices(form);
  });
  // A policy the enterprise does not match is pushed only with a reason (checked before the form is saved).
  const reasonInput = form.querySelector("#push_reason");
  const checkReason = () => {
    const offMatch = form.querySelector('[data-push-other-list] input[name="policy_id"]:checked');
    reasonInput.setCustomValidity(offMatch && !reasonInput.value.trim() ? t("reason_needed") : "");
  };
  form.addEventListener("change", checkReason);
  reasonInput.addEventListener("input", checkReason);
  const wanted = new URLSearchParams(location.search).get("enterprise");
  if (wanted && [...enterpriseSelect.options].some((o) => o.value === wanted)) enterpriseSelect.value = wanted;
  enterpriseSelect.dispatchEvent(new Event("change"));

  let visitId = crypto.randomUUID();
  const items = () => [...list.querySelectorAll("[data-appeal-item]")];
  handleForm(
    form,
    async () => {
      const placeId = value(form, "place_id") || null;
      const appeals = [];
      for (const item of items()) {
        const fields = appealFields(form, item.dataset.prefix, item.dataset.id);
        fields.place_id = placeId;
        fields.photos = await photosFrom(item.querySelector("[data-photo-input]"));
        appeals.push(fields);
      }
      const policyTexts = [...policies.querySelectorAll("input")].map((i) => i.value.trim()).filter(Boolean);
      const subject = value(form, "subject_name");
      const enterpriseId = value(form, "enterprise_id") || null;
      const policyIds = enterpriseId ? [...form.querySelectorAll('input[name="policy_id"]:checked')].map((i) => i.value) : [];
      const offMatch = [...form.querySelectorAll('[data-push-other-list] input[name="policy_id"]:checked')].map((i) => i.value);
      const reason = value(form, "push_reason").trim();
      const drafts = [{
        key: "visit", entity: "visit", entity_id: visitId, op: "create", base_version: null,
        summary: subject.trim(),
        fields: {
          subject_kind: form.querySelector('input[name="subject_kind"]:checked')?.value || "",
          subject_name: subject,
          place_id: placeId,
          purpose: form.querySelector("[data-purpose]:checked")?.value || "first",
          notes: optional(value(form, "notes")),
          policies: policyTexts,
          enterprise_id: enterpriseId,
          policy_ids: policyIds,
          policy_reasons: Object.fromEntries(offMatch.map((id) => [id, reason])),
          appeals,
        },
      }];
      if (!returnSection.hidden) {
        for (const box of form.querySelectorAll('input[name="confirm"]:checked')) {
          const row = box.closest("[data-appeal-id]");
          const ref = await Outbox.ref(userId, "appeal", box.value);
          drafts.push({
            key: `rv:${box.value}`, entity: "appeal", entity_id: box.value, op: "return_visit",
            base_version: ref?.version ?? (Number(row?.dataset.version || 0) || null),
            summary: ref?.reference || "",
            fields: { method: "in_person", evaluation: value(form, `evaluation-${box.value}`), note: null, visit_id: visitId },
          });
        }
      }
      return drafts;
    },
    {
      prefixOf: (index) => items()[index]?.dataset.prefix || "",
      onSaved: () => {
        visitId = crypto.randomUUID();
        list.replaceChildren();
        policies.replaceChildren();
        enterpriseSelect.dispatchEvent(new Event("change"));
        showReturn();
      },
    },
  );
}

// --- Outcomes of policy pushes ---------------------------------------------------------------------------------

async function drawOutcomeChoices() {
  const select = document.querySelector("[data-push-select]");
  if (!select || !(await pulled())) return;
  const pushes = await Outbox.refs(userId, "policy_push");
  if (!pushes.length) return;
  const names = new Map((await Outbox.refs(userId, "enterprise")).map((e) => [e.id, e.name]));
  const titles = new Map((await Outbox.refs(userId, "policy")).map((p) => [p.id, p.title]));
  // Those without an outcome first, newest first.
  pushes.sort((a, b) => Number(a.outcome !== "pushed") - Number(b.outcome !== "pushed") || String(b.pushed_at).localeCompare(String(a.pushed_at)));
  const current = select.value;
  select.replaceChildren(select.options[0].cloneNode(true), ...pushes.filter((x) => names.has(x.enterprise_id)).map((x) => el("option", {
    value: x.id, "data-version": x.version,
    text: `${names.get(x.enterprise_id)} · ${(titles.get(x.policy_id) || "").slice(0, 30)} · ${String(x.pushed_at || "").slice(0, 10)}`,
  })));
  if (pushes.some((x) => x.id === current)) select.value = current;
}

function setupOutcome(form) {
  const amount = form.querySelector("[data-amount-field]");
  const showAmount = () => {
    amount.hidden = form.querySelector("[data-outcome]:checked")?.value !== "granted";
    form.querySelector("#amount_yuan").required = !amount.hidden;
  };
  for (const radio of form.querySelectorAll("[data-outcome]")) radio.addEventListener("change", showAmount);
  showAmount();
  handleForm(form, async () => {
    const pushId = value(form, "push_id");
    const ref = await Outbox.ref(userId, "policy_push", pushId);
    const option = form.querySelector(`[data-push-select] option[value="${CSS.escape(pushId)}"]`);
    const outcome = form.querySelector("[data-outcome]:checked")?.value || "applied";
    const yuan = value(form, "amount_yuan").replace(/[,，\s]/g, "");
    return [{
      key: `po:${pushId}`, entity: "policy_push", entity_id: pushId, op: "outcome",
      base_version: ref?.version ?? (Number(option?.dataset.version || 0) || null),
      summary: option?.textContent.split(" · ").slice(0, 2).join(" · ") || "",
      fields: { outcome, amount_yuan: outcome === "granted" && /^\d+$/.test(yuan) ? Number(yuan) : null, note: optional(value(form, "note")) },
    }];
  }, { onSaved: showAmount });
}

// --- 晨曦信号: a signal on an elder's behalf ---------------------------------------------------------------------

async function drawElderChoices() {
  const select = document.querySelector("[data-elder-select]");
  if (!select || !(await pulled())) return;
  const elders = (await Outbox.refs(userId, "elder")).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (!elders.length) return;
  const current = select.value;
  select.replaceChildren(select.options[0].cloneNode(true), ...elders.map((e) => el("option", {
    value: e.id, text: `${e.name} · ${e.address || ""}${e.last_signal_at ? ` · ${t("last_signal", { time: formatTime(e.last_signal_at) })}` : ""}`,
  })));
  if (elders.some((e) => e.id === current)) select.value = current;
}

function setupSignals(form) {
  handleForm(form, async () => {
    const elderId = value(form, "elder_id");
    const option = form.querySelector(`[data-elder-select] option[value="${CSS.escape(elderId)}"]`);
    return [{
      key: `ms:${elderId}`, entity: "morning_signal", entity_id: crypto.randomUUID(), op: "checkin_for", base_version: null,
      summary: option?.textContent.split(" · ")[0] || "",
      fields: { elder_id: elderId, method: form.querySelector('input[name="method"]:checked')?.value || "in_person", note: optional(value(form, "note")) },
    }];
  });
}

// --- Quick appeal, return visit, edit ------------------------------------------------------------------------

function setupAppeal(form) {
  wireAppealFields(form);
  let appealId = crypto.randomUUID();
  handleForm(
    form,
    async () => {
      const fields = appealFields(form, "", appealId);
      fields.place_id = value(form, "place_id") || null;
      fields.photos = await photosFrom(form.querySelector("[data-photo-input]"));
      return [{ key: "appeal", entity: "appeal", entity_id: appealId, op: "create", base_version: null, fields, summary: categoryLabel(fields.category) }];
    },
    { onSaved: () => { appealId = crypto.randomUUID(); filterCategories(form); } },
  );
}

function setupReturnVisit(form) {
  handleForm(form, async () => {
    const appealId = value(form, "appeal_id");
    const ref = await Outbox.ref(userId, "appeal", appealId);
    const option = form.querySelector(`[data-resolved-select] option[value="${CSS.escape(appealId)}"]`);
    return [{
      key: `rv:${appealId}`, entity: "appeal", entity_id: appealId, op: "return_visit",
      base_version: ref?.version ?? (Number(option?.dataset.version || 0) || null),
      summary: ref?.reference || option?.textContent.split(" · ")[0] || "",
      fields: {
        method: form.querySelector('input[name="method"]:checked')?.value || "in_person",
        evaluation: form.querySelector('input[name="evaluation"]:checked')?.value || null,
        note: optional(value(form, "note")),
        note_public: form.querySelector('input[name="note_visibility"]:checked')?.value === "public",
      },
    }];
  });
}

const EDITABLE = ["description", "location_detail", "submitter_name", "submitter_phone"];
let editBase = null; // the case as this phone last saw it: {id, version, reference, ...fields}

async function drawEditChoices() {
  const select = document.querySelector("[data-open-select]");
  if (!select) return;
  if (await pulled()) {
    const cases = await appealsWith(OPEN_STATUSES);
    const current = select.value;
    const first = select.options[0].cloneNode(true);
    select.replaceChildren(first, ...cases.map((a) => el("option", { value: a.id, text: `${a.reference} · ${(a.description || "").slice(0, 30)}` })));
    if (cases.some((a) => a.id === current)) select.value = current;
  }
}

async function loadEditCase(form, appealId) {
  const ref = appealId ? await Outbox.ref(userId, "appeal", appealId) : null;
  const option = [...form.querySelector("[data-open-select]").options].find((o) => o.value === appealId);
  editBase = ref || (option && option.dataset.version
    ? { id: appealId, version: Number(option.dataset.version), reference: option.textContent.split(" · ")[0],
        ...Object.fromEntries(EDITABLE.map((name) => [name, option.dataset[name] || null])) }
    : null);
  for (const name of EDITABLE) form.elements.namedItem(name).value = editBase?.[name] || "";
  if (appealId && !editBase) formStatus(form, t("unknown_case"), "warning");
}

async function setupAppealEdit(form) {
  const select = form.querySelector("[data-open-select]");
  await drawEditChoices();
  const wanted = new URLSearchParams(window.location.search).get("id");
  if (wanted) {
    if (![...select.options].some((o) => o.value === wanted)) select.append(el("option", { value: wanted, text: wanted.slice(0, 8) }));
    select.value = wanted;
  }
  await loadEditCase(form, select.value);
  select.addEventListener("change", () => loadEditCase(form, select.value));
  handleForm(form, async () => {
    if (!editBase) return [];
    const fields = {};
    for (const name of EDITABLE) {
      const now = value(form, name);
      if (now !== (editBase[name] || "")) fields[name] = name === "description" ? now : optional(now);
    }
    if (!Object.keys(fields).length) return [];
    return [{ key: `edit:${editBase.id}`, entity: "appeal", entity_id: editBase.id, op: "update", base_version: editBase.version, fields, summary: editBase.reference }];
  }, { onSaved: () => loadEditCase(form, select.value) });
}

// --- The outbox page -------------------------------------------------------------------------------------------

function summaryOf(m) {
  const op = t(`op_${m.entity}_${m.op}`);
  const bits = [op];
  if (m.summary) bits.push(m.summary);
  if (m.entity === "visit" && m.fields.appeals?.length) bits.push(t("with_appeals", { count: m.fields.appeals.length }));
  const photos = (m.fields.photos || []).length + (m.fields.appeals || []).reduce((n, a) => n + (a.photos || []).length, 0);
  if (photos) bits.push(t("photos", { count: photos }));
  return bits.join(" · ");
}

function stateOf(m) {
  if (m.state === "sent") return m.result?.status === "conflict" ? "conflict" : m.result?.status === "duplicate" ? "duplicate" : "sent";
  return m.state;
}

const STATE_BADGE = { pending: "badge badge-warning", sent: "badge badge-success", duplicate: "badge badge-success", conflict: "badge badge-warning", rejected: "badge badge-danger" };

/** The correction form of a refused mutation: its texts (and each appeal's), with the server's errors. */
function editorFor(m, item) {
  const form = el("form", { class: "form field-fix", novalidate: true, "data-fix": m.mutation_id });
  const errors = m.result?.errors || {};
  const add = (key, current, multiline) => {
    const id = `fix-${m.mutation_id.slice(0, 8)}-${key.replaceAll(".", "-")}`;
    const input = multiline
      ? el("textarea", { id, name: key, rows: 3, maxlength: 2000 })
      : el("input", { id, name: key, type: "text", maxlength: 255, autocomplete: "off" });
    input.value = current || "";
    const error = errors[key];
    if (error) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", `${id}-error`);
    }
    const prefix = /^appeals\.(\d+)\./.exec(key);
    const label = prefix ? `${t("appeal_n", { n: Number(prefix[1]) + 1 })} · ${fieldLabel(key)}` : fieldLabel(key);
    form.append(el("div", { class: `field${error ? " has-error" : ""}` }, el("label", { for: id, text: label }), input,
      error ? el("span", { class: "field-error", id: `${id}-error`, text: error }) : null));
  };
  const addPhotoRemoval = (key, count) => {
    if (!count) return;
    const id = `fix-${m.mutation_id.slice(0, 8)}-${key.replaceAll(".", "-")}`;
    const error = errors[key];
    form.append(el("div", { class: `field${error ? " has-error" : ""}` },
      el("label", { class: "check" }, el("input", { type: "checkbox", id, name: key, "data-remove-photos": true }), ` ${t("field_photos")} (${t("photos", { count })})`),
      error ? el("span", { class: "field-error", text: error }) : null));
  };
  const f = m.fields;
  if (m.entity === "visit") {
    add("subject_name", f.subject_name, false);
    add("notes", f.notes, true);
    (f.appeals || []).forEach((a, i) => {
      for (const name of ["description", "location_detail", "submitter_name", "submitter_phone"]) add(`appeals.${i}.${name}`, a[name], name === "description");
      addPhotoRemoval(`appeals.${i}.photos`, (a.photos || []).length);
    });
  } else if (m.entity === "appeal" && m.op === "create") {
    for (const name of ["description", "location_detail", "submitter_name", "submitter_phone"]) add(name, f[name], name === "description");
    addPhotoRemoval("photos", (f.photos || []).length);
  } else if (m.op === "update") {
    for (const name of Object.keys(f)) add(name, f[name], name === "description");
  } else if (m.op === "return_visit") {
    add("note", f.note, true);
  }
  const cancel = el("button", { type: "button", class: "btn btn-secondary", text: t("cancel") });
  cancel.addEventListener("click", () => {
    form.remove();
    item.querySelector("[data-fix-open]")?.focus();
  });
  form.append(el("div", { class: "form-actions" }, el("button", { type: "submit", class: "btn btn-primary", text: t("resend") }), " ", cancel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = structuredClone(m.fields);
    for (const input of form.querySelectorAll("input, textarea")) {
      const path = input.name.split(".");
      let target = fields;
      while (path.length > 1) target = target[path.shift()];
      const name = path[0];
      if (input.dataset.removePhotos !== undefined) {
        if (input.checked) target[name] = [];
      } else {
        target[name] = name === "description" || name === "subject_name" ? input.value : optional(input.value);
      }
    }
    await Outbox.resubmit(m.mutation_id, fields);
    await syncNow();
    document.querySelector(`[data-mutation="${m.mutation_id}"] [data-state]`)?.focus();
  });
  return form;
}

async function drawOutbox() {
  const list = document.querySelector("[data-outbox-list]");
  if (!list) return;
  const rows = (await Outbox.list(userId)).reverse();
  list.replaceChildren(
    ...rows.map((m) => {
      const state = stateOf(m);
      const item = el("li", { class: `outbox-item outbox-${state}`, "data-mutation": m.mutation_id, "data-state-name": m.state, "data-result": m.result?.status || null },
        el("p", { class: "outbox-head" },
          el("span", { class: STATE_BADGE[state], "data-state": true, tabindex: "-1", text: t(`state_${state}`) }), " ",
          el("strong", { text: summaryOf(m) })),
        el("p", { class: "muted small", text: `#${m.seq} · ${formatTime(new Date(m.created_at).toISOString())}` }));
      if (state === "rejected" && m.result) {
        const reasons = el("div", { class: "alert alert-error" }, el("p", { text: m.result.message || m.result.code }));
        for (const [key, message] of Object.entries(m.result.errors || {})) reasons.append(el("p", { class: "small", text: `${fieldLabel(key)}: ${message}` }));
        item.append(reasons);
        const fix = el("button", { type: "button", class: "btn btn-primary", "data-fix-open": true, text: t("fix") });
        const drop = el("button", { type: "button", class: "btn btn-secondary", text: t("discard") });
        fix.addEventListener("click", () => {
          if (item.querySelector("[data-fix]")) return;
          const editor = editorFor(m, item);
          item.append(editor);
          editor.querySelector("[aria-invalid], input, textarea")?.focus();
        });
        drop.addEventListener("click", async () => {
          if (!window.confirm(t("discard_confirm"))) return;
          await Outbox.discard(m.mutation_id);
          await redraw();
          await describeState(null);
        });
        item.append(el("p", { class: "field-actions" }, fix, " ", drop));
      } else if (state === "conflict" && m.result?.conflict) {
        item.append(el("p", { class: "small", text: conflictText(m.result.conflict) }));
      } else if (state === "pending" && m.result?.message) {
        item.append(el("p", { class: "small muted", text: m.result.message }));
      }
      return item;
    }));
  const empty = document.querySelector("[data-outbox-empty]");
  if (empty) empty.hidden = rows.length > 0;
  await drawConflicts();
}

async function showPersistence() {
  const state = await Outbox.persist().catch(() => "unsupported");
  const node = document.querySelector("[data-persist-status]");
  if (!node) return;
  node.textContent = t(`persist_${state}`);
  node.className = state === "granted" ? "" : "alert alert-warning";
  node.dataset.persist = state;
}

// --- Start ---------------------------------------------------------------------------------------------------------

async function cacheFieldPages() {
  if (!("serviceWorker" in navigator) || !app?.dataset.fieldPages) return;
  const urls = JSON.parse(app.dataset.fieldPages);
  const registration = await navigator.serviceWorker.ready;
  registration.active?.postMessage({ type: "CACHE_PAGES", urls });
}

async function start() {
  if (!app || !Outbox || !userId) return;
  for (const button of document.querySelectorAll("[data-sync-now]")) button.addEventListener("click", () => syncNow());
  window.addEventListener("online", () => syncNow());
  window.addEventListener("offline", () => describeState({ error: "offline" }));
  Outbox.channel?.addEventListener("message", (event) => {
    if (event.data?.type === "changed" || event.data?.type === "refs-changed") redraw();
  });
  const form = document.querySelector("[data-field-form]");
  if (form?.dataset.fieldForm === "visit") setupVisit(form);
  if (form?.dataset.fieldForm === "appeal") setupAppeal(form);
  if (form?.dataset.fieldForm === "return-visit") setupReturnVisit(form);
  if (form?.dataset.fieldForm === "outcomes") setupOutcome(form);
  if (form?.dataset.fieldForm === "signals") setupSignals(form);
  if (form?.dataset.fieldForm === "appeal-edit") await setupAppealEdit(form);
  await Outbox.device(userId);
  await Outbox.setCurrentUser(userId);
  await redraw();
  await describeState(null);
  if (page === "outbox") await showPersistence();
  else Outbox.persist().catch(() => null);
  cacheFieldPages().catch(() => null);
  await syncNow();
  document.documentElement.dataset.fieldReady = "true";
}

start().catch((error) => console.error("field app failed to start", error));
