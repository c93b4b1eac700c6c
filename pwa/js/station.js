// The recycling station's drop-off form (/recycling/stations/<id>/dropoff): a save writes through the one
// outbox (outbox.js, op recycling.dropoff), so the operator can weigh and save with no network; the drop-off
// is sent when the network is back, with the time it was saved, and applied once (its id is the mutation's
// entity_id). What the server refuses (an unknown card number …) is shown here with its reason: when the form
// is empty it is filled in again to correct and save; when the operator is already typing the next household,
// it stays under "On this phone", marked refused with its reason, to be loaded into the form ("Correct it")
// once the form is free, or discarded. What is being typed is never overwritten. Without this script the form
// posts as a page (online only). docs/boards.md, "recycling"; docs/sync.md.

const Outbox = self.ShanzhiOutbox;
const form = document.querySelector("form[data-station-form]");
const userId = document.body.dataset.user || "";
const status = document.querySelector("[data-station-status]");
const queue = document.querySelector("[data-station-queue]");
const queueList = document.querySelector("[data-station-queue-list]");
const SENT_FLAG = "shanzhi-station-sent";
const text = (name) => document.querySelector(`[data-station-text="${name}"]`)?.textContent.trim() || "";

function show(message, kind = "info") {
  if (!status) return;
  status.textContent = message;
  status.className = `alert alert-${kind} station-status`;
  status.hidden = false;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

const stationId = () => form.dataset.stationId;

async function ours() {
  return (await Outbox.list(userId)).filter(
    (m) => m.entity === "recycling" && m.op === "dropoff" && m.fields?.station_id === stationId() && m.state !== "sent",
  );
}

function categoryName(id) {
  const option = form.querySelector(`option[value="${CSS.escape(id)}"]`);
  return option ? option.textContent.split("·")[0].trim() : "";
}

function summaryOf(fields) {
  const lines = fields.lines.map((line) => `${categoryName(line.category_id)} ${line.kg} kg`).join(", ");
  return `${text("card")} ${fields.card} · ${lines}`;
}

function readForm() {
  const lines = [];
  const count = Number(form.dataset.lines || 0);
  for (let i = 0; i < count; i += 1) {
    const category = form.elements[`category_${i}`]?.value || "";
    const kg = (form.elements[`kg_${i}`]?.value || "").trim();
    if (category || kg) lines.push({ category_id: category, kg });
  }
  return { station_id: stationId(), card: (form.elements.card.value || "").trim(), lines };
}

function fillForm(fields) {
  form.elements.card.value = fields.card || "";
  const count = Number(form.dataset.lines || 0);
  for (let i = 0; i < count; i += 1) {
    const line = fields.lines[i] || { category_id: "", kg: "" };
    if (form.elements[`category_${i}`]) form.elements[`category_${i}`].value = line.category_id;
    if (form.elements[`kg_${i}`]) form.elements[`kg_${i}`].value = line.kg;
  }
}

function clearForm() {
  fillForm({ card: "", lines: [] });
}

function formIsEmpty() {
  const fields = readForm();
  return !fields.card && fields.lines.length === 0;
}

// A refused drop-off back into the form, to be corrected and saved again (as a new drop-off).
async function loadRefused(m) {
  fillForm(m.fields);
  await Outbox.discard(m.mutation_id);
}

function reasons(result) {
  const parts = [result?.message || result?.code || ""];
  for (const message of Object.values(result?.errors || {})) if (!parts.includes(message)) parts.push(message);
  return parts.filter(Boolean).join(" ");
}

// What waits on this phone, and what the server refused, with a way to deal with each.
async function drawQueue() {
  if (!queue || !queueList) return;
  const rows = await ours();
  queueList.replaceChildren();
  for (const m of rows) {
    const item = el("li", { class: "outbox-item", "data-mutation": m.mutation_id });
    const badge = m.state === "rejected" ? "badge badge-danger" : "badge badge-warning";
    item.append(el("p", {}, el("span", { class: badge, text: m.state === "rejected" ? text("rejected") : text("queued") })));
    item.append(el("p", { class: "small", text: m.summary || summaryOf(m.fields) }));
    if (m.state === "rejected") {
      item.append(el("p", { class: "field-error", text: reasons(m.result) }));
      const correct = el("button", { type: "button", class: "btn btn-primary", "data-station-correct": "", text: text("correct") });
      correct.addEventListener("click", async () => {
        if (!formIsEmpty()) {
          // Never over what is being typed: that drop-off is saved (or cleared) first.
          show(text("form_busy"), "error");
          return;
        }
        await loadRefused(m);
        show(`${text("rejected")} ${reasons(m.result)}`, "error");
        await drawQueue();
        form.elements.card.focus();
      });
      const discard = el("button", { type: "button", class: "btn btn-secondary", text: text("discard") });
      discard.addEventListener("click", async () => {
        await Outbox.discard(m.mutation_id);
        await drawQueue();
      });
      item.append(el("p", { class: "field-actions" }, correct, " ", discard));
    }
    queueList.append(item);
  }
  queue.hidden = rows.length === 0;
}

async function send() {
  const waiting = (await ours()).filter((m) => m.state === "pending");
  if (!waiting.length) return drawQueue();
  if (!navigator.onLine) {
    show(text("queued"));
    return drawQueue();
  }
  show(text("sending"));
  const report = await Outbox.flush(userId);
  const after = await ours();
  const refused = after.filter((m) => m.state === "rejected" && waiting.some((w) => w.mutation_id === m.mutation_id));
  if (refused.length && formIsEmpty()) {
    // The one just saved comes back into the form to be corrected; it is saved again as a new drop-off.
    const last = refused[refused.length - 1];
    await loadRefused(last);
    show(`${text("rejected")} ${reasons(last.result)}`, "error");
    status?.focus();
  } else if (refused.length) {
    // The operator is typing the next household: that stays as it is, and focus stays where it is. The
    // refused ones wait in the list below, with their reason and "Correct it".
    show(text("refused_kept"), "error");
  } else if (report.error || after.some((m) => m.state === "pending")) {
    show(text("queued"));
  } else {
    // Recorded: the page shows it among the latest drop-offs.
    sessionStorage.setItem(SENT_FLAG, "1");
    window.location.reload();
    return;
  }
  await drawQueue();
}

async function start() {
  if (!form || !Outbox || !userId) return; // no script or no outbox: the form posts as a page (online only)
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = readForm();
    if (!fields.card) {
      show(text("card_missing"), "error");
      form.elements.card.focus();
      return;
    }
    if (!fields.lines.length) {
      show(text("lines_missing"), "error");
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      // Pressed now: the outbox stamps recorded_at with this moment, whenever it reaches the server.
      await Outbox.enqueue(userId, [{ entity: "recycling", entity_id: crypto.randomUUID(), op: "dropoff", fields, summary: summaryOf(fields) }]);
      clearForm();
      show(text("queued"));
      await drawQueue();
      if (navigator.onLine) await send();
    } finally {
      button.disabled = false;
    }
  });
  window.addEventListener("online", () => send().catch(() => show(text("queued"))));
  if (sessionStorage.getItem(SENT_FLAG)) {
    sessionStorage.removeItem(SENT_FLAG);
    show(text("sent"), "success");
  }
  await drawQueue();
  if (navigator.onLine && (await ours()).some((m) => m.state === "pending")) await send();
  document.documentElement.dataset.stationReady = "true";
}

start().catch((error) => console.error(error));
