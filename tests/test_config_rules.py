"""Configuration rules an admin meets: the duplicate check is never off by accident (field defect
10), field values follow their declared kind (defect 27), and every problem shows at once, the
account type's own checks included (Transport kit 2, host items)."""

from __future__ import annotations

import pytest

from ccm_mail_core.config import ConfigProblems
from ccm_mail_hookspecs import AccountType, Field, T, TemplateError, hookimpl

from host_support import BASE_CONFIG, INVOICE, run_cli

NO_REFERENCE = BASE_CONFIG.replace('    reference: "#extRechnungsNr#"\n', "")


def test_invoice_without_reference_still_refuses_the_same_invoice_twice(make_mailer, workdir) -> None:
    """Defect 10: the invoice purpose's reference defaults to #extRechnungsNr#."""
    mailer = make_mailer(NO_REFERENCE)
    first = mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert first.status.value == "sent"
    from ccm_mail_core.journal import DuplicateSend

    with pytest.raises(DuplicateSend):
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, assume_yes=True)
    assert len(list((workdir / "out").glob("*.eml"))) == 1


def test_other_purpose_without_reference_is_named_by_config_check(write_config, workdir) -> None:
    """Defect 10: a purpose without a reference has no duplicate check; config check says so
    until ``reference: none`` says it is meant."""
    text = BASE_CONFIG.replace(
        "  invoice: Rechnungsversand\n", "  invoice: Rechnungsversand\n  mahnung: Rechnungsversand\n"
    ).replace("journal:", '  mahnung:\n    subject: "Mahnung"\n    body: "Bitte zahlen."\njournal:')
    write_config(text)
    proc = run_cli("config", "check", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "templates.mahnung.reference" in proc.stdout and "zweimal" in proc.stdout
    write_config(text.replace('    body: "Bitte zahlen."\n', '    body: "Bitte zahlen."\n    reference: none\n'))
    silent = run_cli("config", "check", cwd=workdir)
    assert silent.returncode == 0 and "mahnung.reference" not in silent.stdout + silent.stderr


@pytest.mark.parametrize("reference", ["   ", "\t"])
def test_blank_reference_in_send_is_an_error(make_mailer, workdir, reference) -> None:
    """Defect 10: ``--reference "  "`` would switch the duplicate check off."""
    mailer = make_mailer()
    with pytest.raises(TemplateError):
        mailer.send("invoice", to=["kunde@example.de"], data=INVOICE, reference=reference, assume_yes=True)
    assert mailer.journal.query() == []


def test_blank_reference_in_the_template_is_a_config_error(make_mailer) -> None:
    with pytest.raises(ConfigProblems) as err:
        make_mailer(BASE_CONFIG.replace('reference: "#extRechnungsNr#"', 'reference: "  "'))
    assert [p.key for p in err.value.problems if not p.warning] == ["templates.invoice.reference"]


class Typed:
    """An account type with every kind of field, and checks of its own."""

    def __init__(self) -> None:
        self.values = None

    @hookimpl
    def ccm_mail_account_types(self, register):  # type: ignore[no-untyped-def]
        from ccm_mail_core.builtins.pickup_folder import PickupTransport

        def validate(values):  # type: ignore[no-untyped-def]
            self.values = dict(values)
            problems = []
            if values.get("mode") == "certificate" and not values.get("certificate"):
                problems.append(("certificate", T("Zertifikat fehlt", "certificate missing")))
            if "port" in values and values["port"] == 25:
                problems.append(("port", T("Port 25 ist gesperrt", "port 25 is blocked")))
            return problems

        register(
            AccountType(
                "typed",
                T("Typisiert", "Typed"),
                (
                    Field("folder", T("Ordner", "Folder"), kind="path"),
                    Field("sender", T("Absender", "Sender"), kind="email"),
                    Field("port", T("Port", "Port"), kind="int", required=False),
                    Field("timeout", T("Zeitlimit (s)", "Timeout (s)"), kind="float", required=False),
                    Field("tls", T("TLS", "TLS"), kind="bool", required=False),
                    Field("mode", T("Modus", "Mode"), choices=("secret", "certificate"), required=False),
                    Field("certificate", T("Zertifikat", "Certificate"), required=False),
                ),
                PickupTransport,
                validate=validate,
            )
        )


def typed_config(**fields: str) -> str:
    lines = "".join(f"    {k}: {v}\n" for k, v in fields.items())
    return BASE_CONFIG.replace("    type: pickup\n", f"    type: typed\n{lines}")


def test_quoted_numbers_follow_the_declared_kind(make_mailer) -> None:
    """Defect 27: ``port: "587"``, ``timeout: 2.5`` and ``timeout: "7"`` are what they say."""
    plugin = Typed()
    mailer = make_mailer(typed_config(port='"587"', timeout="2.5", tls='"true"'), plugins={"typed": plugin})
    values = mailer.config.accounts["Rechnungsversand"].values
    assert (values["port"], values["timeout"], values["tls"]) == (587, 2.5, True)
    mailer = make_mailer(typed_config(timeout='"7"'), plugins={"typed": Typed()})
    assert mailer.config.accounts["Rechnungsversand"].values["timeout"] == 7.0


@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("port", '"587.5"', "keine ganze Zahl"),
        ("port", "true", "keine ganze Zahl"),
        ("timeout", "schnell", "keine Zahl"),
        ("tls", "vielleicht", "nicht true/false"),
    ],
)
def test_values_that_are_not_of_their_kind_are_refused(make_mailer, field, value, text) -> None:
    with pytest.raises(ConfigProblems) as err:
        make_mailer(typed_config(**{field: value}), plugins={"typed": Typed()})
    (problem,) = [p for p in err.value.problems if not p.warning]
    assert problem.key == f"accounts.Rechnungsversand.{field}" and text in problem.render("de")


