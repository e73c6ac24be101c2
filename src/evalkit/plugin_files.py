"""Importing plugin files: the Python files a run config lists under ``plugins:``.

One file may define codec families (``FAMILIES``, see :mod:`evalkit.codecs.plugins`), metrics (``METRICS``,
see :mod:`evalkit.metrics.plugins`), or both. Each is imported once per process and content: the codec and metric
registries read the same module object. This module imports nothing from evalkit, so both may use it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from evalkit.errors import UserError

#: What a plugin file defines (at least one of them).
PLUGIN_NAMES = ("FAMILIES", "METRICS")


class PluginError(UserError, ValueError):
    """A plugin that cannot be used; the message is one line naming the plugin (file or entry point)."""


@dataclass(frozen=True)
class PluginFile:
    """An imported plugin file: its resolved ``path``, the SHA-256 of its bytes, and the module."""

    path: Path
    sha256: str
    module: ModuleType


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
        raise PluginError(f"{path}: defines no FAMILIES (codec families: a CodecFamily, a list of them, or a "
                          f"callable returning them) and no METRICS (metric plugins: a MetricPlugin, a list of "
                          f"them, or a callable returning them)")
    return PluginFile(path, sha256, module)
