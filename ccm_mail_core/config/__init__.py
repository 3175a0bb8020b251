"""The YAML configuration: read (:mod:`.load`), validated as a whole (:mod:`.validate`), its
secrets resolved (:mod:`.secrets`), and the result (:mod:`.model`)."""

from __future__ import annotations

from .load import LineDict, blocked_plugins, read_raw
from .model import (
    PURPOSE_FALLBACK,
    AccountConfig,
    Config,
    ConfigProblems,
    Problem,
    TemplateConfig,
    purpose_label,
)
from .validate import build, did_you_mean

__all__ = [
    "PURPOSE_FALLBACK",
    "AccountConfig",
    "Config",
    "ConfigProblems",
    "LineDict",
    "Problem",
    "TemplateConfig",
    "blocked_plugins",
    "build",
    "did_you_mean",
    "purpose_label",
    "read_raw",
]
