"""The configuration as the rest of ccm-mail sees it, once it is validated, and its problems."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccm_mail_hookspecs import ConfigError, Placeholder, T

from ..pacing import DEFAULT_LIMITS, Limits
from .purposes import PurposeConfig

if TYPE_CHECKING:
    from .. import templates
    from ..plugins import Registries

LANGS = ("de", "en")
#: a purpose without its own account uses this one's (invoices fall back to E-Service)
PURPOSE_FALLBACK = {"invoice": "eservice"}
#: what the dialogs call the purposes AbSys knows; others are shown by their id
PURPOSE_LABELS = {"invoice": T("Rechnungsversand", "invoice sending"), "eservice": T("E-Service", "E-Service")}


def purpose_label(purpose: str, lang: str) -> str:
    label = PURPOSE_LABELS.get(purpose)
    return f"{label.get(lang)} ({purpose})" if label else purpose


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    key: str
    message: T
    hint: T | None = None
    warning: bool = False

    def render(self, lang: str) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.key}: {self.message.get(lang)}" if self.key else f"{where}: {self.message.get(lang)}"
        if self.hint:
            text += " → " + self.hint.get(lang)
        return text

    def to_dict(self, lang: str) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "key": self.key,
            "message": self.message.get(lang),
            "hint": self.hint.get(lang) if self.hint else None,
            "severity": "warning" if self.warning else "error",
        }


class ConfigProblems(ConfigError):
    """All problems of a configuration file at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if not p.warning]
        super().__init__(
            T(
                f"Konfiguration fehlerhaft ({len(errors)} Fehler):\n" + "\n".join(p.render("de") for p in errors),
                f"Configuration is invalid ({len(errors)} errors):\n" + "\n".join(p.render("en") for p in errors),
            ),
            hint=T(
                "Jeden Punkt beheben, dann 'ccm-mail config check'.",
                "Fix each point, then run 'ccm-mail config check'.",
            ),
        )


@dataclass(frozen=True, slots=True)
class AccountConfig:
    name: str
    type: str
    values: Mapping[str, Any]
    secret_fields: frozenset[str]
    from_name: str = ""
    limits: Limits = DEFAULT_LIMITS

    def __repr__(self) -> str:  # secrets never in a repr or traceback
        return f"AccountConfig(name={self.name!r}, type={self.type!r})"


@dataclass(frozen=True, slots=True)
class TemplateConfig:
    purpose: str
    subject: templates.Template
    body: templates.Template
    html: bool
    #: renders the duplicate-check reference; None: this purpose has no duplicate check
    reference: templates.Template | None


@dataclass(slots=True)
class Config:
    path: Path
    lang: str = "de"
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    pools: dict[str, list[str]] = field(default_factory=dict)
    #: each purpose's defaults (reply-to, cc, bcc, send-as, receipts, e-invoice rule, archive)
    purpose_settings: dict[str, PurposeConfig] = field(default_factory=dict)
    outbox_grace_seconds: float = 600.0
    templates: dict[str, TemplateConfig] = field(default_factory=dict)
    data_placeholders: dict[str, Placeholder] = field(default_factory=dict)
    journal_path: Path = Path("journal.sqlite")
    #: ``journal.url``: a PostgreSQL journal shared by several machines (the password apart)
    journal_url: str | None = None
    journal_password: str | None = None
    journal_lease_seconds: float = 30.0
    journal_pool_size: int = 10
    state_dir: Path = Path("ccm-mail-state")
    plugins_disable: tuple[str, ...] = ()
    plugin_settings: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    log_format: str = "console"
    log_level: str = "info"
    log_file: Path | None = None
    warnings: list[Problem] = field(default_factory=list)

    def placeholders_for(self, registries: Registries, purpose: str) -> dict[str, Placeholder]:
        """Every placeholder a template of ``purpose`` may use: the plugins' and the data fields
        declared in the YAML, by name."""
        merged = registries.placeholders_for(purpose)
        merged.update((n, p) for n, p in self.data_placeholders.items() if p.applies_to(purpose))
        return dict(sorted(merged.items(), key=lambda item: item[0].lower()))

    def purpose(self, purpose: str) -> PurposeConfig:
        """The purpose's defaults (none for a purpose written as ``invoice: Konto``)."""
        return self.purpose_settings.get(purpose) or PurposeConfig(purpose)

    def account_for(self, purpose: str) -> str | None:
        pool = self.pool_for(purpose)
        return pool[0] if pool else None

    def pool_for(self, purpose: str) -> list[str]:
        """The accounts serving a purpose (a pool when several); invoice falls back to eservice."""
        if purpose in self.pools:
            return self.pools[purpose]
        fallback = PURPOSE_FALLBACK.get(purpose)
        return self.pools.get(fallback, []) if fallback else []

    @property
    def purposes(self) -> list[str]:
        """Every purpose that can be sent: mapped to an account or given a template."""
        return sorted({*self.pools, *self.templates})
