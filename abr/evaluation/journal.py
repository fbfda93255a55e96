"""The resume journal of an evaluation: finished sessions, one JSON line each, so a killed run resumes.

``<out>/journal.jsonl`` starts with a header line ``{"journal": 1, "fingerprint": ...}``; every following
line is one finished session (its key, its identity hash, names and chunk outcomes, or the reason it failed;
floats round-trip exactly). Each line is
flushed as soon as the session finishes, so a killed run loses at most the sessions in flight; a torn last
line (the process died mid-write) is dropped on reload. Lines reach the disk itself (``fsync``) at least
every :data:`FSYNC_INTERVAL_S` seconds and when the journal is closed. The fingerprint hashes everything that determines
the results (agents, trace sets and trace samples, video, simulator config, QoE, seed): a journal of a
different evaluation is refused rather than mixed in, unless the caller asks to *reuse* it: then each
recorded session whose identity (:func:`session_id`: the agent, the trace set's name, the trace's and the video's
content, the simulator, QoE, seed and the session's own seed indices) is also a session of the new evaluation
is kept, and the rest dropped. That continues a run whose inputs were corrected (a bad trace removed, an
agent's parameter fixed). Failed sessions are recorded with their reason and played again on a resume. The
journal is deleted once the result files are written; the result files themselves are only ever written whole
(see :mod:`abr.common.atomic`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from abr.common.atomic import write_text_atomic
from abr.errors import ConfigError
from abr.evaluation.identity import agent_code, update_with_traces
from abr.evaluation.tasks import EvaluationJob, SessionFailure, SessionResult
from simulator.metrics import session_metrics
from simulator.records import ChunkOutcome
from traces.types import Video

logger = logging.getLogger(__name__)

JOURNAL_FILE = "journal.jsonl"
FSYNC_INTERVAL_S = 2.0
_VERSION = 1


def _quality_bytes(video: Video) -> bytes:
    """A video's per-chunk quality for the hashes (empty without one, so size-only videos hash as before)."""
    return b"" if video.ssim_db is None else b"ssim_db" + video.ssim_db.tobytes()


def fingerprint(job: EvaluationJob) -> str:
    """A hash of everything that determines the results of ``job``."""
    digest = hashlib.sha256()
    set_videos = job.set_videos or (0,) * len(job.trace_sets)
    digest.update(repr((job.agents, job.sim_config, job.qoe, job.seed, tuple(set_videos), job.core)).encode())
    digest.update(_models_hash(job))
    for video in job.videos:
        digest.update(repr((video.name, video.chunk_duration_s)).encode())
        digest.update(video.bitrates_bps.tobytes() + video.chunk_sizes_bits.tobytes() + _quality_bytes(video))
    for set_name, traces in job.trace_sets:
        digest.update(set_name.encode())
        update_with_traces(digest, traces)
    return digest.hexdigest()


def _models_hash(job: EvaluationJob) -> bytes:
    """The content of every model file the job's agents play, and of the code file of every ``py:`` agent: a
    retrained ``ppo`` or an edited policy is another evaluation."""
    digest = hashlib.sha256()
    for agent in job.agents:
        model, code = agent_code(agent)  # a user's policy (py:...): a changed file is another evaluation
        if model is not None:
            digest.update(agent.encode() + model)
        if code is not None:
            digest.update(agent.encode() + code.encode())
    return digest.digest()


def session_ids(job: EvaluationJob) -> dict[tuple[int, int, int], str]:
    """The identity hash of every session of ``job``, by task key: equal hashes play identically."""
    common = hashlib.sha256(repr((job.sim_config, job.qoe, job.seed, job.core, _VERSION)).encode()
                            + _models_hash(job)).digest()
    trace_hashes = [[_content_hash(t.name, t.times_s.tobytes() + t.throughput_bps.tobytes()) for t in traces]
                    for _, traces in job.trace_sets]
    video_hashes = [_content_hash(v.name, repr(v.chunk_duration_s).encode() + v.bitrates_bps.tobytes()
                                  + v.chunk_sizes_bits.tobytes() + _quality_bytes(v)) for v in job.videos]
    ids: dict[tuple[int, int, int], str] = {}
    for task in job.tasks():
        a, s, t = task.key
        video = video_hashes[job.set_videos[s] if job.set_videos else 0]
        digest = hashlib.sha256(common)
        digest.update(repr((job.agents[a], job.trace_sets[s][0], task.key)).encode())
        digest.update(trace_hashes[s][t] + video)
        ids[task.key] = digest.hexdigest()[:32]
    return ids


