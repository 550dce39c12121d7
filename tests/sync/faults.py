"""A TCP proxy between spoke and hub that breaks the link the way rural networks do, on loopback."""

from __future__ import annotations

import socket
import threading


class FaultyProxy:
    """Forwards connections to the hub. Modes, for the next connections:
    - "pass": a clean link;
    - "lose_answer": the request reaches the hub, the hub answers, the answer is dropped (the hub committed);
    - "cut_request": half the request gets through, then the link drops (the hub sees a truncated body);
    - "budget": requests pass until `budget` request bytes in all have gone through, then the request that
      crosses it is cut there (a link that drops in the middle of an upload).
    `forwarded` counts the request bytes that reached the hub."""

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
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(client, self.mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str) -> None:
        upstream = socket.create_connection(self.target, timeout=30)
        client.settimeout(30)
        try:
            request = _read_http_message(client)
            if mode == "cut_request":
                upstream.sendall(request[: len(request) // 2])
                return
            if mode == "budget":
                with self._lock:
                    allowed = max(0, min(len(request), self.budget - self.forwarded))
                    self.forwarded += allowed
                if allowed < len(request):
                    upstream.sendall(request[:allowed])
                    return
            else:
                with self._lock:
                    self.forwarded += len(request)
            upstream.sendall(request)
            response = _read_http_message(upstream)
            if mode == "lose_answer":
                return
            client.sendall(response)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


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
