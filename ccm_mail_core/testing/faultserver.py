"""A TLS server on loopback that answers every HTTP request with one scripted fault and counts
what arrived: the conformance kit's own misbehaving provider.

Real sockets, real TLS (certificates from ``trustme``): a transport meets the faults exactly as it
would meet them from a provider or a proxy — a connection reset in the TLS handshake, a reset after
the whole request was read, an answer that never comes, a body that is not HTTP.

The server counts connections and complete requests, so a test can tell a transport that retried
after an unknown outcome from one that did not. It quotes the credentials it received back in the
bodies it is told to (``echo``), as a careless provider might, so a transport that copies the
provider's text into its errors unfiltered is caught leaking them.
"""

from __future__ import annotations

import base64
import functools
import re
import select
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    import trustme

#: what the server does once a connection is accepted (and, except ``reset_in_handshake``, the
#: TLS handshake done and the whole request read)
Action = Literal["reset_in_handshake", "reset_after_request", "hang", "respond", "garbage"]

#: header names whose values are credentials
_SECRET_HEADERS = {
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-access-token",
    "ocp-apim-subscription-key",
}
_SECRET_NAME = re.compile(r"(?i)(^|[-_])(key|token|secret|password|signature|sig)$")
#: the longest a handler waits for a client that neither sends nor closes
_IDLE_CAP = 30.0


@dataclass(frozen=True, slots=True)
class RawRequest:
    """One complete request as it arrived: request line, headers in order, body (de-chunked)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def credentials(self) -> set[str]:
        """Every credential this request carried: secret-looking header values (also the token
        alone, without ``Bearer``; a Basic password decoded) and secret-looking query values."""
        found: set[str] = set()
        for name, value in self.headers:
            if name.lower() in _SECRET_HEADERS or _SECRET_NAME.search(name):
                found.add(value)
                scheme, _, credential = value.partition(" ")
                if credential:
                    found.add(credential.strip())
                    if scheme.lower() == "basic":
                        try:
                            user_pass = base64.b64decode(credential.strip()).decode()
                        except ValueError:
                            continue
                        found.update({user_pass, user_pass.partition(":")[2]})
        for name, value in parse_qsl(urlsplit(self.target).query):
            if _SECRET_NAME.search(name):
                found.add(value)
        return {v for v in found if len(v) >= 4}


@dataclass(frozen=True, slots=True)
class Behaviour:
    """What the server does with each connection.

    :param action: see :data:`Action`.
    :param status: the status code for ``respond``.
    :param headers: extra response headers for ``respond``.
    :param body: the response body for ``respond``, or the bytes ``garbage`` writes instead of an
        answer; a callable gets the request (to quote it back).
    """

    action: Action
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | Callable[[RawRequest], bytes] = b""


@dataclass
class _Counts:
    connections: int = 0
    requests: list[RawRequest] = field(default_factory=list)


class FaultServer:
    """Serves one :class:`Behaviour` on ``https://127.0.0.1:<port>`` until closed.

    :param certificate: the server's certificate (a trustme ``LeafCert``); one from a CA the client
        does not trust makes every handshake fail.
    """

    def __init__(self, behaviour: Behaviour, certificate: trustme.LeafCert) -> None:
        self.behaviour = behaviour
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certificate.configure_cert(self._context)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._counts = _Counts()
        self._closing = threading.Event()
        self._handlers: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"fault-server-{self.port}", daemon=True)
        self._acceptor.start()

    # -- what arrived ----------------------------------------------------------------------------

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._counts.connections

    @property
    def requests(self) -> list[RawRequest]:
        """Complete requests (headers and the whole body) read so far."""
        with self._lock:
            return list(self._counts.requests)

    def credentials(self) -> set[str]:
        """Every credential that arrived on the wire, for the secret scan."""
        return {c for r in self.requests for c in r.credentials()}

    # -- life cycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self._closing.set()
        self._acceptor.join(10)
        self._listener.close()
        for handler in list(self._handlers):
            handler.join(10)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- serving ---------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        # poll: closing a listening socket does not wake a blocked accept() on every platform
        while not self._closing.is_set():
            try:
                readable, _, _ = select.select([self._listener], [], [], 0.05)
                if not readable:
                    continue
                conn, _ = self._listener.accept()
            except (OSError, ValueError):  # the listener was closed: stop
                return
            with self._lock:
                self._counts.connections += 1
            handler = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._handlers.append(handler)
            handler.start()

    def _serve(self, conn: socket.socket) -> None:
        behaviour = self.behaviour
        conn.settimeout(10)
        if behaviour.action == "reset_in_handshake":
            # wait for the client's first handshake message, so the reset lands inside its
            # handshake (a reset before it even starts races with the client's own set-up)
            try:
                conn.recv(1)
            finally:
                _reset(conn)
            return
        try:
            sock = self._context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):  # the client refused our certificate, or went away
            conn.close()
            return
        try:
            request = _read_request(sock)
            if request is None:
                return
            with self._lock:
                self._counts.requests.append(request)
            if behaviour.action == "reset_after_request":
                _reset(sock)
                return
            if behaviour.action == "hang":
                self._wait_for_close(sock)
                return
            body = behaviour.body(request) if callable(behaviour.body) else behaviour.body
            if behaviour.action == "garbage":
                sock.sendall(body)
            else:
                sock.sendall(_response(behaviour.status, behaviour.headers, body))
            self._finish(sock)
        except OSError:  # the client gave up first: nothing more to do
            pass
        finally:
            sock.close()

    def _wait_for_close(self, sock: ssl.SSLSocket) -> None:
        """Answer nothing until the client closes (its read timeout), the server closes, or the cap."""
        waited = 0.0
        while not self._closing.is_set() and waited < _IDLE_CAP:
            readable, _, _ = select.select([sock], [], [], 0.05)
            waited += 0.05
            if readable:
                try:
                    if not sock.recv(1):
                        return
                except (ssl.SSLError, OSError):
                    return

    def _finish(self, sock: ssl.SSLSocket) -> None:
        """Half-close and let the client read the answer: closing with unread bytes would send a
        reset that can destroy the answer in flight."""
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return
        self._wait_for_close(sock)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (RST) instead of an orderly FIN."""
    # struct linger is two ints on POSIX and two u_shorts on Windows
    linger = struct.pack("HH", 1, 0) if sys.platform == "win32" else struct.pack("ii", 1, 0)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    finally:
        sock.close()