def _content_hash(name: str, content: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\0" + content).digest()


class Journal:
    """Append-only record of finished sessions (use as a context manager).

    Args:
        out_dir: the evaluation's output folder.
        job: the evaluation (its fingerprint guards the journal).
    """

    def __init__(self, out_dir: Path, job: EvaluationJob) -> None:
        self.path = Path(out_dir) / JOURNAL_FILE
        self.job = job
        self.fingerprint = fingerprint(job)
        self._handle: IO[str] | None = None
        self._synced_at = 0.0
        self._ids = session_ids(job)

    def load(self, *, reuse: bool = False) -> dict[tuple[int, int, int], SessionResult]:
        """The sessions already finished by an earlier, interrupted run of the same evaluation.

        Args:
            reuse: accept a journal of a different evaluation, keeping the sessions that are also sessions of
                this one (same identity, see :func:`session_ids`); the journal is rewritten for this evaluation.
        """
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8").split("\n")
        header = _parse(lines[0])
        if header is None or header.get("journal") != _VERSION:
            raise ConfigError(f"{self.path} is not an abr journal; delete it or choose another --out")
        same = header.get("fingerprint") == self.fingerprint
        if not same and not reuse:
            raise ConfigError(
                f"{self.path} holds an interrupted run of a different evaluation (other agents, traces, video, "
                "config or seed); rerun that command to finish it, pass --reuse-finished to keep its sessions that "
                "this run would play identically, --overwrite to discard it, or choose another --out"
            )
        done: dict[tuple[int, int, int], SessionResult] = {}
        kept: list[str] = []
        good_chars = len(lines[0]) + 1
        by_id = {session_id: key for key, session_id in self._ids.items()}
        for line in lines[1:]:
            record = _parse(line)
            if record is None:  # a torn last line, or the empty string after the final newline
                break
            good_chars += len(line) + 1
            key = _key(record["key"]) if same else by_id.get(str(record.get("id")))
            if key is None or "failed" in record:  # not a session of this run, or a failure to play again
                continue
            record["key"] = list(key)
            done[key] = self._result(record)
            kept.append(json.dumps(record, separators=(",", ":")))
        if same:
            with open(self.path, "r+", encoding="utf-8") as handle:  # drop a torn tail before appending
                handle.truncate(good_chars)
        else:
            header_line = json.dumps({"journal": _VERSION, "fingerprint": self.fingerprint}, separators=(",", ":"))
            write_text_atomic(self.path, "\n".join([header_line, *kept]) + "\n")
            logger.warning("reusing %d finished sessions of an earlier run in %s", len(done), self.path)
        logger.info("resuming: %d sessions already done in %s", len(done), self.path)
        return done

    def __enter__(self) -> Journal:
        is_new = not self.path.exists()
        self._handle = open(self.path, "a", encoding="utf-8")
        if is_new:
            self._write({"journal": _VERSION, "fingerprint": self.fingerprint})
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        try:
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as error:
            if exc is None:  # else the first error (already naming the journal) is the one to report
                raise OSError(error.errno, f"{error.strerror or error}: cannot write {self.path}; rerun the same "
                              "command to resume") from error
        finally:
            with contextlib.suppress(OSError):
                handle.close()

    def append(self, result: SessionResult | SessionFailure) -> None:
        """Record one finished (or failed) session (flushed to the operating system at once)."""
        record: dict[str, Any] = {"key": list(result.key), "id": self._ids[result.key], "agent": result.agent,
                                  "trace_set": result.trace_set, "trace": result.trace}
        if isinstance(result, SessionFailure):
            record["failed"] = result.reason
        else:
            record["outcomes"] = [list(o) for o in result.outcomes]
        self._write(record)

    def remove(self) -> None:
        """Delete the journal (the results are complete)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _write(self, record: dict[str, Any]) -> None:
        assert self._handle is not None, "use the journal as a context manager"
        try:
            self._handle.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._handle.flush()  # a killed process loses nothing flushed; fsync guards against a crashed machine
            now = time.monotonic()
            if now - self._synced_at >= FSYNC_INTERVAL_S:
                os.fsync(self._handle.fileno())
                self._synced_at = now
        except OSError as exc:  # a full disk, a file-size limit: name the file and say what is kept
            raise OSError(exc.errno, f"{exc.strerror or exc}: cannot write {self.path}; the sessions written before "
                          "are kept: make room and rerun the same command to resume") from exc

    def _result(self, record: dict[str, Any]) -> SessionResult:
        job = self.job
        key = tuple(int(k) for k in record["key"])
        outcomes = tuple(ChunkOutcome(*values) for values in record["outcomes"])
        video = job.video_of(key[1])
        metrics = session_metrics(outcomes, video, job.qoe, chunk_duration_s=video.chunk_duration_s)
        return SessionResult(record["agent"], record["trace_set"], record["trace"], metrics, outcomes,
                             (key[0], key[1], key[2]), video.name)


def _key(values: list[int]) -> tuple[int, int, int]:
    agent, trace_set, trace = (int(v) for v in values)
    return agent, trace_set, trace


def _parse(line: str) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None
