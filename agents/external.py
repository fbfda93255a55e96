"""Agents from the user's own code, by import path: ``py:MODULE:NAME`` or ``py:path/to/file.py:NAME``.

``NAME`` is a class or a factory in the module, called without arguments for every policy made; what it returns
must follow the :class:`agents.base.Policy` protocol (``reset(rng)`` and ``select(context) -> int``). The prefix
``py:`` cannot clash with the registry's ``name:value`` agents (no registry agent is called ``py``).

Worker processes and Ray workers make agents by name (:func:`agents.registry.make_agent`), so they import the
code the same way: a module name must be importable there (on ``PYTHONPATH``, or in the working directory,
which is tried last), and a file path is loaded from the file. :func:`code_file` gives the file the agent's code
comes from; the evaluation journal hashes its content, so a changed policy is another evaluation, never resumed
as the old one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from agents.base import Policy
from simulator.errors import ConfigError

PREFIX = "py:"
_FORM = "py:MODULE:NAME or py:path/to/file.py:NAME (a class or factory of a Policy)"


def is_external(name: str) -> bool:
    """Whether an agent name is an import path (``py:...``).

    >>> is_external("py:my_module:MyPolicy"), is_external("bba"), is_external("PY:m:P")
    (True, False, True)
    """
    return name.strip().lower().startswith(PREFIX)


def split(name: str) -> tuple[str, str]:
    """``(module or file, attribute)`` of ``py:...``; the attribute is after the last colon.

    >>> split("py:my_module:MyPolicy")
    ('my_module', 'MyPolicy')
    >>> split("py:C:/code/p.py:Mine")
    ('C:/code/p.py', 'Mine')
    """
    body = name.strip()[len(PREFIX):]
    where, sep, attribute = body.rpartition(":")
    if not sep or not where.strip() or not attribute.strip().isidentifier():
        raise ConfigError(f"agent {name.strip()!r}: give {_FORM}")
    return where.strip(), attribute.strip()


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def code_file(name: str) -> Path | None:
    """The file the code of a ``py:`` agent comes from (``None`` for other agents or a module without a file).

    Raises:
        ConfigError: the module or file cannot be found.
    """
    if not is_external(name):
        return None
    where, _ = split(name)
    if _is_file(where):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"agent {name.strip()!r}: no file {str(path)!r}; give {_FORM}")
        return path
    module = _import_module(name, where)
    origin = getattr(module, "__file__", None)
    return Path(origin).resolve() if origin else None


def code_hash(name: str) -> str | None:
    """The SHA-256 of the agent's code file (``None`` when there is none)."""
    file = code_file(name)
    return None if file is None else hashlib.sha256(file.read_bytes()).hexdigest()


def _import_module(name: str, where: str) -> ModuleType:
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as error:
        if error.name != where.split(".")[0] and error.name != where:
            raise ConfigError(f"agent {name.strip()!r}: importing {where!r} failed: {error}") from None
    cwd = str(Path.cwd())
    if cwd not in sys.path:  # the working directory, as `python -m` would have it
        sys.path.append(cwd)
        try:
            return importlib.import_module(where)
        except ModuleNotFoundError:
            pass
    raise ConfigError(f"agent {name.strip()!r}: no module {where!r} can be imported; put it on PYTHONPATH or give "
                      f"its file, as py:path/to/{where.rsplit('.', 1)[-1]}.py:NAME")


def _load_file(name: str, path: Path) -> ModuleType:
    module_name = "abr_external_" + hashlib.sha256(str(path).encode()).hexdigest()[:16]
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"agent {name.strip()!r}: {str(path)!r} cannot be loaded as Python code")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        raise ConfigError(f"agent {name.strip()!r}: running {str(path)!r} failed: "
                          f"{type(error).__name__}: {error}") from None
    return module


def make_external(name: str) -> Policy:
    """A new policy from ``py:MODULE:NAME`` or ``py:FILE.py:NAME``; its ``name`` is the agent name as given.

    Raises:
        ConfigError: the module, file or attribute is missing, calling it fails, or the result is not a Policy.
    """
    where, attribute = split(name)
    if _is_file(where):
        file = code_file(name)
        assert file is not None
        module = _load_file(name, file)
    else:
        module = _import_module(name, where)
    factory = getattr(module, attribute, None)
    if factory is None or not callable(factory):
        raise ConfigError(f"agent {name.strip()!r}: {where!r} has no class or function {attribute!r}")
    try:
        policy = factory()
    except Exception as error:
        raise ConfigError(f"agent {name.strip()!r}: {attribute}() failed: {type(error).__name__}: {error}") from None
    if not (callable(getattr(policy, "select", None)) and callable(getattr(policy, "reset", None))):
        raise ConfigError(f"agent {name.strip()!r}: {attribute}() returned a {type(policy).__name__}, which has no "
                          "select(context) and reset(rng) methods (agents.base.Policy)")
    try:
        policy.name = name.strip()
    except AttributeError:
        pass  # a read-only name: tables use the agent name given anyway
    return policy
