"""Reading a batch file: JSON Lines or CSV, one message per row.

A row has ``to`` (and optionally ``cc``, ``bcc``, ``reply_to``), ``attachments``, ``reference`` and
the template data. In JSON Lines the data is the ``data`` object and/or the other keys; in CSV
every other column is a data field. In CSV cells several addresses are separated by commas (as in
a mail header; quote display names that contain one) and several attachments by ``;``. The CSV
delimiter (``,`` or ``;``, as German Excel writes it) is detected.

Every address cell goes through the same strict parser as ``ccm-mail send``: a cell that is not
exactly the addresses it appears to be (a line break, a second address without a comma, an
unquoted name holding an ``@``) is a problem of its row, never an extra recipient.

Encoding: UTF-8 (with or without BOM), else Windows-1252 — what German Excel's "CSV
(Trennzeichen-getrennt)" writes; :func:`read` says which it used.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccm_mail_hookspecs import Address, AddressError, T

ADDRESS_KEYS = ("to", "cc", "bcc", "reply_to")
RESERVED = (*ADDRESS_KEYS, "attachments", "reference", "data")


@dataclass(slots=True)
class Row:
    number: int  #: 1-based line (JSONL) or data row (CSV, header = row 0)
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    reference: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    message: T
    column: str = ""

    def render(self, lang: str) -> str:
        where = T(f"Zeile {self.row}", f"row {self.row}").get(lang)
        if self.column:
            where += T(f", Spalte {self.column}", f", column {self.column}").get(lang)
        return f"{where}: {self.message.get(lang)}"


#: encodings tried in this order when none is given
ENCODINGS = ("utf-8-sig", "cp1252")


def read(path: Path, encoding: str | None = None) -> tuple[list[Row], list[RowProblem], str]:
    """The rows, the problems, and the encoding the file was read with."""
    data = path.read_bytes()
    failure: UnicodeDecodeError | None = None
    for candidate in [encoding] if encoding else ENCODINGS:
        try:
            text = data.decode(candidate)
            break
        except UnicodeDecodeError as exc:
            failure = exc
    else:  # neither UTF-8 nor cp1252 (0x81 is ü in a DOS export, cp850): the caller names --encoding
        assert failure is not None
        raise failure
    rows, problems = (_jsonl if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else _csv)(text, path.parent)
    return rows, problems, candidate


class _CellError(Exception):
    def __init__(self, column: str, message: T) -> None:
        super().__init__(message.en)
        self.column = column
        self.message = message


def _addresses(value: Any, column: str) -> list[Address]:
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else [value]
    try:
        return [address for item in items for address in Address.parse_list(str(item))]
    except AddressError as exc:
        raise _CellError(column, exc.message) from None


def _files(value: Any, base: Path, sep: str = ";") -> list[str]:
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else [p for p in str(value).split(sep)]
    return [str(p if Path(p).is_absolute() else base / p) for p in (str(i).strip() for i in items) if p]


def _jsonl(text: str, base: Path) -> tuple[list[Row], list[RowProblem]]:
    rows, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(number, T(f"kein gültiges JSON ({exc.msg})", f"not valid JSON ({exc.msg})")))
            continue
        if not isinstance(obj, dict):
            problems.append(RowProblem(number, T("muss ein JSON-Objekt sein", "must be a JSON object")))
            continue
        data = obj.get("data", {})
        if not isinstance(data, dict):
            problems.append(RowProblem(number, T("'data' muss ein Objekt sein", "'data' must be an object")))
            continue
        extra = {k: v for k, v in obj.items() if k not in RESERVED}
        try:
            rows.append(
                Row(
                    number,
                    **{k: _addresses(obj.get(k), k) for k in ADDRESS_KEYS},
                    attachments=_files(obj.get("attachments"), base),
                    reference=str(obj["reference"]) if obj.get("reference") not in (None, "") else None,
                    data={**extra, **data},
                )
            )
        except _CellError as exc:
            problems.append(RowProblem(number, exc.message, exc.column))
    return rows, problems


def _csv(text: str, base: Path) -> tuple[list[Row], list[RowProblem]]:
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    rows, problems = [], []

    def column(name: str) -> str:  # Excel users write "To" or "CC"; data fields keep their case
        return name.strip().lower() if name.strip().lower() in RESERVED else name.strip()

    if not reader.fieldnames or "to" not in [column(f) for f in reader.fieldnames]:
        return [], [RowProblem(0, T("Kopfzeile braucht eine Spalte 'to'", "the header needs a 'to' column"))]
    for number, raw in enumerate(reader, 1):
        if None in raw:  # DictReader files surplus cells under the key None
            problems.append(RowProblem(number, T("zu viele Spalten", "too many columns")))
            continue
        if not any((v or "").strip() for v in raw.values()):  # Excel ends a sheet with ';;;' rows
            continue
        rec = {column(k): (v or "").strip() for k, v in raw.items()}
        try:
            rows.append(
                Row(
                    number,
                    **{k: _addresses(rec.get(k), k) for k in ADDRESS_KEYS},
                    attachments=_files(rec.get("attachments"), base),
                    reference=rec.get("reference") or None,
                    data={k: v for k, v in rec.items() if k not in RESERVED},
                )
            )
        except _CellError as exc:
            problems.append(RowProblem(number, exc.message, exc.column))
    return rows, problems
