"""A loopback TCP proxy in front of the real HBase Thrift server, for fault tests.

It forwards bytes both ways and can, once the server has sent ``cut_after`` bytes in total,
drop every open connection (a dropped connection), call ``on_cut`` (e.g. to stop the real
server), and optionally refuse new connections from then on. Only loopback addresses are used.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable


class ThriftProxy:
    def __init__(self, target_port: int, *, cut_after: int | None = None, stay_down: bool = False,
                 on_cut: Callable[[], None] | None = None) -> None:
        self.on_cut = on_cut
        self.target_port = target_port
        self.cut_after = cut_after
        self.stay_down = stay_down
        self.forwarded = 0
        self.drops = 0
        self.down = False
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._server.close()
        self._drop_all()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:  # the real server is down: so is the proxy
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_server:
                    with self._lock:  # decide and record the cut atomically: it happens once
                        self.forwarded += len(data)
                        cut = self.cut_after is not None and self.forwarded >= self.cut_after
                        if cut:
                            self.cut_after = None
                            self.down = self.stay_down
                            self.drops += 1
                    if cut:
                        if self.on_cut is not None:
                            self.on_cut()
                        self._drop_all()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _drop_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