def test_the_types_own_checks_run_when_a_field_has_a_problem_too(make_mailer) -> None:
    """Transport kit 2: every problem at once — a bad timeout does not hide the missing certificate."""
    with pytest.raises(ConfigProblems) as err:
        make_mailer(typed_config(timeout="schnell", mode="certificate", port="25"), plugins={"typed": Typed()})
    keys = sorted(p.key for p in err.value.problems if not p.warning)
    assert keys == [
        "accounts.Rechnungsversand.certificate",
        "accounts.Rechnungsversand.port",
        "accounts.Rechnungsversand.timeout",
    ]


def test_the_types_own_check_does_not_echo_a_field_problem(make_mailer) -> None:
    class Echo(Typed):
        @hookimpl
        def ccm_mail_account_types(self, register):  # type: ignore[no-untyped-def]
            def inner(t):  # type: ignore[no-untyped-def]
                register(
                    AccountType(
                        t.id,
                        t.label,
                        t.fields,
                        t.create_transport,
                        validate=lambda v: (
                            [("timeout", T("Zeitlimit fehlt", "timeout missing"))] if "timeout" not in v else []
                        ),
                    )
                )

            Typed.ccm_mail_account_types(self, inner)

    with pytest.raises(ConfigProblems) as err:
        make_mailer(typed_config(timeout="schnell"), plugins={"typed": Echo()})
    assert [p.render("de").split(": ", 2)[-1] for p in err.value.problems if not p.warning] == [
        "'schnell' ist keine Zahl"
    ]


def test_a_secret_value_is_never_repeated_in_a_problem(make_mailer) -> None:
    class SecretChoice(Typed):
        @hookimpl
        def ccm_mail_account_types(self, register):  # type: ignore[no-untyped-def]
            from ccm_mail_core.builtins.pickup_folder import PickupTransport

            register(
                AccountType(
                    "typed",
                    T("T", "T"),
                    (
                        Field("folder", T("Ordner", "Folder"), kind="path"),
                        Field("sender", T("A", "S"), kind="email"),
                        Field("pin", T("PIN", "PIN"), secret=True, kind="int"),
                    ),
                    PickupTransport,
                )
            )

    with pytest.raises(ConfigProblems) as err:
        make_mailer(typed_config(pin="Geheim-4711-x"), plugins={"typed": SecretChoice()})
    assert "Geheim-4711-x" not in str(err.value) and "Der Wert ist keine ganze Zahl" in err.value.render("de")
