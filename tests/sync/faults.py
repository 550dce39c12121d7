"""A TCP proxy between spoke and hub that breaks the link the way rural networks do, on loopback."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

KILLS = ("kill_mid_body", "kill_after_answer")


@dataclass
class Exchange:
    """One request through the proxy, what reached the hub of it, and the answer the spoke got (b"" if none)."""

    path: str
    mode: str
    request: bytes
    forwarded: int          # bytes of the request that reached the hub
    answer: bytes           # what the spoke was given
    answer_started: bool    # the hub had begun to answer (so it had finished the request, and committed)


class FaultyProxy:
    """Forwards connections to the hub. Modes, for the next connections:
    - "pass": a clean link;
    - "lose_answer": the request reaches the hub, the hub answers, the answer is dropped (the hub committed);
    - "cut_request": half the request gets through, then the link drops (the hub sees a truncated body);
    - "budget": requests pass until `budget` request bytes in all have gone through, then the request that
      crosses it is cut there (a link that drops in the middle of an upload).
    `forwarded` counts the request bytes that reached the hub.

    And, armed once with `arm()` for the next matching request (the others pass), faults that end in the hub
    process being killed by `on_fault` (a SIGKILL): "kill_mid_body" trickles the request body in and kills the
    hub once half of it has arrived, with the rest still to come; "kill_after_answer" lets the whole request
    through, waits until the hub's answer starts coming (it committed before answering), kills the hub and
    drops the answer. Every request is kept in `exchanges`."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.mode = "pass"
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.budget = 0
        self.forwarded = 0
        self.exchanges: list[Exchange] = []
        self.trickle_s = 0.05           # between pieces of a trickled body
        self._armed: tuple[str, str, int, Callable[[], object]] | None = None
        self.fired: list[Exchange] = []  # the requests an armed fault hit
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, mode: str, on_fault: Callable[[], object], path: str = "/v1/push", after: int = 0) -> None:
        """The fault hits the request after the next `after` ones to `path` (those pass), once."""
        assert mode in KILLS, mode
        with self._lock:
            self._armed = (mode, path, after, on_fault)

    def disarm(self) -> None:
        with self._lock:
            self._armed = None

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client, self.mode), daemon=True).start()

    def _take_armed(self, path: str) -> tuple[str, Callable[[], object]] | None:
        with self._lock:
            if self._armed is None or not path.startswith(self._armed[1]):
                return None
            mode, prefix, after, on_fault = self._armed
            if after > 0:
                self._armed = (mode, prefix, after - 1, on_fault)
                return None
            self._armed = None
            return mode, on_fault

    def _serve(self, client: socket.socket, mode: str) -> None:
        client.settimeout(30)
        upstream = None
        exchange = None
        try:
            request = _read_http_message(client)
            path = request.split(b" ", 2)[1].decode("latin-1") if request.count(b" ") >= 2 else ""
            armed = self._take_armed(path)
            if armed is not None:
                mode = armed[0]
            exchange = Exchange(path, mode, request, 0, b"", False)
            with self._lock:
                self.exchanges.append(exchange)
                if armed is not None:
                    self.fired.append(exchange)
            upstream = socket.create_connection(self.target, timeout=30)
            if mode == "kill_mid_body":
                self._kill_mid_body(upstream, request, exchange, armed[1])
                return
            if mode == "cut_request":
                upstream.sendall(request[: len(request) // 2])
                exchange.forwarded = len(request) // 2
                return
            if mode == "budget":
                with self._lock:
                    allowed = max(0, min(len(request), self.budget - self.forwarded))
                    self.forwarded += allowed
                if allowed < len(request):
                    upstream.sendall(request[:allowed])
                    exchange.forwarded = allowed
                    return
            else:
                with self._lock:
                    self.forwarded += len(request)
            upstream.sendall(request)
            exchange.forwarded = len(request)
            if mode == "kill_after_answer":
                first = upstream.recv(1)       # blocks until the hub has done the work and starts its answer
                exchange.answer_started = bool(first)
                armed[1]()
                return                          # the answer is dropped
            response = _read_http_message(upstream)
            exchange.answer_started = bool(response)
            if mode == "lose_answer":
                return
            client.sendall(response)
            exchange.answer = response
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is None:
                    continue
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def _kill_mid_body(self, upstream: socket.socket, request: bytes, exchange: Exchange,
                       on_fault: Callable[[], object]) -> None:
        head, sep, body = request.partition(b"\r\n\r\n")
        upstream.sendall(head + sep)
        exchange.forwarded = len(head + sep)
        half, piece = len(body) // 2, max(1, len(body) // 8)
        sent = 0
        while sent < half:
            upstream.sendall(body[sent:min(sent + piece, half)])
            sent = min(sent + piece, half)
            exchange.forwarded = len(head + sep) + sent
            time.sleep(self.trickle_s)
        time.sleep(self.trickle_s)              # the hub has read what came, and waits for the rest
        on_fault()
        try:                                    # the rest keeps trickling towards a hub that is gone
            while sent < len(body):
                upstream.sendall(body[sent:sent + piece])
                sent += piece
                time.sleep(self.trickle_s / 5)
        except OSError:
            pass
        exchange.answer_started = bool(_recv_some(upstream))

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def _recv_some(sock: socket.socket) -> bytes:
    try:
        sock.settimeout(2)
        return sock.recv(1)
    except OSError:
        return b""


def _read_http_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message with Content-Length (what requests and uvicorn send here)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def message_json(message: bytes) -> dict:
    """The JSON body of an HTTP message that went through the proxy (gzip undone)."""
    head, _, body = message.partition(b"\r\n\r\n")
    if b"content-encoding: gzip" in head.lower():
        body = gzip.decompress(body)
    return json.loads(body)


def change_ids(push_request: bytes) -> list[str]:
    """The change ids in a push request's batch."""
    return [c["change_id"] for c in message_json(push_request)["changes"]]
