"""The settings dialog of the seed in the browser (*Kommunikation – E-Mail-Adressen*): mail
accounts, purposes, templates, the confirmation dialog of a manual send, the journal.

Server-rendered pages (Jinja templates and one stylesheet and one script, all shipped in this
package: the machines have no internet), German first and English by the browser's language or
the switch. Each page reads and changes everything through the JSON API (:mod:`.client`), exactly
as AbSys does. The pages work without script; the script adds click-to-insert placeholders, the
live template preview and waiting for admin consent.

Every answer carries a Content-Security-Policy without inline script or style, ``X-Frame-Options:
DENY`` and no referrer; every form carries the session's CSRF token.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, g, redirect, request, url_for
from werkzeug.wrappers import Response

from .. import __version__
from . import common
from .client import Api

HERE = Path(__file__).parent

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_ui(api_app: Flask) -> Flask:
    ui = Flask(
        "ccm_mail_server.ui",
        template_folder=str(HERE / "templates"),
        static_folder=str(HERE / "static"),
        static_url_path="/ui/static",
    )
    ui.extensions["ccm_mail_api"] = Api(api_app)
    # an upload on the send page becomes one API request: the API's limit holds here too
    ui.config["MAX_CONTENT_LENGTH"] = api_app.config.get("MAX_CONTENT_LENGTH")
    ui.jinja_env.autoescape = True
    ui.jinja_env.globals.update(
        t=common.t,
        purpose_name=common.purpose_name,
        status_name=common.status_name,
        when=common.when,
        version=__version__,
    )

    @ui.before_request
    def _language() -> None:
        g.lang = common.choose_lang()

    @ui.after_request
    def _headers(resp: Response) -> Response:
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"  # a login link in the address bar goes nowhere
        resp.headers["Content-Language"] = g.get("lang", "de")
        if not request.path.startswith("/ui/static/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @ui.get("/")
    def _root() -> Response:
        return redirect(url_for("accounts.list_accounts"))

    @ui.get("/ui/")
    def _home() -> Response:
        return redirect(url_for("accounts.list_accounts"))

    @ui.errorhandler(404)
    def _not_found(exc: Exception) -> tuple[str, int]:
        from flask import render_template

        return render_template(
            "error.html",
            title=common.t("Nicht gefunden", "Not found"),
            message=common.t(f"Keine Seite unter {request.path}.", f"no page at {request.path}."),
            hint=None,
        ), 404

    @ui.errorhandler(413)
    def _too_large(exc: Exception) -> tuple[str, int]:
        from flask import render_template

        limit = (ui.config.get("MAX_CONTENT_LENGTH") or 0) // 1048576
        return render_template(
            "error.html",
            title=common.t("Zu groß", "Too large"),
            message=common.t(
                f"Die Anhänge sind zu groß (höchstens {limit} MB); nichts gesendet.",
                f"the attachments are too large (at most {limit} MB); nothing sent.",
            ),
            hint=common.t(
                "plugins.settings.server.max_request_mb erhöhen oder kleinere Anhänge senden.",
                "Raise plugins.settings.server.max_request_mb or send smaller attachments.",
            ),
        ), 413

    from . import pages_accounts, pages_auth, pages_journal, pages_send, pages_templates

    for module in (pages_auth, pages_accounts, pages_templates, pages_send, pages_journal):
        ui.register_blueprint(module.bp)
    return ui


__all__ = ["create_ui"]
