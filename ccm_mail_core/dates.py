"""Dates as admins type them: ``TT.MM.JJJJ`` or ``JJJJ-MM-TT``."""

from __future__ import annotations

from datetime import date, datetime


def parse_day(text: str) -> date | None:
    """The day ``text`` names (``31.03.2027`` or ``2027-03-31``), or None."""
    raw = text.strip()
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(raw, fmt).date()
        except ValueError:
            pass
    return None
