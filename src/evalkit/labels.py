"""Label helpers that need no codec knowledge: whether a unit was coded channel by channel, and the ``--label``
option. Labels themselves are made in :mod:`evalkit.codecs.labels` (from spec strings, at plan time) and read
from the run's variant records (:class:`evalkit.runner.reader.RunReader`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping


def coded_per_channel(reconstruction: str | Mapping | None) -> bool:
    """Whether a unit's reconstruction report (JSON text or dict, ``units.reconstruction``) says a mono codec
    coded the item channel by channel (``channel_handling`` ``per-channel (2 x mono)``): the fact that makes
    its nominal rate a rate per channel. Missing or unreadable reports say no.

    >>> coded_per_channel('{"channel_handling": "per-channel (2 x mono)"}'), coded_per_channel(None)
    (True, False)
    """
    if isinstance(reconstruction, str):
        try:
            reconstruction = json.loads(reconstruction)
        except ValueError:
            return False
    if not isinstance(reconstruction, Mapping):
        return False
    return str(reconstruction.get("channel_handling") or "").startswith("per-channel")


def parse_label_options(values: Iterable[str]) -> dict[str, str]:
    """``["SPEC=NAME", ...]`` (the ``--label`` option) → {spec: name}; the last ``=`` outside the spec splits.

    A spec holds ``=`` itself, so the name is what follows the last ``=``.

    >>> parse_label_options(["opus?bitrate_kbps=12=Opus twelve", "anchor35=Low anchor"])
    {'opus?bitrate_kbps=12': 'Opus twelve', 'anchor35': 'Low anchor'}
    """
    out = {}
    for value in values:
        spec, sep, name = value.rpartition("=")
        if not sep or not spec.strip() or not name.strip():
            raise ValueError(f"--label {value!r}: expected SPEC=NAME")
        out[spec.strip()] = name.strip()
    return out
