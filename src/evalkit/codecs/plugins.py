"""Codec families from outside evalkit: installed packages (entry points) and plain Python files.

Two ways to add a codec without editing evalkit (README, "How to add a codec"):

* **An installed package** declares an entry point in the group ``evalkit.codecs``; it names a
  :class:`~evalkit.codecs.CodecFamily`, a list of them, or a callable returning either. Entry points are read the
  first time a family name is not a built-in one, or when every family is listed (``evalkit codecs list``), so a
  package installed on a Dask worker is found there too.
* **A file** ``my_codec.py`` or an importable **module** ``my_lab.codecs`` listed under ``plugins:`` in a run
  config (or ``evalkit codecs list --plugin``, or ``plugins=[...]`` of :func:`evalkit.build_codec` and
  :func:`evalkit.run`) defines ``FAMILIES`` the same way (the same file may also define metrics,
  :mod:`evalkit.metrics.plugins`). The coordinator imports it while validating the config; every worker
  imports it again before its first task (a module must be importable there too).

Every family records where it came from (:class:`FamilySource`): ``codecs list`` shows it, and a plugin's
identity (its distribution version, or the SHA-256 of the file or module code) is part of every unit key of its
variants, so an edited plugin never reuses results of the old code. A plugin that cannot be imported, defines
no family, or reuses a taken name raises :class:`PluginError` with one line naming it (exit code 2 on the command line).
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from evalkit.codecs.spec import CodecFamily
from evalkit.plugin_files import PluginError, import_plugin_file, import_plugin_module, is_module_name, plugin_objects

ENTRY_POINT_GROUP = "evalkit.codecs"
FAMILY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Names with a meaning of their own in a run: the reference pseudo-variant and decoded folders.
RESERVED_NAMES = ("reference", "decoded")


class SourceKind(enum.StrEnum):
    EVALKIT = "evalkit"
    ENTRY_POINT = "entry point"
    FILE = "file"
    MODULE = "module"


@dataclass(frozen=True)
class FamilySource:
    """Where a codec family comes from.

    Attributes:
        kind: built into evalkit, an installed package's entry point, a plugin file or a plugin module.
        name: the entry point's name, or the module's name.
        dist: the distribution that declares the entry point, and ``version`` its version.
        path: the plugin file (a module's file) and ``sha256`` the SHA-256 of its code
            (:class:`evalkit.plugin_files.PluginFile`).
    """

    kind: SourceKind
    name: str = ""
    dist: str = ""
    version: str = ""
    path: str = ""
    sha256: str = ""

    def describe(self) -> str:
        """``evalkit``, ``entry point toy (evalkit-toy-codec 0.1.0)`` or ``file /path/my_codec.py``.

        >>> FamilySource(SourceKind.ENTRY_POINT, "toy", "evalkit-toy-codec", "0.1.0").describe()
        'entry point toy (evalkit-toy-codec 0.1.0)'
        """
        if self.kind is SourceKind.ENTRY_POINT:
            dist = f"{self.dist} {self.version}".strip() or "unknown distribution"
            return f"entry point {self.name} ({dist})"
        if self.kind is SourceKind.FILE:
            return f"file {self.path}"
        if self.kind is SourceKind.MODULE:
            return f"module {self.name} ({self.path})"
        return "evalkit"

    def identity(self) -> str | None:
        """What identifies the plugin's code in unit keys (``None`` for evalkit's own families, whose version
        is keyed already)."""
        if self.kind is SourceKind.ENTRY_POINT:
            return f"plugin={self.dist or self.name}=={self.version or 'unknown'}"
        if self.kind is SourceKind.FILE:
            return f"plugin-file-sha256={self.sha256}"
        if self.kind is SourceKind.MODULE:
            return f"plugin-module-sha256={self.sha256}"
        return None


BUILTIN = FamilySource(SourceKind.EVALKIT)


def families_of(value: Any, where: str) -> list[CodecFamily]:
    """The families an entry point or a file's ``FAMILIES`` stands for (:func:`evalkit.plugin_files.plugin_objects`)."""
    return plugin_objects(value, CodecFamily, where, "codec family")


