"""Codec families behind one interface, resolved from parametric spec strings.

:data:`FAMILIES` holds evalkit's own families (an explicit list) and, once read, those of plugins: installed
packages' ``evalkit.codecs`` entry points and plugin files (see :mod:`evalkit.codecs.plugins`).

>>> str(parse_spec("encodec-24khz?bandwidth=6"))
'encodec-24khz?bandwidth=6&seed=0&weights=pretrained'
>>> build_codec("dac-44khz?n_codebooks=9").bitrate_bps
7751.953125
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from evalkit._lazy import torch
from evalkit.codecs import anchors, dac, encodec, klt, plugins, pyav, qincodec
from evalkit.codecs.base import ArrayTransform, AudioTransform, Codec, Encoded, Reconstruction, ReconstructionReport
from evalkit.codecs.plugins import (
    BUILTIN,
    RESERVED_NAMES,
    FamilySource,
    PluginError,
    SourceKind,
    check_family,
    load_entry_points,
)
from evalkit.codecs.spec import CodecFamily, CodecSpec, Param, SpecError, split_spec
from evalkit.messages import nearest


class FamilyRegistry(Mapping[str, CodecFamily]):
    """Codec families by name: evalkit's own, then plugins (entry points read on first need, files as loaded).

    A built-in (or reserved: ``decoded``, ``reference``) name is answered without reading entry points; an unknown
    name, listing or counting reads them once (a broken entry point raises :class:`PluginError` each time until it
    is fixed).
    """

    def __init__(self, builtins: Iterable[CodecFamily] = ()):
        self._families: dict[str, CodecFamily] = {}
        self._sources: dict[str, FamilySource] = {}
        self._entry_points_read = False
        self.add_builtins(builtins)

    def add_builtins(self, families: Iterable[CodecFamily]) -> None:
        """Add evalkit's own families (after construction for those that wrap this registry, like ``klt``)."""
        for family in families:
            self._families[family.name] = family
            self._sources[family.name] = BUILTIN

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True  # set first: a plugin importing evalkit.codecs must not recurse
        try:
            load_entry_points(self)
        except PluginError:
            self._entry_points_read = False
            raise

    def __getitem__(self, name: str) -> CodecFamily:
        if name not in self._families and name not in RESERVED_NAMES:
            self._read_entry_points()
        return self._families[name]

    def __contains__(self, name: object) -> bool:
        if name not in self._families and name not in RESERVED_NAMES:
            self._read_entry_points()
        return name in self._families

    def __iter__(self) -> Iterator[str]:
        self._read_entry_points()
        return iter(list(self._families))

    def __len__(self) -> int:
        self._read_entry_points()
        return len(self._families)

    def source(self, name: str) -> FamilySource:
        """Where the family ``name`` comes from (raises ``KeyError`` for an unknown one)."""
        self[name]
        return self._sources[name]

    def register(self, family: CodecFamily, source: FamilySource, where: str | None = None) -> None:
        """Add a plugin family; a plugin file loaded again (same path) replaces its own families.

        Raises:
            PluginError: an unusable or reserved name, or one another source provides already.
        """
        where = where or source.describe()
        check_family(family, where)
        taken = self._sources.get(family.name)
        if taken is not None and taken != source and not (taken.path and taken.path == source.path):
            raise PluginError(f"{where}: codec family {family.name!r} is already provided by {taken.describe()}")
        self._families[family.name] = family
        self._sources[family.name] = source

    def refresh(self) -> None:
        """Forget the entry points' families and read them again on next need (after installing a package)."""
        for name in [n for n, s in self._sources.items() if s.kind is SourceKind.ENTRY_POINT]:
            del self._families[name], self._sources[name]
        self._entry_points_read = False

    def build(self, spec: CodecSpec, device: str | torch.device = "auto") -> AudioTransform:
        """A codec (not yet loaded) for a resolved ``spec``."""
        return self[spec.family].factory(spec, device)

    def unregister(self, name: str) -> None:
        """Remove a plugin family (tests); evalkit's own families stay."""
        if self._sources.get(name, BUILTIN) is not BUILTIN:
            del self._families[name], self._sources[name]


# Explicit registration of evalkit's own families; other codecs come in as plugins (README, "How to add a codec").
# KLT wraps the others: it is handed the registry it resolves and builds its base codecs with.
FAMILIES = FamilyRegistry()
FAMILIES.add_builtins((*encodec.FAMILIES, *dac.FAMILIES, *klt.families(FAMILIES), *qincodec.FAMILIES,
                       *anchors.FAMILIES, *pyav.FAMILIES))


def get_family(name: str) -> CodecFamily:
    """The family ``name``.

    Raises:
        SpecError: unknown name; the message lists the known ones.
        PluginError: an installed plugin is broken (read when ``name`` is not a built-in family).
    """
    try:
        return FAMILIES[name]
    except KeyError:
        close = nearest(name, FAMILIES)
        hint = f"; did you mean {close!r}?" if close else ""
        raise SpecError(f"unknown codec family {name!r}; known: {', '.join(FAMILIES)}{hint}") from None


def parse_spec(text: str | CodecSpec) -> CodecSpec:
    """Validate a spec string and return its complete canonical form.

    Raises:
        SpecError: unknown family or parameter, or a bad value; the message names it.
    """
    if isinstance(text, CodecSpec):
        return text
    family, raw = split_spec(text)
    return get_family(family).resolve(raw)


def build_codec(spec: str | CodecSpec, device: str | torch.device = "auto") -> AudioTransform:
    """A codec (not yet loaded: call ``load()`` or just use it) for ``spec``."""
    return FAMILIES.build(parse_spec(spec), device)


def load_plugin_file(path: str | Path) -> list[CodecFamily]:
    """:func:`evalkit.codecs.plugins.load_plugin_file` into :data:`FAMILIES`."""
    return plugins.load_plugin_file(path, FAMILIES)


def load_plugin_files(paths: Iterable[str | Path]) -> None:
    """:func:`load_plugin_file` for each file or module (a worker's start-up and every task call this; cheap when
    loaded already)."""
    for path in paths:
        load_plugin_file(path)


__all__ = ["FAMILIES", "ArrayTransform", "AudioTransform", "Codec", "CodecFamily", "CodecSpec", "Encoded",
           "FamilyRegistry", "FamilySource", "Param", "PluginError", "Reconstruction", "ReconstructionReport",
           "SpecError", "build_codec", "get_family", "load_plugin_file", "load_plugin_files", "parse_spec"]
