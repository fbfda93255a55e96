"""The ``abr`` command line (the ``abr`` entry point is :data:`app`); each command group has a module here."""

from abr.cli.main import app

__all__ = ["app"]
