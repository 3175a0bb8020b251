"""The guide's example, as a third party meets it: ccm-mail-hookspecs and ccm-mail-core built as
wheels from this worktree and installed (not editable) into a fresh virtual environment, the
guide's "Try it" commands run in the written-out package, then the kit run on deliberately broken
copies of its transport.

It takes 20-30 s, nearly all of it pip. :meth:`CleanVenvRun.start` runs it in a background thread
as soon as the test that needs it has been collected (see ``conftest.py``), at a lower CPU priority,
so it fills the time the rest of the suite leaves idle instead of slowing it; the test then only
collects the report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from guide_example import MUTANTS, REPO, Mutant, commands, write_mutant, write_package

#: a step that takes longer than this is stuck (pip without a reachable index, say)
STEP_TIMEOUT = 600


@dataclass
class Step:
    what: str
    returncode: int
    output: str

    def __str__(self) -> str:
        return f"$ {self.what}  (exit {self.returncode})\n{self.output}"


@dataclass
class Report:
    setup: list[Step] = field(default_factory=list)  #: wheels, venv, installing them
    guide: list[Step] = field(default_factory=list)  #: the guide's commands, in order
    mutants: dict[str, Step] = field(default_factory=dict)
    venv: Path | None = None
    error: str = ""


class CleanVenvRun:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.report = Report()
        self._thread = threading.Thread(target=self._run, name="guide-clean-venv", daemon=True)
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen[str]] = []
        self._stopped = False

    def start(self) -> CleanVenvRun:
        if not self._thread.is_alive() and not self._thread.ident:
            self._thread.start()
        return self

    def result(self) -> Report:
        self.start()
        self._thread.join()
        return self.report

    def stop(self) -> None:
        """End the processes this run started (the session is over before it finished)."""
        with self._lock:
            self._stopped = True
            for process in self._processes:
                if process.poll() is None:
                    process.kill()

    # -- the run ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._steps()
        except Exception as exc:  # noqa: BLE001 - reported by the test, with the steps so far
            self.report.error = f"{type(exc).__name__}: {exc}"

    def _steps(self) -> None:
        work = self.workdir
        src = work / "src"
        shutil.copytree(REPO / "hookspecs", src / "hookspecs", ignore=_IGNORE)
        (src / "core").mkdir(parents=True)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(REPO / name, src / "core" / name)
        shutil.copytree(REPO / "ccm_mail_core", src / "core" / "ccm_mail_core", ignore=_IGNORE)
        wheels = work / "wheels"
        venv = self.report.venv = work / "venv"
        self._setup(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "-w",
                str(wheels),
                str(src / "hookspecs"),
                str(src / "core"),
            ],
            "build the wheels",
        )
        self._setup([sys.executable, "-m", "venv", str(venv)], "create a fresh venv")
        python = _bin(venv, "python")
        hookspecs = next(wheels.glob("ccm_mail_hookspecs-*.whl"))
        core = next(wheels.glob("ccm_mail_core-*.whl"))
        self._setup(
            [str(python), "-m", "pip", "install", "--quiet", str(hookspecs), f"{core}[kit]"],
            "install the wheels (not editable)",
        )
        self._setup(
            [
                str(python),
                "-c",
                "import ccm_mail_core, ccm_mail_hookspecs; "
                "print(ccm_mail_core.__file__); print(ccm_mail_hookspecs.__file__)",
            ],
            "where the packages are",
        )
        package = write_package(work)
        env = _env(venv)
        for command in commands():
            step = self._call(command, cwd=package, env=env, shell=True)
            self.report.guide.append(step)
            if step.returncode != 0 and command.startswith("pip"):
                return
        mutants = [(m, write_mutant(package, m, work / "mutants")) for m in MUTANTS]
        with ThreadPoolExecutor(2) as pool:  # two at a time: the rest of the suite runs meanwhile
            runs = pool.map(lambda pair: self._mutant(python, env, *pair), mutants)
            self.report.mutants = dict(zip((m.name for m in MUTANTS), runs, strict=True))

    def _mutant(self, python: Path, env: dict[str, str], mutant: Mutant, root: Path) -> Step:
        # the mutant's folder first on sys.path: it shadows the installed ccm_mail_acme
        return self._call(
            [
                str(python),
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/test_acme_conformance.py",
                "-k",
                "http_fault or failure_is_public",
            ],
            cwd=root,
            env={**env, "PYTHONPATH": str(root)},
            what=f"pytest on {mutant.name}",
        )

    def _setup(self, argv: list[str], what: str) -> None:
        step = self._call(argv, cwd=self.workdir, env=_env(None), what=what)
        self.report.setup.append(step)
        if step.returncode != 0:
            raise RuntimeError(f"{what} failed")

    def _call(
        self, argv: list[str] | str, *, cwd: Path, env: dict[str, str], shell: bool = False, what: str = ""
    ) -> Step:
        with self._lock:
            if self._stopped:
                raise RuntimeError("stopped")
            process = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                shell=shell,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                creationflags=_LOW,
            )
            _lower_priority(process)
            self._processes.append(process)
        try:
            output, _ = process.communicate(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            output += f"\n[killed after {STEP_TIMEOUT} s]"
        return Step(what or (argv if isinstance(argv, str) else " ".join(argv)), process.returncode, output)


_IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".ruff_cache")
#: Windows: start below normal priority; POSIX: lowered right after the start (see below)
_LOW = getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0)


def _lower_priority(process: subprocess.Popen[str]) -> None:
    """POSIX: nice 19, set on the child at once (its own children inherit it). Not through
    preexec_fn, which may deadlock in a process with threads, as pytest's is."""
    if hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, process.pid, 19)
        except OSError:  # it may have finished already
            pass


def _bin(venv: Path, name: str) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / (name + (".exe" if os.name == "nt" else ""))


def _env(venv: Path | None) -> dict[str, str]:
    """This environment without the traces of the test venv: no VIRTUAL_ENV, no PYTHONPATH, no
    plugin switch of the host's tests, and the fresh venv (if any) first on PATH, as after
    ``activate``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CCM_MAIL_LOAD_PLUGINS")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_COMPILE"] = "1"  # byte-compiling every installed file costs more than it saves here
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = str(_bin(venv, "python").parent) + os.pathsep + env.get("PATH", "")
    return env
