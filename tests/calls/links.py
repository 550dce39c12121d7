"""Links for the call tests that can fail on purpose."""

from __future__ import annotations

import socket
import struct
import threading


class CuttableTcp:
    """A TCP relay in front of the hub whose connections can be cut at once, with a reset (no closing handshake):
    a link that drops, as a rural modem's does, under the signalling socket."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.pairs: list = []
        self.connections = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self.pairs.append((client, upstream))
                self.connections += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)      # the end closed its side: passed on, as a router does
        except OSError:
            pass

    def cut(self) -> None:
        with self._lock:
            pairs, self.pairs = self.pairs, []
        for client, upstream in pairs:
            for s in (client, upstream):
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # a reset
                    s.shutdown(socket.SHUT_RDWR)    # wakes the pump blocked on it (a bare close would wait for it)
                except OSError:
                    pass
                s.close()

    def close(self) -> None:
        self.cut()
        self.sock.close()
