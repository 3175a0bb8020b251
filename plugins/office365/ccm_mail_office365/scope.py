"""Which mailboxes the app can reach: told from the token's roles, never guessed.

Roles in an app-only token are Entra's *tenant-wide* grants: an app whose token carries Mail.Send
may send as every mailbox of the tenant. Exchange Online's "RBAC for Applications"
(https://learn.microsoft.com/exchange/permissions-exo/application-rbac) limits an app to a
management scope instead; those assignments live in Exchange and never appear in the token, and
they add to the Entra grant: the scope only limits the app once Mail.Send is removed in Entra.
Whether an RBAC scope holds more than the configured mailboxes cannot be read with the app's own
permissions; ``Test-ServicePrincipalAuthorization`` (Exchange Online PowerShell,
https://learn.microsoft.com/powershell/module/exchange/test-serviceprincipalauthorization) shows it.
"""

from __future__ import annotations

from ccm_mail_hookspecs import T

READ = ("Mail.Read", "Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.ReadWrite")


def commands(client_id: str, mailbox: str) -> T:
    """What an Exchange admin runs to limit the app to ``mailbox`` (Exchange Online PowerShell)."""
    lines = (
        "Connect-ExchangeOnline",
        f'New-ServicePrincipal -AppId {client_id} -ObjectId <OBJ> -DisplayName "ccm-mail"',
        f'New-ManagementScope -Name "ccm-mail" -RecipientRestrictionFilter "PrimarySmtpAddress -eq \'{mailbox}\'"',
        f'New-ManagementRoleAssignment -App {client_id} -Role "Application Mail.Send" -CustomResourceScope "ccm-mail"',
        f"Test-ServicePrincipalAuthorization -Identity {client_id} -Resource {mailbox}",
    )
    shown = " | ".join(lines)
    return T(
        f"{shown.replace('<OBJ>', '<Objekt-ID der Unternehmensanwendung>')}; danach in Entra → "
        "App-Registrierungen → App → API-Berechtigungen die Berechtigung Mail.Send entfernen (die "
        "Administratorzustimmung dafür widerrufen), sonst gilt sie weiter für alle Postfächer.",
        f"{shown.replace('<OBJ>', '<object ID of the enterprise application>')}; then in Entra → App "
        "registrations → the app → API permissions remove Mail.Send (revoke its admin consent), or it keeps "
        "applying to every mailbox.",
    )


def scope_step(roles: set[str] | frozenset[str] | None, client_id: str, mailbox: str) -> T:
    """The connection test's line about the app's reach."""
    if roles is None:
        return T(
            "Reichweite der App: nicht feststellbar (das Token ist nicht lesbar).",
            "The app's reach: cannot be told (the token cannot be read).",
        )
    read = sorted(r for r in roles if r in READ)
    if "Mail.Send" in roles:
        also = (
            T(
                f" Dazu darf sie alle Postfächer lesen ({', '.join(read)}).",
                f" It may also read every mailbox ({', '.join(read)}).",
            )
            if read
            else T("", "")
        )
        how = commands(client_id, mailbox)
        return T(
            f"Achtung: die App darf über die Entra-Berechtigung Mail.Send (Anwendung) als JEDES Postfach des "
            f"Mandanten senden, nicht nur als {mailbox}.{also.de} Begrenzen mit RBAC für Anwendungen in Exchange "
            f"Online: {how.de}",
            f"Caution: through the Entra permission Mail.Send (application) the app may send as EVERY mailbox of "
            f"the tenant, not only as {mailbox}.{also.en} Limit it with RBAC for Applications in Exchange "
            f"Online: {how.en}",
        )
    return T(
        f"Die App hat keine mandantenweite Mail.Send-Berechtigung in Entra; gesendet wird dann über RBAC für "
        f"Anwendungen (Exchange). Ob deren Bereich mehr Postfächer als {mailbox} umfasst, lässt sich mit den "
        f"Rechten der App nicht feststellen; ein Exchange-Admin sieht es mit: Test-ServicePrincipalAuthorization "
        f"-Identity {client_id} -Resource <anderes Postfach>.",
        f"The app has no tenant-wide Mail.Send permission in Entra; it sends through RBAC for Applications "
        f"(Exchange) then. Whether that scope holds more mailboxes than {mailbox} cannot be told with the app's "
        f"own permissions; an Exchange admin sees it with: Test-ServicePrincipalAuthorization -Identity "
        f"{client_id} -Resource <another mailbox>.",
    )
