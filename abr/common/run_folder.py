"""One run per output folder: a record of what a run wrote, a lock while it runs, and deliberate overwrites.

Every command that writes results into an ``--out`` folder claims it with :class:`RunFolder`:

* ``<out>/.abr-run.json`` records the run: its kind (``"evaluate"``, ``"sessions simulate"``, ...), its
  command line, a fingerprint of everything that determines its results, its status (``"running"`` until it
  finishes, then ``"done"``) and the files it wrote (relative to ``<out>``; a run records each file before
  it writes it, so an interrupted run's partial outputs are known too).
* ``<out>/.abr-run.lock`` is held with ``flock`` while the run goes on. The operating system releases it when
  the process ends, however it ends (a SIGKILL never strands the folder), and a second run into the same
  folder is refused while the first holds it.

A folder is then claimed by these rules:

==================================  =========================================================================
the folder holds                    a new run
==================================  =========================================================================
nothing of abr's                    starts
this same run, finished             has nothing to do (:attr:`RunFolder.finished`); ``overwrite`` reruns it
this same run, interrupted          resumes (its journal keeps the finished work)
another run (finished or not)       is refused, naming that run, unless ``overwrite``: then the files that
                                    run recorded, and only those, are removed first
files the run would write, but      is refused, naming them (they are never removed: abr does not know
which no run recorded               whose they are)
==================================  =========================================================================
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shlex
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from abr.common.atomic import write_json_atomic
from abr.common.provenance import utc_timestamp
from abr.errors import ConfigError

logger = logging.getLogger(__name__)

RECORD_FILE = ".abr-run.json"
LOCK_FILE = ".abr-run.lock"
RUNNING, DONE = "running", "done"
_VERSION = 1


class FolderInUseError(ConfigError):
    """Another process holds the output folder's lock (a run into that folder is in progress)."""


@dataclass(slots=True)
class RunRecord:
    """What ``.abr-run.json`` says about the run that claimed a folder."""

    kind: str
    fingerprint: str
    command: str | None
    status: str = RUNNING
    outputs: list[str] = field(default_factory=list)
    started_utc: str = ""
    finished_utc: str | None = None
    pid: int = 0
    #: sessions (or other units of work) that failed in a finished run; its exit code is then 1.
    failed: int = 0
    version: int = _VERSION

    def describe(self) -> str:
        """One phrase naming the run, for messages."""
        state = "finished" if self.status == DONE else "interrupted or still running"
        what = f"`{self.command}`" if self.command else f"an `abr {self.kind}` run"
        return f"the results of {what} ({state}, started {self.started_utc or '?'})"


def read_record(folder: str | Path) -> RunRecord | None:
    """The run record of ``folder``, or ``None`` when it has none.

    Raises:
        ConfigError: the record exists but is not one abr wrote (names the file and the fix).
    """
    path = Path(folder) / RECORD_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise ValueError("not a version-1 abr run record")
        record = RunRecord(**data)
        if not isinstance(record.outputs, list) or not all(isinstance(o, str) for o in record.outputs):
            raise ValueError("its outputs are not a list of file names")
        return record
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not an abr run record ({exc}); delete it (and the results beside it) or "
                          "choose another --out") from None


