"""Waiting for something the page can tell us, without `page.wait_for_function`.

Playwright's `wait_for_function` re-creates the predicate with `new Function` while it polls, and our
Content-Security-Policy (`script-src 'self'`, no 'unsafe-eval') refuses that on a later poll: the wait
then fails with an EvalError although the page is right. `page.evaluate` runs through the DevTools
protocol, which the policy does not restrict, so we poll with it from the test instead.
"""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Error, Page


def wait_until(page: Page, expression: str, arg: Any = None, *, timeout: float = 20_000, interval: float = 100) -> Any:
    """Evaluate `expression` (a JS function, sync or async, taking `arg`) until it returns a truthy value."""
    deadline = time.monotonic() + timeout / 1000
    last_error: Error | None = None
    while True:
        try:
            value = page.evaluate(expression, arg)
            if value:
                return value
            last_error = None
        except Error as error:  # a navigation replaced the document between two polls: try again
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error.message})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f} ms waiting for {expression!r}{detail}")
        page.wait_for_timeout(interval)


SW_STATE = """async () => {
    const r = await navigator.serviceWorker.getRegistration("/");
    const state = (w) => (w ? w.state : null);
    return JSON.stringify({
        controller: Boolean(navigator.serviceWorker.controller),
        registration: Boolean(r),
        installing: state(r && r.installing), waiting: state(r && r.waiting), active: state(r && r.active),
        caches: await caches.keys(), url: location.href,
    });
}"""


def wait_controlled(page: Page, *, timeout: float = 20_000) -> None:
    """Wait until the service worker controls the page; say what state it was in if it never does."""
    try:
        wait_until(page, "() => navigator.serviceWorker.controller !== null", timeout=timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; service worker: {page.evaluate(SW_STATE)}") from None
