"""Text a person reads, in German and English."""

from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("de", "en")


@dataclass(frozen=True, slots=True)
class T:
    """A text in German and English; ``T(de=..., en=...)``.

    German comes first because ccm-mail's users are German admins; English must always be given too.
    """

    de: str
    en: str

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.de

    def format(self, **values: object) -> "T":
        return T(self.de.format(**values), self.en.format(**values))

    def __str__(self) -> str:  # German first, English in brackets: readable by both audiences
        return self.de if self.de == self.en else f"{self.de} ({self.en})"
