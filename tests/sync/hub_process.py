"""The hub as its own process (`python -m sync.hub ... serve`) on a fixed loopback port: SIGKILLed the way a
power cut or the OOM killer ends it, and started again on the same database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sync.hub.service import Hub, make_hub_engine
from tests.sync.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


class HubProcess:
    """`with HubProcess(url, folder, workers=2).start() as hub:` stops it gracefully at the end (SIGTERM, so
    uvicorn takes its worker processes down with it); kill() is the power cut."""

    def __init__(self, db_url: str, folder: Path, port: int | None = None, *, workers: int = 1,
                 env: dict[str, str] | None = None) -> None:
        self.db = db_url
        self.workers, self.env = workers, dict(os.environ, SPOKE_HUB_LOG_DIR=str(folder / "hub-logs"), **(env or {}))
        self.port = port or free_port()
        self.media = folder / "hub-media"
        self.logs = folder / "hub-logs"
        self.stderr = folder / "hub-stderr.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sync.hub", "--log-dir", str(self.logs), "--db", self.db, *args]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> "HubProcess":
        assert not self.alive, "the hub is already running"
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.stderr, "ab") as err:
            serve = self.command("serve", "--port", str(self.port), "--media-dir", str(self.media),
                                 *(["--workers", str(self.workers)] if self.workers > 1 else []))
            self.proc = subprocess.Popen(serve, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, env=self.env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/v1/health", timeout=1).ok:
                    self.starts += 1
                    return self
            except requests.RequestException:
                time.sleep(0.05)
        self.stop()
        pytest.fail("the hub process did not start:\n" + self.stderr.read_text(errors="replace")[-3000:])

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, open transactions are cut where they stand."""
        assert self.alive, "the hub is not running"
        os.kill(self.proc.pid, signal.SIGKILL)

    def wait_dead(self) -> int:
        return self.proc.wait(10)

    def stop(self) -> None:
        if self.alive:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    def __enter__(self) -> "HubProcess":
        return self

    def __exit__(self, *_exc) -> None:
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def admin(self) -> Hub:
        """The same database from this process (as the hub's console, another worker, would use it)."""
        return Hub(make_hub_engine(self.db), media_dir=self.media)
