// The live boards (/boards/…): say when the figures shown are from before the network dropped, and in
// big-screen mode (?screen=1) move on to the next board after a while — only when the next one can load,
// so a lobby TV with no network keeps showing the last figures instead of an error page.

const head = document.querySelector("[data-next-board]");

function markStale() {
  for (const note of document.querySelectorAll("[data-board-stale]")) note.hidden = navigator.onLine;
}

window.addEventListener("online", markStale);
window.addEventListener("offline", markStale);
document.body.addEventListener("htmx:afterSwap", markStale);
// A refresh that fails (no network, server restarting) leaves the board as it was: say how old it is.
document.body.addEventListener("htmx:sendError", () => {
  for (const note of document.querySelectorAll("[data-board-stale]")) note.hidden = false;
});
markStale();

if (head) {
  const seconds = Number(head.dataset.screenSeconds) || 30;
  const next = head.dataset.nextBoard;
  const rotate = async () => {
    try {
      const answer = await fetch(next, { cache: "no-store" });
      if (answer.ok) {
        location.assign(next);
        return;
      }
    } catch (error) {
      // no network: stay on this board and try again later
    }
    setTimeout(rotate, seconds * 1000);
  };
  setTimeout(rotate, seconds * 1000);
}
