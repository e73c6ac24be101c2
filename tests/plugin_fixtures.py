"""Temporary codec plugins for tests: the example toy codec as a plugin file, or as an installed distribution
(a ``*.dist-info`` folder with ``entry_points.txt`` next to the module, put on ``sys.path`` and ``PYTHONPATH``
so that spawned pool workers and Dask workers find it too)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TOY = Path(__file__).resolve().parents[1] / "examples" / "toy-codec" / "toy_codec.py"


def toy_source(family: str = "toy-mulaw", display: str = "Toy mu-law") -> str:
    """The example toy codec's source, its family renamed (so that two copies can be registered at once)."""
    text = TOY.read_text()
    return text.replace('name="toy-mulaw"', f'name="{family}"').replace('display_name="Toy mu-law"',
                                                                        f'display_name="{display}"')


def write_plugin_file(folder: Path, family: str = "toy-file", name: str = "my_codec.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(toy_source(family, "Toy file"))
    return path


def install_entry_point(root: Path, monkeypatch: pytest.MonkeyPatch, *, family: str = "toy-ep",
                        target: str = "toy_ep_codec:TOY_MULAW", module_source: str | None = None,
                        dist: str = "evalkit-toy-ep", version: str = "0.1.0") -> Path:
    """A distribution ``dist`` declaring ``toy = target`` in the group ``evalkit.codecs``, importable from ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    module = target.partition(":")[0]
    (root / f"{module}.py").write_text(toy_source(family, "Toy entry point") if module_source is None
                                       else module_source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[evalkit.codecs]\ntoy = {target}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    from evalkit.codecs import FAMILIES

    FAMILIES.refresh()
    return root


@pytest.fixture
def clean_families():
    """Plugin families registered by a test are removed after it (entry points are read again when needed)."""
    from evalkit.codecs import FAMILIES
    from evalkit.codecs.plugins import BUILTIN

    yield FAMILIES
    for name in [n for n in list(FAMILIES._families) if FAMILIES._sources[n] is not BUILTIN]:
        FAMILIES.unregister(name)
    FAMILIES.refresh()
