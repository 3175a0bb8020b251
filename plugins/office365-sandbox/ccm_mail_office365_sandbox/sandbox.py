"""The :class:`Sandbox` facade: start/stop the servers, seed tenants, apps and mailboxes, inspect
what clients did. This is the API tests and the plugin engineer code against.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

from .entra import Entra
from .faults import Faults
from .graph import Graph
from .hosts import GRAPH_HOSTS, LOGIN_HOSTS
from .proxy import ConnectProxy
from .server import Request, Response, SandboxHTTPServer, serve_in_thread
from .state import (
    DEFAULT_MAX_MESSAGE_SIZE,
    graph_time,
    GUID_RE,
    App,
    Draft,
    Mailbox,
    RequestRecord,
    SandboxState,
    SentMessage,
    Tenant,
    TokenRequest,
    check_cloud,
    new_guid,
)
from .tls import SandboxTLS


class Sandbox:
    """A local Microsoft 365: Entra ID login and Graph mail over real HTTPS on loopback.

    :param state_dir: where the CA, uploaded attachments and (standalone) mailbox files go.
    :param port: HTTPS port for Entra and Graph (0: any free port).
    :param proxy_port: port of the CONNECT proxy (0: any free port).
    :param write_mailbox_files: also write each sent mail as JSON + files under
        ``state_dir/mailboxes/<address>/`` (standalone mode does this).
    """

    def __init__(
        self,
        state_dir: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        proxy_port: int = 0,
        write_mailbox_files: bool = False,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._host, self._port, self._proxy_port = host, port, proxy_port
        self.state = SandboxState(self.state_dir)
        self.state.write_mailbox_files = write_mailbox_files
        self.faults = Faults()
        self._tls: SandboxTLS | None = None
        self._https: SandboxHTTPServer | None = None
        self._proxy: ConnectProxy | None = None
        self._threads: list[threading.Thread] = []
        self._entra = Entra(self.state)
        self._graph = Graph(self.state)

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Sandbox:
        if self._https is not None:
            return self
        self._tls = SandboxTLS(self.state_dir)
        self._https = SandboxHTTPServer(
            (self._host, self._port), self._tls.server_context, self.state, self.faults, self._dispatch
        )
        self._proxy = ConnectProxy((self._host, self._proxy_port), self._https)
        self._threads = [
            serve_in_thread(self._https, "o365-sandbox-https"),
            serve_in_thread(self._proxy, "o365-sandbox-proxy"),
        ]
        return self

    def stop(self) -> None:
        servers = [srv for srv in (self._proxy, self._https) if srv is not None]
        # shut both down at once: each shutdown() waits up to one poll interval
        stoppers = [threading.Thread(target=srv.shutdown) for srv in servers]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        for srv in servers:
            srv.server_close()
        if self._https is not None:
            self._https.close_connections()
        for t in self._threads:
            t.join(timeout=5)
        self._https = self._proxy = None
        self._threads = []

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _dispatch(self, req: Request) -> Response:
        if req.host in LOGIN_HOSTS:
            return self._entra.handle(req)
        if req.host in GRAPH_HOSTS:
            return self._graph.handle(req)
        if self._entra.matches(req):
            return self._entra.handle(req)
        return self._graph.handle(req)

    # --- endpoints -------------------------------------------------------------------------
    def _running(self) -> SandboxHTTPServer:
        if self._https is None:
            raise RuntimeError("sandbox not started: use start() or a with block")
        return self._https

    @property
    def port(self) -> int:
        return int(self._running().server_address[1])

    @property
    def ca_pem(self) -> str:
        """Path of the CA certificate (PEM) clients must trust."""
        self._running()
        assert self._tls is not None
        return self._tls.ca_pem

    @property
    def authority_host(self) -> str:
        """``https://127.0.0.1:PORT``; msal authority is ``f"{authority_host}/{tenant}"``."""
        return f"https://{self._host}:{self.port}"

    @property
    def graph_endpoint(self) -> str:
        """``https://127.0.0.1:PORT``; Graph paths start with ``/v1.0/``."""
        return f"https://{self._host}:{self.port}"

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:PORT``: CONNECT proxy for the real Microsoft host names."""
        self._running()
        assert self._proxy is not None
        return f"http://{self._host}:{self._proxy.server_address[1]}"

    # --- settings --------------------------------------------------------------------------
    @property
    def consent_behaviour(self) -> str:
        """ "accept" | "deny": the admin answers at once (headless); "ask": page with buttons."""
        return self.state.consent_behaviour

    @consent_behaviour.setter
    def consent_behaviour(self, value: str) -> None:
        if value not in ("accept", "deny", "ask"):
            raise ValueError("consent_behaviour must be 'accept', 'deny' or 'ask'")
        self.state.consent_behaviour = value

    @property
    def token_lifetime(self) -> int:
        """``expires_in`` of new access tokens, seconds (Entra: about 3600)."""
        return self.state.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        self.state.token_lifetime = int(seconds)

    @property
    def sent_items_delay(self) -> float:
        """Seconds before a sent message is visible in Sent Items (default 0)."""
        return self.state.sent_items_delay

    @sent_items_delay.setter
    def sent_items_delay(self, seconds: float) -> None:
        self.state.sent_items_delay = float(seconds)

    @property
    def loop_detection(self) -> tuple[int, float] | None:
        """(token requests, seconds) before AADSTS50196 "client request loop"; None: off."""
        return self.state.loop_detection

    @loop_detection.setter
    def loop_detection(self, value: tuple[int, float] | None) -> None:
        self.state.loop_detection = None if value is None else (int(value[0]), float(value[1]))

    @property
    def upload_limit(self) -> tuple[int, float]:
        """(bytes, seconds): request bytes an app may send per mailbox in that window.
        Outlook's limit is 150 MB per 5 minutes; above it Graph answers 429."""
        return self.state.upload_limit

    @upload_limit.setter
    def upload_limit(self, value: tuple[int, float]) -> None:
        self.state.upload_limit = (int(value[0]), float(value[1]))

    # --- seeding ---------------------------------------------------------------------------
    def add_tenant(
        self,
        tenant_id: str | None = None,
        *,
        display_name: str | None = None,
        domains: Iterable[str] = (),
        cloud: str = "global",
    ) -> Tenant:
        """A tenant. ``tenant_id`` is its GUID; a domain name instead creates a tenant with a new
        GUID and that verified domain. Tenants are addressable by GUID or any verified domain."""
        doms = {d.lower() for d in domains}
        if tenant_id is None:
            tenant_id = new_guid()
        elif not GUID_RE.match(tenant_id):
            doms.add(tenant_id.lower())
            tenant_id = new_guid()
        tid = tenant_id.lower()
        name = display_name or (min(doms).split(".")[0].capitalize() if doms else f"Tenant{tid[:8]}")
        tenant = Tenant(tid, name, check_cloud(cloud), doms)
        with self.state.lock:
            if tid in self.state.tenants:
                raise ValueError(f"tenant {tid} exists")
            self.state.tenants[tid] = tenant
        return tenant

    def _tenant(self, ref: str) -> Tenant:
        tenant = self.state.tenant(ref)
        if tenant is None:
            raise KeyError(f"no tenant {ref!r}; add_tenant() first")
        return tenant

    def add_app(
        self,
        tenant_id: str,
        client_id: str | None = None,
        *,
        secret: str | None = None,
        certificate_pem: str | bytes | None = None,
        permissions: Iterable[str] = ("Mail.Send",),
        consented: bool = True,
        secret_expired: bool = False,
        redirect_uris: Iterable[str] = (),
        display_name: str | None = None,
        rbac_roles: Iterable[str] = (),
        rbac_scope: Iterable[str] | None = None,
        secret_end: datetime | None = None,
    ) -> App:
        """An app registration with its service principal in ``tenant_id``.

        :param certificate_pem: the *public* certificate (PEM) for client assertions.
        :param permissions: application permissions configured (Graph names, e.g. "Mail.Send").
        :param consented: whether an admin granted them already.
        :param rbac_roles: roles assigned in Exchange (RBAC for Applications), e.g. {"Mail.Send"},
            valid for the mailboxes in ``rbac_scope`` (None: all); not in the token.
        :param secret_end: the secret's end date in ``passwordCredentials`` (default: two years
            from now, Entra's default for a new secret).
        """
        tenant = self._tenant(tenant_id)
        cid = (client_id or new_guid()).lower()
        pem = certificate_pem.decode("ascii") if isinstance(certificate_pem, bytes) else certificate_pem
        app = App(
            tenant.tenant_id,
            cid,
            display_name or f"{tenant.display_name} O365 Mailversand",
            secret,
            secret_expired,
            pem,
            set(permissions),
            consented,
            list(redirect_uris),
            set(rbac_roles),
            None if rbac_scope is None else {m.lower() for m in rbac_scope},
        )
        if secret:
            start = datetime.now(UTC)
            end = secret_end or start + timedelta(days=730)
            app.password_credentials.append(
                {
                    "customKeyIdentifier": None,
                    "displayName": "ccm-mail",
                    "endDateTime": graph_time(end),
                    "hint": secret[:3],
                    "keyId": new_guid(),
                    "secretText": None,
                    "startDateTime": graph_time(start),
                }
            )
        with self.state.lock:
            self.state.apps[(tenant.tenant_id, cid)] = app
        return app

    def add_mailbox(
        self,
        tenant_id: str,
        address: str,
        *,
        licensed: bool = True,
        send_as: Iterable[str] = (),
        display_name: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        daily_recipient_limit: int = 10_000,
        allowed_apps: Iterable[str] | None = None,
    ) -> Mailbox:
        """A user mailbox; its domain becomes a verified domain of the tenant.

        :param send_as: further addresses the app may use in ``from``/``sender``.
        :param allowed_apps: client ids allowed by RBAC for Applications / an application access
            policy; None (default): every app with the Graph permission.
        """
        tenant = self._tenant(tenant_id)
        addr = address.lower()
        mb = Mailbox(
            tenant.tenant_id,
            addr,
            new_guid(),
            display_name or addr.split("@")[0],
            licensed,
            {a.lower() for a in send_as},
            max_message_size,
            daily_recipient_limit=daily_recipient_limit,
            allowed_apps=None if allowed_apps is None else {c.lower() for c in allowed_apps},
        )
        with self.state.lock:
            self.state.mailboxes[addr] = mb
            tenant.domains.add(addr.split("@", 1)[1])
        return mb

    def mailbox(self, address: str) -> Mailbox:
        with self.state.lock:
            return self.state.mailboxes[address.lower()]

    def app(self, tenant_id: str, client_id: str) -> App:
        app = self.state.app(self._tenant(tenant_id).tenant_id, client_id)
        if app is None:
            raise KeyError(client_id)
        return app

    def set_rate(self, mailbox: str, messages: int = 30, per_seconds: float = 60) -> None:
        """Sending rate of a mailbox; accepted sends above it get 429 with Retry-After."""
        with self.state.lock:
            self.mailbox(mailbox).rate = (int(messages), float(per_seconds))

    # --- inspection ------------------------------------------------------------------------
    def sent_messages(self, mailbox: str | None = None) -> list[SentMessage]:
        """Every message Microsoft accepted and sent (Sent Items or not), oldest first."""
        with self.state.lock:
            return [s for s in self.state.sent if mailbox is None or s.mailbox == mailbox.lower()]

    def wait_for_sent(self, count: int, mailbox: str | None = None, timeout: float = 5.0) -> list[SentMessage]:
        deadline = time.monotonic() + timeout
        while True:
            sent = self.sent_messages(mailbox)
            if len(sent) >= count or time.monotonic() > deadline:
                return sent
            time.sleep(0.02)

    def drafts(self, mailbox: str | None = None) -> list[Draft]:
        with self.state.lock:
            return [d for d in self.state.drafts.values() if mailbox is None or d.mailbox == mailbox.lower()]

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every token endpoint call (no secrets kept)."""
        with self.state.lock:
            return list(self.state.token_requests)

    def token_request_count(self, client_id: str | None = None, *, successful: bool = True) -> int:
        with self.state.lock:
            return sum(
                1
                for t in self.state.token_requests
                if (client_id is None or (t.client_id or "").lower() == client_id.lower())
                and (not successful or t.status == 200)
            )

    @property
    def requests(self) -> list[RequestRecord]:
        """Every HTTP request (Authorization redacted), oldest first."""
        with self.state.lock:
            return list(self.state.requests)

    @property
    def proxy_connects(self) -> list[tuple[str, str]]:
        """Every CONNECT target the proxy was asked for (host, port), allowed or refused."""
        assert self._proxy is not None
        with self._proxy.lock:
            return list(self._proxy.connects)

    def max_concurrency(self, mailbox: str) -> int:
        """Highest number of Graph requests seen in flight at once for ``mailbox``."""
        return self.state.max_concurrency(mailbox)

    def reset_counters(self) -> None:
        """Forget token requests, request log, concurrency peaks and rate windows (not mail)."""
        self.state.reset_counters()
        if self._proxy is not None:
            with self._proxy.lock:
                self._proxy.connects.clear()

    def admin_consent_url(
        self,
        tenant: str,
        client_id: str,
        redirect_uri: str,
        state: str | None = None,
        scope: str = "https://graph.microsoft.com/.default",
    ) -> str:
        params = {"client_id": client_id, "scope": scope, "redirect_uri": redirect_uri}
        if state is not None:
            params["state"] = state
        return f"{self.authority_host}/{tenant}/v2.0/adminconsent?{urlencode(params)}"

    def describe(self) -> dict[str, Any]:
        """Endpoints and CA, as written to ``sandbox.json`` in standalone mode."""
        with self.state.lock:
            tenants = [
                {
                    "tenant_id": t.tenant_id,
                    "display_name": t.display_name,
                    "cloud": t.cloud,
                    "domains": sorted(t.domains),
                }
                for t in self.state.tenants.values()
            ]
            apps = [
                {
                    "tenant_id": a.tenant_id,
                    "client_id": a.client_id,
                    "permissions": sorted(a.permissions),
                    "consented": a.consented,
                    "redirect_uris": a.redirect_uris,
                    "admin_consent_url": (
                        self.admin_consent_url(a.tenant_id, a.client_id, a.redirect_uris[0], state="demo")
                        if a.redirect_uris
                        else None
                    ),
                }
                for a in self.state.apps.values()
            ]
            mailboxes = [
                {"tenant_id": m.tenant_id, "address": m.address, "licensed": m.licensed}
                for m in self.state.mailboxes.values()
            ]
        return {
            "authority_host": self.authority_host,
            "graph_endpoint": self.graph_endpoint,
            "proxy_url": self.proxy_url,
            "ca_pem": self.ca_pem,
            "tenants": tenants,
            "apps": apps,
            "mailboxes": mailboxes,
        }
