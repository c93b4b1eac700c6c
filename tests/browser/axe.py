"""axe-core (installed from npm for the tests only) run inside the page: serious or critical violations fail."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page

AXE_PATH = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = {"serious", "critical"}


def assert_accessible(page: Page) -> None:
    if not AXE_PATH.exists():
        msg = f"{AXE_PATH} is missing: run `make test` (it runs `npm ci --prefix tests/browser`)"
        raise AssertionError(msg)
    # Evaluated through DevTools, so the page's CSP (no inline scripts) stays in force for the app.
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_PATH.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    failing = [v for v in result["violations"] if v.get("impact") in FAILING_IMPACTS]
    report = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in failing
    )
    assert not failing, f"accessibility violations on {page.url}:\n{report}"
