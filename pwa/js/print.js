// The poster page's print button (the CSP forbids inline handlers). Without JavaScript the button
// stays hidden and the page says to use the browser's own print command.
for (const button of document.querySelectorAll("[data-print]")) {
  button.hidden = false;
  button.addEventListener("click", () => window.print());
}
