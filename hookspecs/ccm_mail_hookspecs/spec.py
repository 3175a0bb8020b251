"""The hook specifications: the contract between the ccm-mail host and its plugins.

Every hook is called with keyword arguments; an implementation may accept any subset of them.
Call order follows pluggy: last registered first, ``tryfirst``/``trylast`` adjust it. Built-in
behaviour (the pickup-folder transport, the standard placeholders, the terminal confirmation)
is registered through these same hooks.

Error policy per hook is stated in each docstring. In short: registration hooks (account types,
placeholders, commands) fail loudly,
``prepare`` and ``confirm`` stop the send on an exception (nothing is sent), ``sent`` and
``failed`` run every implementation and report failures afterwards. The host calls the
implementations of ``prepare``, ``sent`` and ``failed`` one by one (so it can name the plugin
that failed); ``wrapper=True`` implementations are therefore not supported on those three.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

from . import PROJECT_NAME

if TYPE_CHECKING:
    from .accounts import AccountType
    from .commands import Command
    from .context import Cancel, Placeholder, Preview, SendContext
    from .errors import CcmMailError
    from .message import Message
    from .transport import Receipt, Status

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def ccm_mail_account_types(register: Callable[[AccountType], None]) -> None:
    """Contribute account types (*Typ* in the account form), e.g. "Office 365".

    Call ``register(AccountType(...))`` once per type. The host builds its registry from all
    plugins when it starts.

    :param register: adds a type; raises :class:`~ccm_mail_hookspecs.errors.PluginError` when the
        id is already taken by another plugin (duplicates fail loudly, naming both plugins).

    Result: none; the return value is ignored. Errors: an exception stops the host's start-up
    with a :class:`PluginError` naming the plugin.

    .. versionadded:: 1.0
    """


@hookspec
def ccm_mail_placeholders() -> Iterable[Placeholder] | None:
    """Contribute template placeholders (*Platzhalter*), e.g. ``#extRechnungsNr#``.

    Return an iterable of :class:`~ccm_mail_hookspecs.context.Placeholder`, or None to abstain.
    A placeholder limits itself to purposes through ``Placeholder.purposes``.

    Result: the host merges all results into one name → placeholder mapping. A name given by two
    plugins is an error naming both. Names are case-sensitive, as in AbSys.

    .. versionadded:: 1.0
    """


@hookspec
def ccm_mail_commands(register: Callable[[Command], None]) -> None:
    """Contribute subcommands of ``ccm-mail`` (the way llm's ``register_commands`` does), e.g.
    ``ccm-mail serve`` from the ``ccm-mail-server`` distribution.

    Call ``register(Command(...))`` once per command (:class:`~ccm_mail_hookspecs.commands.Command`:
    name, help text, a function adding its arguments, the function that runs it).

    When: while the command line is parsed, and only when it names a command that is not
    built in, or asks for the overall help (so ``ccm-mail send`` never pays for it). The plugin's
    module is imported for this: keep it light and import heavy libraries inside ``run``.
    The configuration's ``plugins.disable`` is honoured.

    :param register: adds a command; raises :class:`~ccm_mail_hookspecs.errors.PluginError` when
        the name is a built-in command or was registered by another plugin (duplicates fail
        loudly, naming both).

    Result: none; the return value is ignored. Errors: an exception stops the command line
    with a :class:`PluginError` naming the plugin (exit code 2); nothing is sent.

    .. versionadded:: 1.3
    """


@hookspec
def ccm_mail_configure(settings: Mapping[str, Any], lang: str) -> None:
    """Receive this plugin's own settings from the ``plugins.settings.<plugin name>`` section.

    Called once per plugin at start-up, before anything is sent, with only that plugin's mapping
    (empty when the YAML has none). Validate it here: raise
    :class:`~ccm_mail_hookspecs.errors.ConfigError` listing every problem; the host reports it
    with the plugin's name and refuses to send.

    Result: none.

    .. versionadded:: 1.0
    """


@hookspec
def ccm_mail_prepare(message: Message, context: SendContext) -> Cancel | None:
    """Change a rendered message before it is confirmed and sent (e.g. add an archive BCC, a
    header), or stop it.

    May mutate ``message`` in place.

    Result: :class:`~ccm_mail_hookspecs.context.Cancel` to stop the send, None to let it go on.
    All implementations run (later ones see earlier changes); one Cancel is enough to stop it.
    The cancel is journaled (status ``cancelled``) with its reason. Afterwards the message is
    checked again like the caller's own input (:meth:`Message.check`).

    Errors: an exception stops the send **before anything is journaled**; nothing is sent. A
    :class:`~ccm_mail_hookspecs.errors.CcmMailError` reaches the caller as it is, any other
    exception as a :class:`~ccm_mail_hookspecs.errors.PluginError` naming the plugin.

    .. versionadded:: 1.0
    """


@hookspec(firstresult=True)
def ccm_mail_confirm(preview: Preview) -> bool | None:
    """The confirmation dialog before sending ("Wirklich senden?").

    Result (``firstresult``): the first implementation returning True (send) or False (do not
    send) decides; return None to leave the decision to others. The built-in default (``trylast``)
    answers True for ``--yes``, asks on the terminal when one is attached, and otherwise
    abstains. When nobody answers the host refuses to send and says to use ``--yes`` or a host
    plugin. A host such as AbSys implements this to show its own dialog.

    For a batch, ``preview.message`` is a sample and ``preview.extra["count"]`` the number of
    messages; one answer covers the whole batch.

    Errors: an exception counts as "no"; nothing is sent.

    .. versionadded:: 1.0
    """


@hookspec
def ccm_mail_sent(message: Message, receipt: Receipt, context: SendContext) -> None:
    """Record a sent message, e.g. store the *Versanddatum* (``receipt.sent_at``) on the invoice.

    Called after the journal says ``sent``. Every implementation runs even if one raises; the
    host then reports each failure (with the plugin's name) but the message stays recorded as
    sent and is never sent again because of it.

    Result: none.

    .. versionadded:: 1.0
    """


@hookspec
def ccm_mail_failed(message: Message, error: CcmMailError, status: Status, context: SendContext) -> None:
    """React to a message that was not sent (``status`` failed) or whose outcome is unknown
    (``status`` unknown: do **not** treat it as unsent).

    Same error policy as :func:`ccm_mail_sent`: every implementation runs; failures are reported.

    Result: none.

    .. versionadded:: 1.0
    """
