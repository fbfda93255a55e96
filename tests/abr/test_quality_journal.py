"""The evaluation journal keys a video by its per-chunk quality too (``Video.ssim_db``)."""

from __future__ import annotations

from abr.evaluation.journal import fingerprint, session_ids
from abr.evaluation.tasks import EvaluationJob
from simulator.config import preset
from traces.types import Video

from ..simulator.test_qoe_ssim import QUALITY, SSIM, _trace, _video


def _job(video: Video) -> EvaluationJob:
    return EvaluationJob(("bba",), (("s", (_trace(),)),), (video,), preset("pensieve"), SSIM, 0)


def test_a_remade_quality_table_is_another_evaluation() -> None:
    # Other SSIM values must not resume the old sessions; equal tables hash equal.
    other = QUALITY.copy()
    other[2, 1] += 0.5
    assert fingerprint(_job(_video())) == fingerprint(_job(_video()))
    assert fingerprint(_job(_video())) != fingerprint(_job(_video(other))) != fingerprint(_job(_video(None)))
    assert session_ids(_job(_video())) != session_ids(_job(_video(other)))
