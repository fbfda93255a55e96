"""The ``abr`` command line (the ``abr`` entry point is :data:`app`); each command group has a module here."""

from abr.cli.app import app

__all__ = ["app"]
