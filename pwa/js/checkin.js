// 晨曦信号, the elder's page: the button writes through the one outbox (outbox.js), so a press with no
// network is kept on the phone with the time it was pressed and sent when a signal returns; the push
// carries the page's link as its credential (docs/morning-signal.md, docs/sync.md).

const Outbox = self.ShanzhiOutbox;
const form = document.querySelector("[data-checkin-form]");

async function start() {
  if (!form || !Outbox) return; // no script: the form posts as a page (online only)
  const token = form.dataset.token;
  const owner = `checkin:${token}`;
  const status = document.querySelector("[data-checkin-status]");
  const text = (name) => document.querySelector(`[data-checkin-text="${name}"]`)?.textContent || "";
  await Outbox.useCredential(owner, `checkin_token ${token}`);

  const pending = async () => (await Outbox.list(owner)).filter((m) => m.state === "pending").length;
  const show = (name) => {
    if (status) {
      status.textContent = text(name);
      status.hidden = false;
    }
  };

  async function send() {
    if (!(await pending())) return;
    show("sending");
    const report = await Outbox.flush(owner);
    if (!report.error && !(await pending())) {
      show("sent");
      window.location.reload(); // the server's page now shows today's mark
    } else {
      show("queued");
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await Outbox.enqueue(owner, [{ entity: "morning_signal", entity_id: crypto.randomUUID(), op: "checkin", fields: {}, summary: "" }]);
      document.querySelector(".week-mark:last-child")?.classList.add("is-queued");
      show("queued");
      if (navigator.onLine) await send();
    } finally {
      button.disabled = false;
    }
  });
  window.addEventListener("online", () => send().catch(() => show("queued")));
  if (await pending()) {
    document.querySelector(".week-mark:last-child")?.classList.add("is-queued");
    show("queued");
    if (navigator.onLine) await send();
  }
  document.documentElement.dataset.checkinReady = "true";
}

start().catch((error) => console.error(error));
