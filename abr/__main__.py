"""``python -m abr``: the ``abr`` command line."""

from abr.cli import app

app(prog_name="abr")