def _read_request(sock: ssl.SSLSocket) -> RawRequest | None:
    """One request: head, then a Content-Length or chunked body. None if the client closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            raise OSError("request head too long")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = tuple((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:] if line))
    probe = RawRequest(method, target, headers, b"")
    if (probe.header("Expect") or "").lower() == "100-continue":
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    reader = _Reader(sock, rest)
    if "chunked" in (probe.header("Transfer-Encoding") or "").lower():
        body = b""
        while True:
            size = int(reader.line().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while reader.line():  # trailers up to the empty line
                    pass
                break
            body += reader.exactly(size)
            reader.line()
    else:
        body = reader.exactly(int(probe.header("Content-Length") or 0))
    return RawRequest(method, target, headers, body)


class _Reader:
    def __init__(self, sock: ssl.SSLSocket, buffered: bytes) -> None:
        self.sock = sock
        self.buffer = buffered

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise OSError("client closed in the middle of the request")
        self.buffer += chunk

    def exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        out, _, self.buffer = self.buffer.partition(b"\r\n")
        return out


_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _response(status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", *(f"{k}: {v}" for k, v in headers)]
    names = {k.lower() for k, _ in headers}
    if "content-length" not in names:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultPKI:
    """The kit's CA (the transport trusts it), a server certificate from it, and one from a CA
    nobody trusts."""

    ca_pem: str
    trusted: trustme.LeafCert
    untrusted: trustme.LeafCert

    def write_ca(self, directory: Path) -> Path:
        path = directory / "ccm-mail-kit-ca.pem"
        path.write_text(self.ca_pem, encoding="ascii")
        return path


@functools.lru_cache(maxsize=1)
def fault_pki() -> FaultPKI:
    """Made once per process: key generation is the slow part of a TLS test."""
    try:
        import trustme
    except ImportError as exc:  # the kit's HTTP faults need it; say how to get it
        raise RuntimeError("the HTTP fault tests need trustme: pip install 'ccm-mail-core[kit]'") from exc
    ca = trustme.CA(organization_name="ccm-mail conformance kit")
    stranger = trustme.CA(organization_name="a CA the transport does not trust")
    return FaultPKI(
        ca.cert_pem.bytes().decode("ascii"),
        ca.issue_cert("127.0.0.1", "localhost"),
        stranger.issue_cert("127.0.0.1", "localhost"),
    )


class RefusingPort:
    """A loopback port where nobody listens: bound (so no other program takes it) but not
    listening, so every connection attempt is refused."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.connections = 0
        self.requests: list[RawRequest] = []

    def credentials(self) -> set[str]:
        return set()

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RefusingPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
