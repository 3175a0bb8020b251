"""What the confirmation dialog shows, as text for a terminal and as data for --json."""

from __future__ import annotations

from typing import Any

from ccm_mail_hookspecs import Message, Preview, T


_LABELS = {
    "account": T("Konto", "Account"),
    "from": T("Von", "From"),
    "to": T("An", "To"),
    "cc": T("Cc", "Cc"),
    "bcc": T("Bcc", "Bcc"),
    "reply_to": T("Antwort an", "Reply-To"),
    "subject": T("Betreff", "Subject"),
    "attachments": T("Anhänge", "Attachments"),
    "reference": T("Referenz", "Reference"),
    "purpose": T("Zweck", "Purpose"),
    "count": T("Anzahl Mails", "Messages"),
    "sample": T("Beispiel", "Sample"),
}


def human_size(n: float, lang: str) -> str:
    """``1,2 MB`` for people: units of 1024 as Windows Explorer and Microsoft's limits count
    them; German decimal comma."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            text = f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            return T(text.replace(".", ","), text).get(lang)
        n /= 1024
    raise AssertionError("unreachable")


def preview_dict(preview: Preview) -> dict[str, Any]:
    m: Message = preview.message
    ctx = preview.context
    return {
        "purpose": ctx.purpose,
        "account": ctx.account,
        "account_type": ctx.account_type,
        "reference": ctx.reference,
        "from": str(m.sender) if m.sender else None,
        "to": [str(a) for a in m.to],
        "cc": [str(a) for a in m.cc],
        "bcc": [str(a) for a in m.bcc],
        "reply_to": [str(a) for a in m.reply_to],
        "subject": m.subject,
        "text": m.text,
        "html": m.html,
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size, "inline": a.inline}
            for a in m.attachments
        ],
        "headers": dict(m.headers),
        **dict(preview.extra),
    }


def render_preview(preview: Preview, lang: str, *, body_lines: int = 20) -> str:
    return render_preview_dict(preview_dict(preview), lang, body_lines=body_lines)


def render_preview_dict(d: dict[str, Any], lang: str, *, body_lines: int = 20) -> str:
    """The preview for people from its ``--json`` document (the client of ``ccm-mail serve`` has
    only that)."""
    from .config.model import purpose_label  # here: a client of the service imports it only to print this

    def label(key: str) -> str:
        return _LABELS[key].get(lang)

    rows = [
        (label("purpose"), purpose_label(d["purpose"], lang)),
        (label("account"), f"{d['account']} ({d['account_type']})"),
    ]
    if "count" in d:
        rows.append((label("count"), str(d["count"])))
        rows.append((label("sample"), T(f"erste von {d['count']}", f"first of {d['count']}").get(lang)))
    if d.get("reference"):
        rows.append((label("reference"), d["reference"]))
    rows.append((label("from"), d.get("from") or "-"))
    for key in ("to", "cc", "bcc", "reply_to"):
        if d.get(key):
            rows.append((label(key), ", ".join(d[key])))
    rows.append((label("subject"), d["subject"]))
    einvoices = {e["filename"]: e["label"] for e in d.get("einvoice") or []}
    for att in d.get("attachments") or []:
        kind = f", {einvoices[att['filename']]}" if att["filename"] in einvoices else ""
        rows.append(
            (label("attachments"), f"{att['filename']} ({att['content_type']}, {human_size(att['size'], lang)}{kind})")
        )
    for warning in d.get("warnings") or []:
        rows.append((T("Warnung", "Warning").get(lang), warning))
    width = max(len(k) for k, _ in rows)
    out = [f"{k.ljust(width)}  {v}" for k, v in rows]
    body = d["text"] if d.get("text") is not None else (d.get("html") or "")
    lines = body.splitlines()
    out.append("-" * 60)
    out.extend(lines[:body_lines])
    if len(lines) > body_lines:
        out.append(f"… (+{len(lines) - body_lines})")
    out.append("-" * 60)
    return "\n".join(out)