class FamilyTarget(Protocol):
    """Where plugin families go: :class:`evalkit.codecs.FamilyRegistry`."""

    def register(self, family: CodecFamily, source: FamilySource, where: str | None = None) -> None: ...

    def get(self, name: str, default: Any = None) -> CodecFamily | None: ...


def check_family(family: CodecFamily, where: str) -> None:
    """A plugin family's name is a valid spec family and not reserved; its factory is callable."""
    if not FAMILY_NAME.fullmatch(family.name or ""):
        raise PluginError(f"{where}: codec family name {family.name!r} is not usable in spec strings "
                          f"(letters, digits, '.', '_', '-')")
    if family.name in RESERVED_NAMES:
        raise PluginError(f"{where}: codec family name {family.name!r} is reserved by evalkit")
    if not callable(family.factory):
        raise PluginError(f"{where}: family {family.name!r} has no callable factory")


def load_entry_points(registry: FamilyTarget) -> None:
    """Register the families of every ``evalkit.codecs`` entry point.

    Raises:
        PluginError: an entry point that cannot be loaded or gives no family; a name already taken.
    """
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        source = FamilySource(SourceKind.ENTRY_POINT, ep.name, dist.name if dist else "",
                              dist.version if dist else "")
        where = f"codec plugin {source.describe()} = {ep.value}"
        try:
            value = ep.load()
        except Exception as exc:  # noqa: BLE001 - any import failure is one line naming the plugin
            raise PluginError(f"{where}: import failed: {type(exc).__name__}: {exc}") from None
        for family in families_of(value, where):
            registry.register(family, source, where)


_FILES: dict[str, tuple[str, list[CodecFamily]]] = {}  # path or module name -> (sha256, families), this process


def load_plugin_file(path: str | Path, registry: FamilyTarget) -> list[CodecFamily]:
    """Import a plugin (a file, or a module by name: a ``plugins:`` entry) and register the families of its
    ``FAMILIES`` in ``registry``; idempotent per path and content (per name for modules, which Python imports
    once). :func:`evalkit.codecs.load_plugin_file` registers them in evalkit's own registry.

    A plugin that defines only ``METRICS`` (metric plugins, :mod:`evalkit.metrics.plugins`) gives no family.

    Returns:
        The plugin's families.

    Raises:
        PluginError: a missing file or module, an import failure, neither ``FAMILIES`` nor ``METRICS``, or a
            family name already taken.
    """
    if is_module_name(path):
        return _load_plugin_module(str(path), registry)
    path = Path(path).expanduser().resolve()
    known = _FILES.get(str(path))
    if known is not None and path.is_file() and known[0] == hashlib.sha256(path.read_bytes()).hexdigest() \
            and all(registry.get(f.name) is f for f in known[1]):
        return known[1]
    plugin = import_plugin_file(path)
    if not hasattr(plugin.module, "FAMILIES"):
        _FILES[str(path)] = (plugin.sha256, [])
        return []
    families = families_of(plugin.module.FAMILIES, f"{path}: FAMILIES")
    source = FamilySource(SourceKind.FILE, path=str(path), sha256=plugin.sha256)
    for family in families:
        registry.register(family, source, str(path))
    _FILES[str(path)] = (plugin.sha256, families)
    return families


def _load_plugin_module(name: str, registry: FamilyTarget) -> list[CodecFamily]:
    known = _FILES.get(name)
    if known is not None and all(registry.get(f.name) is f for f in known[1]):
        return known[1]
    plugin = import_plugin_module(name)
    families = []
    if hasattr(plugin.module, "FAMILIES"):
        families = families_of(plugin.module.FAMILIES, f"plugin module {name}: FAMILIES")
        source = FamilySource(SourceKind.MODULE, name=name, path=str(plugin.path), sha256=plugin.sha256)
        for family in families:
            registry.register(family, source, f"plugin module {name}")
    _FILES[name] = (plugin.sha256, families)
    return families

