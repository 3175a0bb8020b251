"""The default confirmation dialog: ``--yes`` answers it; otherwise ask on the terminal when a
person is there; otherwise abstain, so the host refuses rather than sends unconfirmed."""

from __future__ import annotations

import sys

from ccm_mail_hookspecs import Preview, T, hookimpl

from ..preview_text import render_preview

CCM_MAIL_API = 1


@hookimpl(trylast=True)
def ccm_mail_confirm(preview: Preview) -> bool | None:
    ctx = preview.context
    if ctx.assume_yes:
        return True
    if not ctx.interactive:
        return None
    lang = ctx.lang
    print(render_preview(preview, lang), file=sys.stderr)
    question = T("Jetzt senden? [j/N] ", "Send now? [y/N] ").get(lang)
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("j", "ja", "y", "yes")
