"""HTTP/1.1 over TLS: the threaded server both Entra and Graph run on, plus its request model.

Why hand-rolled on :mod:`http.server`: the sandbox must be able to do what real servers do to
clients (drop a connection after processing, stall, stream 150 MB to disk), which a framework
hides. TLS handshakes run in the connection's thread so one slow client cannot block accept().
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from .faults import Fault, Faults
from .hosts import split_host
from .state import RequestRecord, SandboxState

log = logging.getLogger("ccm_mail_office365_sandbox")

#: Bodies we are willing to read and throw away to keep a keep-alive connection in sync.
DRAIN_LIMIT = 200 * 1024 * 1024
_REDACT_QUERY = re.compile(r"(?i)(authtoken|client_secret|client_assertion|code)=[^&]*")


class BodyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class Drop(Exception):
    """Close the connection without an answer."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json; charset=utf-8",
    ) -> Response:
        h = {"Content-Type": content_type}
        h.update(headers or {})
        return cls(status, json.dumps(payload).encode("utf-8"), h)

    @classmethod
    def html(cls, status: int, text: str, headers: dict[str, str] | None = None) -> Response:
        h = {"Content-Type": "text/html; charset=utf-8"}
        h.update(headers or {})
        return cls(status, text.encode("utf-8"), h)


def _read_exactly(rfile: Any, size: int, block: int) -> Iterator[bytes]:
    """``size`` bytes in pieces of at most ``block``; a connection that ends early is dropped."""
    left = size
    while left:
        data = rfile.read(min(block, left))
        if not data:
            raise Drop()
        left -= len(data)
        yield data


