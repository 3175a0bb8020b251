"""Reading the YAML file: parsed so that every key remembers its line, so every config problem
can name its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ccm_mail_hookspecs import T

from .model import ConfigProblems, Problem


class LineDict(dict[Any, Any]):
    """A mapping from YAML that knows the line of each key (1-based) and of itself."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    line: int = 0
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


# libyaml parses a config in a tenth of the time (every cold send reads one); PyYAML's wheels
# bring it, a build without it falls back to the pure-Python parser with the same results
_Base: Any = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


class _Loader(_Base):  # the base is chosen at run time
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    own = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # merged pairs (``<<: *base``) first, the mapping's own after them
    merged = len(node.value) - own
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    own_keys: set[Any] = set()
    for n, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if n >= merged:  # a key of its own overrides a merged one; twice of its own is a mistake
            if key in own_keys:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            own_keys.add(key)
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def load(path: Path) -> Any:
    """Parse ``path``; raises ``yaml.YAMLError`` (with its mark) or ``OSError``."""
    with path.open("r", encoding="utf-8-sig") as fh:
        return yaml.load(fh, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


def read_raw(path: Path, text: str | None = None) -> LineDict:
    """Parse the file (or ``text``, as the file's content would be: the settings write path checks
    a change before it writes it); a YAML syntax error or an unreadable file becomes a
    one-problem ConfigProblems."""
    name = str(path.resolve())
    try:
        raw = load(path) if text is None else yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except FileNotFoundError:
        raise ConfigProblems(
            [
                Problem(
                    name,
                    0,
                    "",
                    T("Konfigurationsdatei nicht gefunden.", "configuration file not found."),
                    T(
                        "Pfad mit --config angeben; Vorlage: config.example.yaml.",
                        "Give the path with --config; see config.example.yaml.",
                    ),
                )
            ]
        ) from None
    except OSError as exc:
        raise ConfigProblems(
            [Problem(name, 0, "", T(f"nicht lesbar: {exc.strerror}", f"cannot be read: {exc.strerror}"))]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigProblems(
            [
                Problem(
                    name,
                    0,
                    "",
                    T(f"ist kein UTF-8 (Byte {exc.start})", f"is not UTF-8 (byte {exc.start})"),
                    T("Im Editor als UTF-8 speichern.", "Save it as UTF-8 in the editor."),
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        what = f"{getattr(exc, 'problem', '') or exc}"
        raise ConfigProblems(
            [
                Problem(
                    name,
                    line,
                    "",
                    T(f"YAML-Syntaxfehler: {what}", f"YAML syntax error: {what}"),
                    T(
                        "Einrückung (Leerzeichen, keine Tabs) und Doppelpunkte prüfen.",
                        "Check indentation (spaces, no tabs) and colons.",
                    ),
                )
            ]
        ) from None
    if raw is None:
        raw = LineDict()
        raw.key_lines = {}
    if not isinstance(raw, LineDict):
        raise ConfigProblems(
            [
                Problem(
                    name,
                    1,
                    "",
                    T(
                        "Oberste Ebene muss eine Zuordnung (key: value) sein.",
                        "the top level must be a mapping (key: value).",
                    ),
                )
            ]
        )
    return raw


def blocked_plugins(raw: LineDict) -> tuple[str, ...]:
    """Read ``plugins.disable`` before the plugin manager exists (it decides which plugins load)."""
    plugins = raw.get("plugins")
    if isinstance(plugins, dict) and isinstance(plugins.get("disable"), list):
        return tuple(str(x) for x in plugins["disable"])
    return ()
