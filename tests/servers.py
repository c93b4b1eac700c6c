"""A real `shanzhi serve` process for tests that need one (browser tests, several clients at once)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server.settings import Settings

_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_ports = iter(range(21000 + 500 * _WORKER, 21500 + 500 * _WORKER))


def free_port() -> int:
    """A free port from this pytest worker's own range: a server stopped by a test keeps its port
    until it starts again, and no other worker's server can take it meanwhile."""
    for port in _ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port left in this worker's range")


@dataclass
class LiveServer:
    """`shanzhi serve` in its own process, so a test can stop it (no network) and start it again."""

    settings: Settings
    log_path: Path
    port: int = field(default_factory=free_port)
    release: str = "1"
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # more environment (SHANZHI_REDIS_URL for several processes)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **os.environ,
            "SHANZHI_DATABASE_URL": self.settings.database_url,
            "SHANZHI_VAR_DIR": str(self.settings.var_dir),
            "SHANZHI_SECRET_KEY": self.settings.secret_key,
            "SHANZHI_RELEASE": self.release,
            # Tests reset the database under the running server: figures must not outlive a reset.
            "SHANZHI_PUBLIC_CACHE_SECONDS": "0",
            "SHANZHI_SCAN_FLUSH_SECONDS": "0.2",  # guide opens reach the database at once (tests read them there)
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"the server did not answer /healthz within 30 s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


