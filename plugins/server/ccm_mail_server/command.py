"""``ccm-mail serve``: load the configuration once, make the API keys on the first start, then
serve the JSON API with cheroot (threads, TLS) until stopped (Ctrl+C, SIGTERM, a Windows
service's stop)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from ccm_mail_hookspecs import CommandOutput

from .keys import SCOPES, KeyStore
from .settings import ServerSettings


def run(args: argparse.Namespace, out: CommandOutput) -> int:
    from ccm_mail_core import Mailer, logging_setup
    from ccm_mail_core.storage import data_dir

    path = Path(args.config)
    env_lang = os.environ.get("CCM_MAIL_LANG")
    mailer = Mailer.from_config(path, lang=args.lang or (env_lang if env_lang in ("de", "en") else None))
    try:
        logging_setup.configure(
            fmt=args.log_format or mailer.config.log_format,
            level=args.log_level or mailer.config.log_level,
            file=None if args.log_format or args.log_level else mailer.config.log_file,
        )
        out.lang = mailer.lang
        settings = ServerSettings.from_mapping(
            mailer.config.plugin_settings.get("server", {}), path.resolve().parent, listen=args.listen
        )
        keys = KeyStore(settings.keys, settings.keys_dir or data_dir() / "server")
        if args.new_key or args.show_keys:
            return _keys(keys, args.new_key, out)
        settings.check_binding()
        made = keys.ensure()
    except BaseException:
        mailer.close()
        raise
    return _serve(path, mailer, settings, keys, made, out)


def _keys(keys: KeyStore, new: str | None, out: CommandOutput) -> int:
    """The keys themselves, printed directly: they are registered as secrets, and every other
    output path blanks them."""
    scopes = SCOPES if new == "all" else (new,) if new else SCOPES
    shown = {}
    for scope in scopes:
        shown[scope] = {"key": keys.rotate(scope) if new else keys.get(scope), "where": keys.where(scope)}
    if out.json:
        import json

        print(json.dumps({"ok": True, "rotated": bool(new), "keys": shown}, ensure_ascii=True, indent=2))
    else:
        for scope, item in shown.items():
            print(f"{scope}: {item['key'] or out.t('(noch keiner)', '(none yet)')}    [{item['where']}]")
        if new:
            out.note(
                out.t(
                    "Der alte Schlüssel gilt ab sofort nicht mehr (auch im laufenden Dienst).",
                    "The old key stops working now (in the running service too).",
                )
            )
    return 0


#: seconds a connection may stay silent (per read; a slow upload that keeps sending is not cut off)
SOCKET_TIMEOUT = 15


def build_server(app: Any, settings: ServerSettings) -> Any:
    """cheroot serving ``app`` as the settings say (threads, body limit, TLS)."""
    from cheroot import wsgi

    server = wsgi.Server(
        (settings.host, settings.port),
        app,
        numthreads=settings.threads,
        request_queue_size=64,
        # a new connection holds a worker thread until its request line and headers arrive: a
        # silent one (or a slow-trickling client) is cut off after this many seconds of silence
        timeout=SOCKET_TIMEOUT,
        server_name="ccm-mail",
    )
    server.version = "ccm-mail"  # the Server header names no library version
    # cheroot refuses a bigger body itself (without reading it); Flask's limit answers in JSON
    server.max_request_body_size = settings.max_request_bytes + 1024 * 1024
    if settings.tls:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        server.ssl_adapter = BuiltinSSLAdapter(str(settings.tls_cert), str(settings.tls_key))
    return server


def _serve(
    path: Path, mailer: object, settings: ServerSettings, keys: KeyStore, made: list[str], out: CommandOutput
) -> int:
    from .service import Service
    from .site import create_site

    service = Service(path, settings, keys, mailer=mailer)  # type: ignore[arg-type]
    site = create_site(service)
    server = build_server(site, settings)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if hasattr(signal, "SIGBREAK"):  # Windows: Ctrl+Break, and what a service wrapper may send
        signal.signal(signal.SIGBREAK, stop)
    try:
        try:
            server.prepare()
        except OSError as exc:  # the port is taken (another serve, or make ui twice) or not allowed
            from ccm_mail_hookspecs import ConfigError, T

            raise ConfigError(
                T(
                    f"'ccm-mail serve' kann nicht auf {settings.host}:{settings.port} lauschen ({exc.strerror or exc}); "
                    "nicht gestartet.",
                    f"'ccm-mail serve' cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc}); "
                    "not started.",
                ),
                hint=T(
                    "Läuft der Dienst schon? Sonst eine andere Adresse: --listen 127.0.0.1:PORT oder "
                    "plugins.settings.server.listen.",
                    "Is the service running already? Otherwise another address: --listen 127.0.0.1:PORT or "
                    "plugins.settings.server.listen.",
                ),
            ) from None
        host, port = server.bind_addr[:2]  # type: ignore[index]
        url = f"{'https' if settings.tls else 'http'}://{f'[{host}]' if ':' in str(host) else host}:{port}"
        for scope in made:
            out.note(
                out.t(
                    f"Neuer API-Schlüssel '{scope}' in {keys.where(scope)}.",
                    f"new API key '{scope}' in {keys.where(scope)}.",
                )
            )
        out.note(
            out.t(
                f"ccm-mail serve: bereit unter {url} (Konfiguration {service.path})",
                f"ccm-mail serve: ready at {url} (configuration {service.path})",
            )
        )
        # printed directly: the token is registered as a secret, and every other output path blanks it
        print(
            out.t(
                "Einstellungen im Browser (Anmeldelink, einmal gültig, 1 Stunde): ",
                "Settings in the browser (login link, works once, for 1 hour): ",
            )
            + url
            + site.login_path(),
            file=sys.stderr,
        )
        sys.stderr.flush()
        service.start()
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        service.close()
    out.note(out.t("ccm-mail serve: beendet.", "ccm-mail serve: stopped."))
    return 0
