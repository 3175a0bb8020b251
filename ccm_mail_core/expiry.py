"""Credentials that run out: warned about from 30 days ahead, refused once expired.

The account type says when its credential expires (:attr:`AccountType.expiry`, from the values
alone: a date in the config, a certificate's notAfter); a transport may ask its provider
(:meth:`Transport.credential_expiry`, e.g. Graph's ``passwordCredentials``) for the connection
test and the service's account list. One rule here for every caller: ``config check``,
``accounts test``, the service, and every send (which is refused before anything is journaled
once the date has passed: the provider would refuse it anyway, with a less helpful message).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from ccm_mail_hookspecs import AccountType, ConfigError, Expiry, T

from .dates import parse_day

#: from how many days before expiry every check and send warns
WARN_DAYS = 30


class CredentialExpired(ConfigError):
    """The account's credential has expired: nothing is sent until it is renewed."""

    kind = "credential_expired"


def state(expiry: Expiry, now: datetime) -> str:
    """``"ok"``, ``"soon"`` (within :data:`WARN_DAYS`) or ``"expired"``."""
    if expiry.not_after <= now:
        return "expired"
    return "soon" if expiry.not_after - now <= timedelta(days=WARN_DAYS) else "ok"


def days_left(expiry: Expiry, now: datetime) -> int:
    return max(0, (expiry.not_after - now).days)


def _when(expiry: Expiry) -> T:
    at = expiry.not_after.astimezone(timezone.utc)
    return T(f"{at:%d.%m.%Y}", f"{at:%Y-%m-%d}")


def text(account: str, expiry: Expiry, now: datetime) -> T | None:
    """The warning (or the refusal's message) for ``account``, or None while it is far off."""
    found = state(expiry, now)
    when = _when(expiry)
    renew = expiry.renew or T("", "")
    if found == "expired":
        return T(
            f"Konto {account}: {expiry.what.de} ist am {when.de} abgelaufen; nichts wird gesendet. {renew.de}".strip(),
            f"account {account}: the {expiry.what.en} expired on {when.en}; nothing is sent. {renew.en}".strip(),
        )
    if found == "soon":
        n = days_left(expiry, now)
        return T(
            f"Konto {account}: {expiry.what.de} läuft am {when.de} ab (in {n} Tagen). {renew.de}".strip(),
            f"account {account}: the {expiry.what.en} expires on {when.en} (in {n} days). {renew.en}".strip(),
        )
    return None


def of_account(atype: AccountType, values: Mapping[str, Any]) -> Expiry | None:
    """The account type's own answer; a failing plugin function is no reason to stop a send
    (the provider still says no when the credential is really gone)."""
    if atype.expiry is None:
        return None
    try:
        return atype.expiry(values)
    except Exception:  # noqa: BLE001 - see the docstring
        return None


def refuse_if_expired(account: str, expiry: Expiry | None, now: datetime) -> T | None:
    """Raise :class:`CredentialExpired` once expired; the warning text while it expires soon."""
    if expiry is None:
        return None
    message = text(account, expiry, now)
    if state(expiry, now) == "expired" and message is not None:
        raise CredentialExpired(
            message, details={"account": account, "not_after": expiry.not_after.isoformat(), "source": expiry.source}
        )
    return message


def to_dict(account: str, expiry: Expiry | None, now: datetime, lang: str) -> dict[str, Any] | None:
    """For ``--json`` and the service's account list."""
    if expiry is None:
        return None
    message = text(account, expiry, now)
    return {
        "what": expiry.what.get(lang),
        "not_after": expiry.not_after.isoformat(),
        "source": expiry.source,
        "state": state(expiry, now),
        "days_left": days_left(expiry, now),
        "message": message.get(lang) if message else None,
    }


def parse_date(value: Any) -> datetime | None:
    """``2027-03-31`` (YAML reads it as a date), ``"31.03.2027"`` or an ISO date-time, as the end
    of that day in UTC when only a day is given; None when it is none of these."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, time(23, 59, 59), tzinfo=timezone.utc)
    if not isinstance(value, str) or not value.strip():
        return None
    raw = value.strip()
    day = parse_day(raw)
    if day is not None:
        return datetime.combine(day, time(23, 59, 59), tzinfo=timezone.utc)
    try:
        found = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo else found.replace(tzinfo=timezone.utc)
