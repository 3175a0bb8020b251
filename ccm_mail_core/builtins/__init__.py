"""Built-in plugins, registered through the same hooks as third-party plugins."""

from __future__ import annotations

from . import confirm_terminal, pickup_folder, standard_placeholders

DEFAULT_PLUGINS = (
    ("pickup", pickup_folder),
    ("placeholders", standard_placeholders),
    ("confirm-terminal", confirm_terminal),
)
