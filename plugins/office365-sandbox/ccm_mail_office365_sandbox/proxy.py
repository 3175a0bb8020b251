"""An HTTP CONNECT proxy that makes the real Microsoft host names lead to the sandbox.

A client configured with ``proxies={"https": sb.proxy_url}`` keeps using
``https://login.microsoftonline.com/...`` and ``https://graph.microsoft.com/...``; the proxy
terminates TLS itself (the sandbox CA signs those names) and hands the connection to the sandbox's
HTTP server, which then sees the real name in ``Host``. That is how tests prove the plugin talks to
the right host for each national cloud. Any other host is refused with 403, so a test can never
leak to the internet.
"""

from __future__ import annotations

import logging
import socket
import socketserver
from typing import Any

from .hosts import PROXY_HOSTS
from .server import SandboxHTTPServer

log = logging.getLogger("ccm_mail_office365_sandbox")


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(4096)
            if not data:
                return
            head += data
            if len(head) > 65536:
                return
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or parts[0].upper() != "CONNECT":
            self._refuse(sock, 405, "Method Not Allowed")
            log.debug("proxy refused %r", line)
            return
        host, _, port = parts[1].rpartition(":")
        host = host.strip("[]").lower()
        with self.server.lock:
            self.server.connects.append((host, port))
        if host not in PROXY_HOSTS or port != "443":
            self._refuse(sock, 403, "Forbidden")
            log.debug("proxy refused CONNECT %s:%s", host, port)
            return
        sock.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        self.server.https.handle_tls(sock, self.client_address, via_proxy=True)

    @staticmethod
    def _refuse(sock: socket.socket, status: int, reason: str) -> None:
        sock.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode("ascii"))


class ConnectProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], https: SandboxHTTPServer) -> None:
        import threading

        self.https = https
        self.lock = threading.Lock()
        #: every CONNECT target asked for, allowed or not
        self.connects: list[tuple[str, str]] = []
        super().__init__(address, _ProxyHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("proxy connection error from %s", client_address, exc_info=True)  # noqa: LOG014 - socketserver calls this inside its except
