"""Helpers every part of ``abr`` uses: inputs by name (:mod:`abr.common.inputs`), atomic writes
(:mod:`abr.common.atomic`), run provenance (:mod:`abr.common.provenance`), output-folder claims
(:mod:`abr.common.run_folder`), memory estimates (:mod:`abr.common.memory`) and figures
(:mod:`abr.common.plotting`)."""
