"""What every command starts from: the config file's path and the Mailer for it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import logging_setup
from ..config import Config, ConfigProblems, blocked_plugins, build, read_raw
from ..config.model import LANGS
from ..mailer import Mailer
from ..plugins import PluginManager, Registries, collect, make_plugin_manager
from .output import Out

DEFAULT_CONFIG = "ccm-mail.yaml"


def config_path(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "config", None) or os.environ.get("CCM_MAIL_CONFIG") or DEFAULT_CONFIG)


def open_mailer(args: argparse.Namespace, out: Out) -> Mailer:
    """The Mailer for the command's config, logging as the config says unless the command line
    says otherwise; ``out`` speaks the config's language from here on."""
    mailer = Mailer.from_config(config_path(args), lang=lang_override(args))
    logging_setup.configure(
        fmt=args.log_format or mailer.config.log_format,
        level=args.log_level or mailer.config.log_level,
        file=None if args.log_format or args.log_level else mailer.config.log_file,
    )
    out.lang = mailer.lang
    return mailer


def lang_override(args: argparse.Namespace) -> str | None:
    """``--lang``, else ``CCM_MAIL_LANG``: both beat the config's ``language``."""
    env = os.environ.get("CCM_MAIL_LANG")
    return args.lang or (env if env in LANGS else None)


def listing(args: argparse.Namespace, out: Out) -> tuple[PluginManager, Registries, Config | None]:
    """Plugins and what they contribute, with the config's disables when a config is there;
    listing works without a config, so an integrator can look before writing one."""
    path = config_path(args)
    blocked: tuple[str, ...] = ()
    raw = None
    note = out.t(
        f"Hinweis: {path} ist fehlerhaft ('ccm-mail config check'); gezeigt wird ohne sie.",
        f"note: {path} has errors ('ccm-mail config check'); shown without it.",
    )
    if path.exists():
        try:
            raw = read_raw(path)
            blocked = blocked_plugins(raw)
        except ConfigProblems:  # listing what is installed must work while the config is being fixed
            out.note(note)
    pm = make_plugin_manager(blocked=blocked)
    registries = collect(pm)
    cfg = None
    if raw is not None:
        try:
            cfg = build(path, raw, registries, lang_override=lang_override(args))
            out.lang = cfg.lang
        except ConfigProblems:
            out.note(note)
    return pm, registries, cfg