class RunFolder:
    """A run's claim on its output folder (a context manager; see the module docstring).

    Args:
        path: the output folder (created if missing, with its parents).
        kind: the command, e.g. ``"evaluate"``.
        fingerprint: a hash of everything that determines the run's results.
        command: the command line, recorded and quoted in messages.
        may_write: names (relative to ``path``) the run may write: an existing one that no run recorded is
            refused rather than replaced.
        overwrite: replace another run's results (or rerun this finished one), removing only the files the
            earlier run recorded.
        reuse: take over an interrupted run of the same kind but other inputs (the caller keeps the part of
            its work that still holds, e.g. :meth:`abr.evaluation.journal.Journal.load` with ``reuse``).
        option: the command-line spelling of ``overwrite``, for messages (``--overwrite``).
        reuse_option: the command-line spelling of ``reuse``, where the command has it (named in messages).

    Attributes:
        finished: the record of this same run, already finished (nothing to do), else ``None``.
        resumed: whether this same run was interrupted before and is now resumed.
        adopted: whether an interrupted run of other inputs is taken over (``reuse``).
    """

    def __init__(self, path: str | Path, *, kind: str, fingerprint: str, command: str | None = None,
                 may_write: Iterable[str] = (), overwrite: bool = False, reuse: bool = False,
                 option: str = "--overwrite", reuse_option: str | None = None) -> None:
        self.path = Path(path)
        self.kind = kind
        self.fingerprint = fingerprint
        self.command = command
        self.may_write = tuple(may_write)
        self.overwrite = overwrite
        self.reuse = reuse
        self.option = option
        self.reuse_option = reuse_option
        self.finished: RunRecord | None = None
        self.resumed = False
        self.adopted = False
        self.record: RunRecord | None = None
        self._lock: IO[str] | None = None
        self._created = False

    # -- claiming --------------------------------------------------------------------------------------------

    def __enter__(self) -> RunFolder:
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {str(self.path)!r} is an existing file; give a folder for the results")
        self._created = not self.path.exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {str(self.path)!r} cannot be created ({exc.strerror or exc}); choose a "
                              "folder you can write to") from None
        self._acquire_lock()
        try:
            self._claim()
        except BaseException:
            self._release_lock()
            if self._created:
                (self.path / LOCK_FILE).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    self.path.rmdir()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None and self.record is not None and self.record.status != DONE and not any(
                (self.path / name).exists() for name in self.record.outputs):
            # The run failed before writing anything (e.g. its inputs were refused): leave nothing behind.
            (self.path / RECORD_FILE).unlink(missing_ok=True)
            (self.path / LOCK_FILE).unlink(missing_ok=True)
            if self._created:
                with contextlib.suppress(OSError):
                    self.path.rmdir()
        self._release_lock()

    def _acquire_lock(self) -> None:
        import fcntl

        try:
            handle = open(self.path / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 (held until __exit__)
        except OSError as exc:
            raise ConfigError(f"--out {str(self.path)!r} is not writable ({exc.strerror or exc}); choose a folder "
                              "you can write to") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            holder = _safe_record(self.path)
            who = f" ({holder.describe()}, pid {holder.pid})" if holder else ""
            raise FolderInUseError(f"{self.path} is in use by another abr run{who}; wait for it to end or choose "
                                   "another --out") from None
        self._lock = handle

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the flock
            self._lock = None

    def _claim(self) -> None:
        previous = read_record(self.path)
        same = previous is not None and previous.fingerprint == self.fingerprint and previous.kind == self.kind
        if previous is not None and same and not self.overwrite:
            if previous.status == DONE:
                self.finished = previous
                self.record = previous
                return
            self.resumed = True
        elif previous is not None and self.reuse and not self.overwrite:
            if previous.status == DONE or previous.kind != self.kind:
                raise ConfigError(f"{self.path} holds {previous.describe()}; {self.reuse_option} continues only an "
                                  f"interrupted run of the same command; pass {self.option} to replace it")
            self.adopted = True
            previous.fingerprint, previous.command = self.fingerprint, self.command
        elif previous is not None and not self.overwrite:
            hint = ""
            if previous.status != DONE:
                hint = "rerun that command to finish it, "
                if self.reuse_option and previous.kind == self.kind:
                    hint += f"pass {self.reuse_option} to keep its finished work that this run would redo alike, "
            raise ConfigError(
                f"{self.path} holds {previous.describe()}; {hint}pass {self.option} to replace them (only the "
                f"{len(previous.outputs)} files that run recorded are removed), or choose another --out"
            )
        elif previous is not None:
            self._remove_outputs(previous)
            previous = None
        recorded = set(previous.outputs) if previous is not None else set()
        strangers = [name for name in self.may_write if name not in recorded and (self.path / name).exists()]
        if strangers:
            raise ConfigError(
                f"{self.path} already holds {', '.join(strangers)}, which this run would replace, and no abr run "
                "recorded them (abr removes only files a run recorded); move them away or choose another --out"
            )
        if previous is not None:
            self.record = previous
            self.record.pid = os.getpid()
        else:
            self.record = RunRecord(self.kind, self.fingerprint, self.command, RUNNING, [], utc_timestamp(),
                                    None, os.getpid())
        self._save()

    def _remove_outputs(self, previous: RunRecord) -> None:
        root = self.path.resolve()
        removed = 0
        folders: set[Path] = set()
        for name in previous.outputs:
            target = (self.path / name).resolve()
            if root not in target.parents:  # a record abr did not write: never reach outside the folder
                raise ConfigError(f"{self.path / RECORD_FILE} lists {name!r}, outside the folder; delete the record "
                                  "and the results by hand")
            if target.is_dir():  # a folder the run made for itself (e.g. abr play's policy/)
                shutil.rmtree(target)
                removed += 1
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
                removed += 1
            folders.update(p for p in target.parents if root in p.parents)
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only folders left empty
        (self.path / RECORD_FILE).unlink(missing_ok=True)
        logger.info("--overwrite: removed %d files of %s", removed, previous.describe())

    # -- while running ---------------------------------------------------------------------------------------

    def will_write(self, *paths: str | Path) -> None:
        """Record files before writing them (paths relative to the folder, or inside it)."""
        assert self.record is not None, "use the RunFolder as a context manager"
        root = self.path.resolve()
        added = False
        for path in paths:
            name = Path(path).resolve().relative_to(root).as_posix() if Path(path).is_absolute() else Path(
                path).as_posix()
            if name not in self.record.outputs:
                self.record.outputs.append(name)
                added = True
        if added:
            self._save()

    def done(self, *, failed: int = 0) -> None:
        """Mark the run finished (``failed``: units of work that failed; a rerun then exits as this one did)."""
        assert self.record is not None, "use the RunFolder as a context manager"
        self.record.status = DONE
        self.record.finished_utc = utc_timestamp()
        self.record.outputs = [name for name in self.record.outputs if (self.path / name).exists()]
        self.record.failed = int(failed)
        self._save()

    def _save(self) -> None:
        assert self.record is not None
        write_json_atomic(self.path / RECORD_FILE, asdict(self.record))


def _safe_record(folder: Path) -> RunRecord | None:
    try:
        return read_record(folder)
    except ConfigError:
        return None


def claim_for_command(out: str | Path, *, kind: str, command: Sequence[str], may_write: Iterable[str],
                      overwrite: bool, inputs: Iterable[str | Path] = ()) -> RunFolder:
    """A :class:`RunFolder` for a command whose results are determined by its settings and some input files.

    The fingerprint hashes the command line (less ``--out`` and its value) and the content of ``inputs``.
    """
    out_text = str(out)
    settings = [a for a in command if a != out_text]
    digest = hashlib.sha256(repr(settings).encode())
    for path in inputs:
        file = Path(path)
        files = sorted(p for p in file.rglob("*") if p.is_file()) if file.is_dir() else [file]
        for f in files:
            digest.update(str(f.relative_to(file) if file.is_dir() else f.name).encode())
            digest.update(hashlib.sha256(f.read_bytes()).digest())
    return RunFolder(out, kind=kind, fingerprint=digest.hexdigest(), command=shlex.join(command), may_write=may_write,
                     overwrite=overwrite)


__all__ = ["DONE", "LOCK_FILE", "RECORD_FILE", "RUNNING", "FolderInUseError", "RunFolder", "RunRecord",
           "claim_for_command", "read_record"]

