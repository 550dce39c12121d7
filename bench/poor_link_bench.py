"""Sync of 1,000 cases through an emulated poor rural link, between two network namespaces on this machine.

The kernel here has no `tc netem`, so the link is built from what works (../shared/PLATFORM.md):
- rate: TBF at 64 kbit/s on both ends of a veth pair (each direction);
- loss: nftables drops 2 % of packets at random, in each namespace's input;
- delay: a small userspace TCP proxy in the spoke's namespace holds each chunk 150 ms in each direction
  (300 ms added to every round trip).
The hub (`spoke-hub serve`, SQLite) runs in one namespace; the spoke's sync runs in the other, through the
proxy. The figure is the sync's time against the link's own limit: application bytes both ways / rate.

Needs root (namespaces, tc, nft); installs Debian's nftables if it is missing. Run on purpose:
    sudo .venv/bin/python bench/poor_link_bench.py [--cases 1000] [--rate-kbit 64] [--delay-ms 300] [--loss-pct 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HUB_NS, SPOKE_NS = "spk-bench-hub", "spk-bench-spoke"
HUB_IP, SPOKE_IP = "10.77.0.1", "10.77.0.2"
HUB_PORT = 8470


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def in_ns(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


def setup_link(rate_kbit: int, loss_pct: int, queue: str = "2s") -> None:
    """The two namespaces and their veth pair, TBF at rate_kbit each way (queue: how long TBF may hold a
    packet), and nftables dropping loss_pct % of what comes in (none at 0)."""
    if loss_pct and shutil.which("nft") is None:
        print("installing nftables (Debian) for packet loss ...", flush=True)
        sh("apt-get", "install", "-y", "-qq", "nftables")
    teardown_link()
    sh("ip", "netns", "add", HUB_NS)
    sh("ip", "netns", "add", SPOKE_NS)
    sh("ip", "link", "add", "veth-bh", "type", "veth", "peer", "name", "veth-bs")
    sh("ip", "link", "set", "veth-bh", "netns", HUB_NS)
    sh("ip", "link", "set", "veth-bs", "netns", SPOKE_NS)
    for ns, dev, ip in ((HUB_NS, "veth-bh", HUB_IP), (SPOKE_NS, "veth-bs", SPOKE_IP)):
        sh(*in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", dev))
        sh(*in_ns(ns, "ip", "link", "set", dev, "up"))
        sh(*in_ns(ns, "ip", "link", "set", "lo", "up"))
        # Offloads would hand TBF 64 KB super-packets; the link then bursts past its rate.
        sh(*in_ns(ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off"), check=False)
        sh(*in_ns(ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf", "rate", f"{rate_kbit}kbit", "burst", "1600",
                  "latency", queue))
        if not loss_pct:
            continue
        sh(*in_ns(ns, "nft", "add table inet lossy"))
        sh(*in_ns(ns, "nft", "add chain inet lossy input { type filter hook input priority 0; policy accept; }"))
        sh(*in_ns(ns, "nft", f"add rule inet lossy input iifname {dev} numgen random mod 100 < {loss_pct} drop"))


def teardown_link() -> None:
    for ns in (HUB_NS, SPOKE_NS):
        sh("ip", "netns", "del", ns, check=False)


class DelayProxy:
    """Forwards TCP through this namespace, holding each chunk `one_way_s` in each direction; counts bytes."""

    def __init__(self, target: tuple[str, int], one_way_s: float) -> None:
        self.target, self.delay = target, one_way_s
        self.up = self.down = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.sock.accept()
            upstream = socket.create_connection(self.target)
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                queue: deque = deque()
                cond = threading.Condition()
                threading.Thread(target=self._read, args=(src, queue, cond, up), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, queue, cond), daemon=True).start()

    def _read(self, src, queue, cond, up: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            with cond:
                queue.append((time.monotonic() + self.delay, data))
                cond.notify()
            if not data:
                return
            if up:
                self.up += len(data)
            else:
                self.down += len(data)

    def _write(self, dst, queue, cond) -> None:
        while True:
            with cond:
                while not queue:
                    cond.wait()
                due, data = queue.popleft()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(data)
            except OSError:
                return


def client(args) -> None:
    """Runs inside the spoke's namespace: seed the cases, enrol through the delay proxy, time one sync."""
    from spoke_client.paths import DataPaths
    from spoke_client.services.auth import FacilityForm
    from spoke_client.services.runtime import open_services
    from spoke_client.services.seed import seed_demo
    from spoke_client.services.sync_local import LocalSync, enroll, sync_once

    proxy = DelayProxy((HUB_IP, HUB_PORT), args.delay_ms / 2000)
    services = open_services(DataPaths(Path(args.work) / "spoke"))
    _f, admin = services.auth.setup(FacilityForm("Bench", "HWC-BENCH", "Sitapur", "UP"), "admin", "Admin", "bench-pass")
    seed_demo(services.store, admin, services.auth.facility().id, args.cases, args.cases)
    enroll(services.store, services.paths, f"http://127.0.0.1:{proxy.port}", args.code, "bench")
    waiting = LocalSync(services.store).pending()
    proxy.up = proxy.down = 0
    t0 = time.monotonic()
    report = sync_once(services.store, services.paths, verify=False)
    seconds = time.monotonic() - t0
    assert report.ok and report.pending == 0, report
    total = proxy.up + proxy.down
    limit = total * 8 / (args.rate_kbit * 1000)
    print(f"{args.cases:,} cases = {waiting:,} changes (a patient, a case and its vitals each) pushed in one round")
    print(f"link: {args.rate_kbit} kbit/s each way, +{args.delay_ms} ms round trip, {args.loss_pct} % loss")
    print(f"bytes: {proxy.up:,} up, {proxy.down:,} down; the link's limit for them: {limit:.1f} s")
    print(f"sync took {seconds:.1f} s = {seconds / limit:.2f} x the link's limit (target at most 1.3)")
    services.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--rate-kbit", type=int, default=64)
    ap.add_argument("--delay-ms", type=int, default=300)
    ap.add_argument("--loss-pct", type=int, default=2)
    ap.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    ap.add_argument("--code", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        return client(args)
    if os.geteuid() != 0:
        sys.exit("This benchmark builds network namespaces: run it as root.")
    work = Path(tempfile.mkdtemp(prefix="spoke-poor-link-"))
    db = f"sqlite:///{work / 'hub.sqlite'}"
    hub_cmd = [sys.executable, "-m", "sync.hub", "--db", db]
    setup_link(args.rate_kbit, args.loss_pct)
    hub = None
    try:
        facility = sh(*hub_cmd, "create-facility", "--name", "Bench", "--hwc-id", "HWC-BENCH").stdout.strip()
        code = sh(*hub_cmd, "enroll-code", "--facility", facility).stdout.strip()
        hub = subprocess.Popen(in_ns(HUB_NS, *hub_cmd, "serve", "--host", HUB_IP, "--port", str(HUB_PORT)),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        for _ in range(100):
            if sh(*in_ns(HUB_NS, "python3", "-c", f"import socket; socket.create_connection(('{HUB_IP}', {HUB_PORT}), 1)"),
                  check=False).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run(in_ns(SPOKE_NS, sys.executable, __file__, "--client", "--work", str(work), "--code", code,
                             "--cases", str(args.cases), "--rate-kbit", str(args.rate_kbit), "--delay-ms",
                             str(args.delay_ms), "--loss-pct", str(args.loss_pct)), check=True, cwd=ROOT)
    finally:
        if hub is not None:
            hub.terminate()
            hub.wait(10)
        teardown_link()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
