"""Evaluation: the harness (every agent on every trace), the engines it runs sessions on (this process, local
workers, Ray), the resume journal, statistics and paired comparisons, the report, the generalisation protocol
and the engine benchmarks.

* :mod:`abr.evaluation.harness`: :func:`evaluate` and its result files;
* :mod:`abr.evaluation.tables`: the ``sessions.csv`` / ``chunks.csv`` schema (the real player writes it too);
* :mod:`abr.evaluation.tasks`: the task and result types every engine shares;
* :mod:`abr.evaluation.engines`: the serial, local-process and Ray engines;
* :mod:`abr.evaluation.journal`: finished sessions, so a killed run resumes;
* :mod:`abr.evaluation.stats`, :mod:`abr.evaluation.compare`: bootstrap summaries, paired differences, % of
  the optimum;
* :mod:`abr.evaluation.report`: ``report.md`` and its plots;
* :mod:`abr.evaluation.generalization` (with ``_stats`` and ``_report``): the generalisation protocol;
* :mod:`abr.evaluation.bench`: chunk-steps per second of the engines.
"""

from abr.evaluation.harness import EvaluationResult, evaluate

__all__ = ["EvaluationResult", "evaluate"]
