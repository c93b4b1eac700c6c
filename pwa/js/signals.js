// 晨曦信号, the helpers' board (/signals): "signal on their behalf" writes through the one outbox
// (outbox.js, op morning_signal.checkin_for), so a building head or volunteer standing in a stairwell with
// no signal can still record that they have seen the elder; it is sent when there is a network, with the
// time it was saved (docs/morning-signal.md). Without this script the form posts as a page (online only).

const Outbox = self.ShanzhiOutbox;
const userId = document.body.dataset.user || "";
const status = document.querySelector("[data-behalf-status]");
const text = (name) => document.querySelector(`[data-behalf-text="${name}"]`)?.textContent.trim() || "";

function show(message, kind = "info") {
  if (!status) return;
  status.textContent = message;
  status.className = `alert alert-${kind}`;
  status.hidden = false;
}

async function ours() {
  return (await Outbox.list(userId)).filter((m) => m.entity === "morning_signal" && m.op === "checkin_for");
}

// Rows already saved on this phone say so (after a reload, or after the board was refreshed).
async function markQueued() {
  const waiting = (await ours()).filter((m) => m.state === "pending");
  for (const m of waiting) {
    const form = document.querySelector(`form[data-signal-behalf][data-elder="${CSS.escape(m.fields.elder_id)}"]`);
    form?.closest("li")?.classList.add("is-queued");
    if (form) form.hidden = true;
  }
  return waiting.length;
}

async function send() {
  if (!(await markQueued())) return;
  if (!navigator.onLine) {
    show(text("queued"));
    return;
  }
  show(text("sending"));
  const report = await Outbox.flush(userId);
  // What the server refused (the elder left the chain, the enrolment ended) is said once and dropped.
  const refused = (await ours()).filter((m) => m.state === "rejected");
  for (const m of refused) await Outbox.discard(m.mutation_id);
  if (refused.length) {
    show(`${text("refused")} ${refused.map((m) => `${m.summary} ${m.result?.message || ""}`).join("；")}`, "error");
  } else if (report.error || (await markQueued())) {
    show(text("queued"));
  } else {
    show(text("sent"), "success");
    // The server announces the signal to every open board (server/live.py); this one also asks at once.
    document.querySelector("#signal-board")?.dispatchEvent(new Event("sse:changed"));
  }
}

async function start() {
  if (!Outbox || !userId) return;
  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-signal-behalf]");
    if (!form) return;
    event.preventDefault();
    const button = form.querySelector("button");
    if (button) button.disabled = true;
    try {
      const name = form.closest("li")?.querySelector(".signal-name strong")?.textContent || "";
      await Outbox.enqueue(userId, [{
        entity: "morning_signal", entity_id: crypto.randomUUID(), op: "checkin_for", base_version: null, summary: name,
        fields: { elder_id: form.dataset.elder, method: form.querySelector("[name=method]")?.value || "in_person", note: null },
      }]);
      show(text("queued"));
      await send();
    } finally {
      if (button) button.disabled = false;
    }
  });
  // The board refreshes itself (live, every 30 s): keep the saved rows marked.
  document.body.addEventListener("htmx:afterSwap", () => markQueued());
  window.addEventListener("online", () => send().catch(() => show(text("queued"))));
  await send();
  document.documentElement.dataset.signalsReady = "true";
}

start().catch((error) => console.error(error));
