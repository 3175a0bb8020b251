"""What the confirmation dialog shows, as text for a terminal and as data for --json."""

from __future__ import annotations

from typing import Any

from ccm_mail_hookspecs import Message, Preview

_LABELS = {
    "de": {"account": "Konto", "from": "Von", "to": "An", "cc": "Cc", "bcc": "Bcc", "reply_to": "Antwort an",
           "subject": "Betreff", "attachments": "Anhänge", "reference": "Referenz", "purpose": "Zweck",
           "count": "Anzahl Mails", "sample": "Beispiel"},
    "en": {"account": "Account", "from": "From", "to": "To", "cc": "Cc", "bcc": "Bcc", "reply_to": "Reply-To",
           "subject": "Subject", "attachments": "Attachments", "reference": "Reference", "purpose": "Purpose",
           "count": "Messages", "sample": "Sample"},
}


def _human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def preview_dict(preview: Preview) -> dict[str, Any]:
    m: Message = preview.message
    ctx = preview.context
    return {
        "purpose": ctx.purpose, "account": ctx.account, "account_type": ctx.account_type, "reference": ctx.reference,
        "from": str(m.sender) if m.sender else None,
        "to": [str(a) for a in m.to], "cc": [str(a) for a in m.cc], "bcc": [str(a) for a in m.bcc],
        "reply_to": [str(a) for a in m.reply_to], "subject": m.subject, "text": m.text, "html": m.html,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size, "inline": a.inline}
                        for a in m.attachments],
        "headers": dict(m.headers), **dict(preview.extra),
    }


def render_preview(preview: Preview, lang: str, *, body_lines: int = 20) -> str:
    L = _LABELS["en" if lang == "en" else "de"]
    m = preview.message
    ctx = preview.context
    rows = [(L["purpose"], ctx.purpose), (L["account"], f"{ctx.account} ({ctx.account_type})")]
    if "count" in preview.extra:
        rows.append((L["count"], str(preview.extra["count"])))
        first = "erste von" if lang != "en" else "first of"
        rows.append((L["sample"], f"{first} {preview.extra['count']}"))
    if ctx.reference:
        rows.append((L["reference"], ctx.reference))
    rows.append((L["from"], str(m.sender) if m.sender else "-"))
    for key, addrs in (("to", m.to), ("cc", m.cc), ("bcc", m.bcc), ("reply_to", m.reply_to)):
        if addrs:
            rows.append((L[key], ", ".join(str(a) for a in addrs)))
    rows.append((L["subject"], m.subject))
    for att in m.attachments:
        rows.append((L["attachments"], f"{att.filename} ({att.content_type}, {_human_size(att.size)})"))
    width = max(len(k) for k, _ in rows)
    out = [f"{k.ljust(width)}  {v}" for k, v in rows]
    body = m.text if m.text is not None else (m.html or "")
    lines = body.splitlines()
    out.append("-" * 60)
    out.extend(lines[:body_lines])
    if len(lines) > body_lines:
        out.append(f"… (+{len(lines) - body_lines})")
    out.append("-" * 60)
    return "\n".join(out)
