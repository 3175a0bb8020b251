"""Entra plumbing shared by the login endpoints: headers, the AADSTS error body, tenant lookup
per cloud."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from .hosts import LOGIN_HOSTS, cloud_of_login_host
from .server import Request, Response
from .state import GUID_RE, SandboxState, Tenant

TENANT_ALIASES = ("common", "organizations", "consumers")


class EntraCore:
    """Error bodies and tenant lookup, as every Entra endpoint answers them."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def _headers(self, req: Request) -> dict[str, str]:
        h = {
            "Cache-Control": "no-store, no-cache",
            "Pragma": "no-cache",
            "x-ms-request-id": req.request_id,
            "x-ms-ests-server": "2.1.sandbox",
            "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
            "X-Content-Type-Options": "nosniff",
        }
        crid = req.header("client-request-id")
        if crid:
            h["client-request-id"] = crid
        return h

    @staticmethod
    def _correlation(req: Request) -> str:
        crid = req.header("client-request-id") or ""
        return crid if GUID_RE.match(crid) else str(uuid.uuid4())

    def error(
        self, req: Request, status: int, error: str, code: int, text: str, extra_headers: dict[str, str] | None = None
    ) -> Response:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        corr = self._correlation(req)
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {req.request_id} "
            f"Correlation ID: {corr} Timestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": req.request_id,
            "correlation_id": corr,
            "error_uri": f"https://{self._login_host(req)}/error?code={code}",
        }
        headers = self._headers(req)
        headers.update(extra_headers or {})
        return Response.json(status, body, headers)

    def _transient(self, req: Request, status: int, retry_after: str | None) -> Response:
        extra = {"Retry-After": retry_after} if retry_after else {}
        return self.error(
            req, status, "temporarily_unavailable", 90033, "A transient error has occurred. Please try again.", extra
        )

    @staticmethod
    def _login_host(req: Request) -> str:
        return req.host if req.host in LOGIN_HOSTS else "login.microsoftonline.com"

    def _tenant(self, req: Request, ref: str) -> Tenant | None:
        """The tenant, if it exists *in the cloud whose login host the client used*."""
        tenant = self.state.tenant(ref)
        if tenant is None:
            return None
        cloud = cloud_of_login_host(req.host)
        if cloud is not None and cloud.name != tenant.cloud:
            return None
        return tenant

    def _tenant_not_found(self, req: Request, ref: str, error: str = "invalid_request") -> Response:
        return self.error(
            req,
            400,
            error,
            90002,
            f"Tenant '{ref}' not found. Check to make sure you have the correct tenant "
            f"ID and are signing into the correct cloud. Check with your subscription "
            f"administrator, this may happen if there are no active subscriptions for "
            f"the tenant.",
        )
