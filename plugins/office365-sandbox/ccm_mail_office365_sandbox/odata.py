"""The small part of OData query syntax the Sent Items lookup needs.

Two ``$filter`` forms are understood (anything else is Graph's ``400 BadRequest``, as an
unsupported filter would be for a real client):

- ``internetMessageId eq '<id@host>'``
- ``singleValueExtendedProperties/Any(ep: ep/id eq '<prop id>' and ep/value eq '<value>')``
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_STR = r"'((?:[^']|'')*)'"
_MID = re.compile(rf"^\s*internetMessageId\s+eq\s+{_STR}\s*$", re.IGNORECASE)
_ANY = re.compile(
    rf"^\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+{_STR}\s+and\s+"
    rf"\1/value\s+eq\s+{_STR}\s*\)\s*$",
    re.IGNORECASE,
)
_EXPAND = re.compile(
    rf"^\s*singleValueExtendedProperties\s*\(\s*\$filter\s*=\s*id\s+eq\s+{_STR}\s*\)\s*$", re.IGNORECASE
)

Predicate = Callable[[dict[str, Any], list[dict[str, str]]], bool]


class ODataError(ValueError):
    pass


def _unq(s: str) -> str:
    return s.replace("''", "'")


def parse_filter(text: str | None) -> Predicate:
    """A predicate over (message json, its extended properties)."""
    if not text:
        return lambda _m, _p: True
    m = _MID.match(text)
    if m:
        want = _unq(m.group(1))
        return lambda msg, _p: msg.get("internetMessageId") == want
    m = _ANY.match(text)
    if m:
        pid, value = _unq(m.group(2)), _unq(m.group(3))
        return lambda _m, props: any(p["id"].lower() == pid.lower() and p["value"] == value for p in props)
    raise ODataError("Invalid filter clause")


def parse_expand(text: str | None) -> str | None:
    """The extended property id to expand, or None."""
    if not text:
        return None
    m = _EXPAND.match(text)
    if m:
        return _unq(m.group(1))
    if text.strip().lower() == "singlevalueextendedproperties":
        return ""
    raise ODataError(
        f"Parsing OData Select and Expand failed: Could not find a property named "
        f"'{text}' on type 'microsoft.graph.message'."
    )


def apply_select(item: dict[str, Any], select: str | None) -> dict[str, Any]:
    if not select:
        return item
    keep = {s.strip() for s in select.split(",") if s.strip()}
    out = {k: v for k, v in item.items() if k in keep or k in ("id", "@odata.etag")}
    return out
