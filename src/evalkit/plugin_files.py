"""Importing plugins: the Python files or importable modules a run config lists under ``plugins:``.

An entry is a module name (``my_lab.codecs``: letters, digits, ``_`` and dots, not ending in ``.py``, no ``/``)
or else a file path (``my_codec.py``, ``plugins/codec.py``). One file or module may define codec families
(``FAMILIES``, see :mod:`evalkit.codecs.plugins`), metrics (``METRICS``, see :mod:`evalkit.metrics.plugins`), or
both. Each is imported once per process and content: the codec and metric registries read the same module
object. This module imports nothing from evalkit, so both may use it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from evalkit.errors import UserError

#: What a plugin file defines (at least one of them).
PLUGIN_NAMES = ("FAMILIES", "METRICS")
MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_MISSING = ("defines no FAMILIES (codec families: a CodecFamily, a list of them, or a callable returning them) and "
            "no METRICS (metric plugins: a MetricPlugin, a list of them, or a callable returning them)")


class PluginError(UserError, ValueError):
    """A plugin that cannot be used; the message is one line naming the plugin (file or entry point)."""


@dataclass(frozen=True)
class PluginFile:
    """An imported plugin: its resolved ``path``, the SHA-256 of its code, and the module.

    Attributes:
        path: the file (a module plugin's ``__file__``; a namespace package's first folder).
        sha256: of the file's bytes; a package's: of every ``.py`` file below its folders, with their paths.
        module: the imported module.
        module_name: the name it was imported by, for a module plugin (``""``: a plugin file).
    """

    path: Path
    sha256: str
    module: ModuleType
    module_name: str = ""

    @property
    def key(self) -> str:
        """What a plugin is known by in this process: the module name, or the resolved file path."""
        return self.module_name or str(self.path)


def is_module_name(entry: str | Path) -> bool:
    """Whether a ``plugins:`` entry names an importable module rather than a file.

    >>> is_module_name("my_lab.codecs"), is_module_name("my_codec.py"), is_module_name("plugins/codec")
    (True, False, False)
    """
    return isinstance(entry, str) and not entry.endswith(".py") and MODULE_NAME.fullmatch(entry) is not None


def import_plugin(entry: str | Path) -> PluginFile:
    """Import a ``plugins:`` entry: a module name (:func:`import_plugin_module`) or a file (:func:`import_plugin_file`).

    Raises:
        PluginError: one line naming the entry and the problem.
    """
    return import_plugin_module(entry) if is_module_name(entry) else import_plugin_file(entry)


def _code_sha256(module: ModuleType) -> tuple[Path, str]:
    """A module's file and the SHA-256 of its code: a package's every ``.py`` file, in path order."""
    folders = [Path(p) for p in getattr(module, "__path__", ())]
    if not folders:
        path = Path(module.__file__).resolve()
        return path, hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for folder in folders:
        for file in sorted(folder.rglob("*.py")):
            digest.update(f"{file.relative_to(folder)}\n".encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return Path(module.__file__ or folders[0]).resolve(), digest.hexdigest()


def import_plugin_module(name: str) -> PluginFile:
    """Import the plugin module ``name`` (from ``sys.path``, as ``import name`` would).

    Raises:
        PluginError: a module that is not found or fails to import, or that defines neither ``FAMILIES`` nor
            ``METRICS``; the message names the module.
    """
    where = f"plugin module {name}"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name and not name.startswith(f"{exc.name}."):  # the module's own import of another
            raise PluginError(f"{where}: import failed: {type(exc).__name__}: {exc}") from None
        raise PluginError(f"{where}: no such module on sys.path (a plugin file's name ends in .py)") from None
    except Exception as exc:  # noqa: BLE001 - SyntaxError, ImportError, anything: one line naming the module
        raise PluginError(f"{where}: import failed: {type(exc).__name__}: {exc}") from None
    if not any(hasattr(module, n) for n in PLUGIN_NAMES):
        raise PluginError(f"{where}: {_MISSING}")
    path, sha256 = _code_sha256(module)
    return PluginFile(path, sha256, module, module_name=name)


def import_plugin_file(path: str | Path) -> PluginFile:
    """Import the plugin file ``path`` (once per path and content, in this process).

    Raises:
        PluginError: a missing file, an import failure, or a file that defines neither ``FAMILIES`` nor
            ``METRICS``; the message names the file.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise PluginError(f"{path}: plugin file not found")
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    module_name = f"evalkit_plugin_{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{sha256[:12]}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"{path}: not an importable Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # classes defined in it must be findable by their module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - SyntaxError, ImportError, anything: one line naming the file
            del sys.modules[module_name]
            line = f" (line {exc.lineno})" if isinstance(exc, SyntaxError) and exc.lineno else ""
            raise PluginError(f"{path}: import failed{line}: {type(exc).__name__}: {exc}") from None
    if not any(hasattr(module, name) for name in PLUGIN_NAMES):
        raise PluginError(f"{path}: {_MISSING}")
    return PluginFile(path, sha256, module)


def plugin_objects(value: Any, kind: type, where: str, noun: str) -> list:
    """The ``kind`` objects an entry point or a plugin's ``FAMILIES`` / ``METRICS`` stands for: one, an iterable of
    them, or a callable returning either (``noun`` names one in the messages, e.g. "codec family").

    Raises:
        PluginError: anything else, a callable that raises, or none at all; the message names ``where``.
    """
    name = kind.__name__
    if callable(value) and not isinstance(value, kind):
        try:
            value = value()
        except Exception as exc:  # noqa: BLE001 - any failure of plugin code is one line naming the plugin
            raise PluginError(f"{where}: calling it failed: {type(exc).__name__}: {exc}") from None
    if isinstance(value, kind):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | dict):
        objects = list(value)
        bad = [o for o in objects if not isinstance(o, kind)]
        if bad:
            raise PluginError(f"{where}: expected {name} objects, got {type(bad[0]).__name__}")
        if not objects:
            raise PluginError(f"{where}: defines no {noun} (an empty list)")
        return objects
    raise PluginError(f"{where}: expected a {name}, a list of them or a callable returning them, "
                      f"got {type(value).__name__}")
