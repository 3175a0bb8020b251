"""Who holds a claim: the process that moved a journal row to ``sending``.

A row in ``sending`` whose owner is gone was interrupted mid-send and must be settled by a lookup
at the provider. The owner is host + process id + the process's creation time (psutil, on
Windows and Linux alike): a process id reused after the owner died, or after a reboot, belongs
to a process created later, so it is never taken for the owner. ``os.kill(pid, 0)`` is never
used: on Windows signal 0 is ``CTRL_C_EVENT`` and would interrupt a console process group.

The host is the machine's name, or ``CCM_MAIL_HOST_ID`` when set (cloned virtual machines that
share a name; several "hosts" on one test machine). On a journal shared by several machines
(PostgreSQL) another host's process cannot be looked at: there the claim's lease decides
(:meth:`ccm_mail_core.journal.Journal.owner_alive`), and this module only names the owner.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import psutil

#: overrides the host name in claims (see the module docstring)
HOST_ENV = "CCM_MAIL_HOST_ID"

#: creation times are compared with this tolerance (psutil rounds differently per platform)
_SAME_START = 1.0


@dataclass(frozen=True, slots=True)
class Owner:
    host: str
    pid: int
    started: float = 0.0  #: process creation time (seconds since the epoch); 0 when unknown

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(host_name(), pid, psutil.Process(pid).create_time())

    def format(self) -> str:
        return f"{self.host}:{self.pid}:{self.started:.2f}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """Read a journal's owner column: ``host:pid:started``, or the ``host:boot:pid`` of
        journals written before 1.1 of the core (no creation time known)."""
        if not text:
            return None
        host, _, rest = text.partition(":")
        first, _, last = rest.rpartition(":")
        try:
            if "." in last:  # host:pid:started
                return cls(host, int(first), float(last))
            return cls(host, int(last))  # host:boot:pid
        except ValueError:
            return cls(host, -1)

    def alive(self) -> bool:
        """Whether the owning process still runs. Another host's process cannot be checked from
        here: it counts as alive, so only the operator touches its rows."""
        if self.host != host_name():
            return True
        if self.pid <= 0:
            return False
        try:
            started = psutil.Process(self.pid).create_time()
        except psutil.NoSuchProcess:
            return False
        except psutil.AccessDenied:  # a process with that id exists and cannot be inspected: assume it
            return True
        return not self.started or abs(started - self.started) < _SAME_START


def host_name() -> str:
    """This machine as claims name it (``:`` would split the owner column, so it is replaced)."""
    return (os.environ.get(HOST_ENV) or socket.gethostname()).replace(":", "_")


def alive(owner: str | None) -> bool:
    """Whether the owner recorded in a journal row still runs (no owner: nobody holds it)."""
    parsed = Owner.parse(owner)
    return parsed is not None and parsed.alive()


_current: Owner | None = None


def current() -> Owner:
    """This process, as recorded in the rows it claims (looked up again after a fork)."""
    global _current
    if _current is None or _current.pid != os.getpid() or _current.host != host_name():
        _current = Owner.current()
    return _current