class Request:
    """One request: routing data plus a body that is read lazily (it may be 4 MB of upload)."""

    def __init__(self, handler: Handler) -> None:
        self._h = handler
        self.method: str = handler.command
        split = urlsplit(handler.path)
        self.path: str = split.path
        self.raw_query: str = split.query
        self.query: dict[str, str] = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.headers = handler.headers
        self.host_header: str = (handler.headers.get("Host") or "").strip()
        self.host: str = split_host(self.host_header)
        self.via_proxy: bool = handler.via_proxy
        self.request_id: str = str(uuid.uuid4())
        self.fault: Fault | None = None
        self._consumed = False
        #: the body was left unread: the connection cannot be reused
        self.must_close = False
        te = (handler.headers.get("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in te
        cl = handler.headers.get("Content-Length")
        self.content_length: int | None = int(cl) if cl and cl.strip().isdigit() else None
        if not self.chunked and self.content_length is None:
            self.content_length = 0

    @property
    def base_url(self) -> str:
        """``https://<host as the client wrote it>``: URLs we hand out use the client's view."""
        return f"https://{self.host_header}"

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def iter_body(self, block: int = 64 * 1024) -> Iterator[bytes]:
        """The body in pieces; each byte read exactly once."""
        if self._consumed:
            return
        self._consumed = True
        rfile = self._h.rfile
        if self.chunked:
            while True:
                line = rfile.readline(65537)
                if not line:
                    raise Drop()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield from _read_exactly(rfile, size, block)
                rfile.readline(3)
        else:
            yield from _read_exactly(rfile, self.content_length or 0, block)

    def read_body(self, limit: int) -> bytes:
        """The whole body, or :class:`BodyTooLarge` (after draining it) above ``limit`` bytes."""
        if self.content_length is not None and not self.chunked and self.content_length > limit:
            self.drain()
            raise BodyTooLarge(self.content_length)
        parts: list[bytes] = []
        size = 0
        body = self.iter_body()
        for data in body:
            size += len(data)
            if size > limit:
                for more in body:  # keep the connection in sync
                    size += len(more)
                raise BodyTooLarge(size)
            parts.append(data)
        return b"".join(parts)

    def stream_to(self, out: IO[bytes]) -> int:
        n = 0
        for data in self.iter_body():
            out.write(data)
            n += len(data)
        return n

    def drain(self) -> bool:
        """Read and discard the body; False if it is too big to be worth it."""
        if self._consumed:
            return True
        if self.content_length is not None and not self.chunked and self.content_length > DRAIN_LIMIT:
            self._consumed = True
            self.must_close = True
            return False
        for _ in self.iter_body():
            pass
        return True

    @property
    def consumed(self) -> bool:
        return self._consumed


Dispatcher = Callable[[Request], Response]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"  # what Microsoft's front ends call themselves
    sys_version = ""
    timeout = 60
    server: SandboxHTTPServer

    def __init__(self, request: Any, client_address: Any, server: Any, via_proxy: bool = False) -> None:
        self.via_proxy = via_proxy
        super().__init__(request, client_address, server)

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _handle(self) -> None:
        req = Request(self)
        srv = self.server
        try:
            req.fault = srv.faults.take(req.method, req.host, req.path)
            if req.fault is not None and req.fault.kind == "drop_before_response":
                req.drain()
                raise Drop()
            if req.fault is not None and req.fault.kind in ("html", "truncated"):
                resp = not_json_answer(req.fault.kind, req.fault.status, req.fault.retry_after)
            elif req.fault is not None and req.fault.kind == "echo_request":
                req.drain()
                resp = echo_answer(req, req.fault.status)
            else:
                resp = srv.dispatch(req)
            if req.fault is not None and req.fault.kind == "drop_after_processing":
                raise Drop()
            if req.fault is not None and req.fault.kind == "status_after_processing":
                resp.status = req.fault.status or 200
                if req.fault.retry_after:
                    resp.headers["Retry-After"] = req.fault.retry_after
            if req.must_close or (not req.consumed and not req.drain()):
                self.close_connection = True
                resp.headers["Connection"] = "close"
        except Drop:
            srv.record(req, None)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except Exception:  # a sandbox bug must show as 500, like a real server would
            log.exception("sandbox internal error on %s %s", req.method, req.path)
            self.close_connection = True
            resp = Response.json(
                500,
                {"error": {"code": "InternalServerError", "message": "sandbox internal error"}},
                {"Connection": "close"},
            )
        # recorded before answering, so a client that got its answer sees the record
        srv.record(req, resp.status)
        self._send(req, resp)

    def _send(self, req: Request, resp: Response) -> None:
        self.send_response(resp.status)
        headers = dict(resp.headers)
        headers.setdefault("Content-Length", str(len(resp.body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if req.method != "HEAD" and resp.body:
            self.wfile.write(resp.body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), _REDACT_QUERY.sub(r"\1=REDACTED", format % args))

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        self.log_message('"%s" %s %s', self.requestline, str(code), str(size))


_PROXY_PAGE = (
    "<!DOCTYPE html><html><head><title>{status} Bad Gateway</title></head><body>"
    "<h1>Bad Gateway</h1><p>The proxy server received an invalid response from an upstream "
    "server.</p><hr><address>Firmen-Proxy (sandbox)</address></body></html>"
)


def not_json_answer(kind: str, status: int | None, retry_after: str | None) -> Response:
    """What a gateway in front of Microsoft, or a connection cut inside the body, leaves a client
    with: an HTML page, or the first half of a JSON error."""
    headers = {"Retry-After": retry_after} if retry_after else {}
    if kind == "html":
        return Response.html(status or 502, _PROXY_PAGE.format(status=status or 502), headers)
    whole = json.dumps(
        {
            "error": {
                "code": "InternalServerError",
                "message": "An internal server error occurred while processing the request.",
                "innerError": {},
            }
        }
    ).encode()
    headers["Content-Type"] = "application/json; charset=utf-8"
    return Response(status or 500, whole[: len(whole) // 2], headers)


def echo_answer(req: Request, status: int | None) -> Response:
    """A Graph-shaped error that quotes every request header back, credentials and all."""
    quoted = "; ".join(f"{k}: {v}" for k, v in req.headers.items())
    return Response.json(
        status or 400,
        {
            "error": {
                "code": "InvalidRequest",
                "message": f"The request was rejected. It carried {quoted}.",
                "innerError": {"request-id": req.request_id, "date": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())},
            }
        },
        {"request-id": req.request_id},
    )


def reset(sock: socket.socket) -> None:
    """Close with a TCP reset (RST) instead of an orderly FIN."""
    # struct linger is two ints on POSIX and two u_shorts on Windows
    linger = struct.pack("HH", 1, 0) if sys.platform == "win32" else struct.pack("ii", 1, 0)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    finally:
        sock.close()


def redact_headers(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in headers.items():
        if k.lower() in ("authorization", "proxy-authorization", "cookie"):
            scheme = v.split(" ", 1)[0] if " " in v else ""
            out[k] = f"{scheme} REDACTED".strip()
        else:
            out[k] = v
    return out


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        ssl_context: ssl.SSLContext,
        state: SandboxState,
        faults: Faults,
        dispatch: Dispatcher,
    ) -> None:
        self.ssl_context = ssl_context
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()
        self.state = state
        self.faults = faults
        self.dispatch = dispatch
        super().__init__(address, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.handle_tls(request, client_address, via_proxy=False)

    def handle_tls(self, sock: socket.socket, client_address: Any, via_proxy: bool) -> None:
        """TLS handshake in this (the connection's) thread, then serve HTTP on it."""
        if self.faults.take_connection() is not None:  # reset_in_handshake
            # wait for the client's first handshake message, so the reset lands inside its
            # handshake (a reset before it even starts races with the client's own set-up)
            try:
                sock.settimeout(Handler.timeout)
                sock.recv(1)
            except OSError:
                pass
            finally:
                reset(sock)
            return
        try:
            sock.settimeout(Handler.timeout)
            # headers and body go out in separate writes; without NODELAY, Nagle + delayed ACK
            # would add ~40 ms to every answer
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = self.ssl_context.wrap_socket(sock, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake failed from %s: %s", client_address, exc)
            return
        with self._live_lock:
            self._live.add(tls)
        try:
            Handler(tls, client_address, self, via_proxy=via_proxy)
        finally:
            with self._live_lock:
                self._live.discard(tls)
            try:
                tls.close()
            except OSError:
                pass

    def close_connections(self) -> None:
        """End idle keep-alive connections, so stopping leaves no thread waiting on a client."""
        with self._live_lock:
            live = list(self._live)
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def record(self, req: Request, status: int | None) -> None:
        rec = RequestRecord(
            time.time(),
            req.host,
            req.method,
            req.path + ("?" + _REDACT_QUERY.sub(r"\1=REDACTED", req.raw_query) if req.raw_query else ""),
            redact_headers(req.headers),
            status,
            req.via_proxy,
            req.request_id,
        )
        with self.state.lock:
            self.state.requests.append(rec)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection error from %s", client_address, exc_info=True)  # noqa: LOG014 - socketserver calls this inside its except


def serve_in_thread(server: SandboxHTTPServer | Any, name: str) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=name, daemon=True)
    t.start()
    return t
