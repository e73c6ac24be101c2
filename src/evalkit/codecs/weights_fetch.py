"""Fetching the pretrained weights a list of codec specs needs, before a run plans its units.

For every variant that runs a pretrained EnCodec/DAC model (``weights=pretrained``, directly or as a KLT base) and
finds no weights file on this machine, :func:`fetch_missing` downloads the file once per model
(:meth:`~evalkit.codecs.weights.WeightsEntry.download`: progress bar on stderr, SHA-256 checked, atomic rename).
The first request to a server is the reachability check: no answer within ``timeout_s`` (10 s by default) and
every model on that server is reported ``offline`` in one line each, and the run goes on without them (they are
skipped at plan time, as when downloads are disabled). Explicit ``weights=PATH`` and ``weights=random`` are never
fetched.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from evalkit.codecs.spec import CodecSpec
from evalkit.codecs.weights import (
    MIRROR_ENV,
    OFFLINE_ENV,
    WEIGHTS_ENV,
    ChecksumMismatch,
    Unreachable,
    WeightsEntry,
    get_entry,
)

log = logging.getLogger(__name__)
REACHABILITY_TIMEOUT_S = 10.0


class FetchStatus(Enum):
    PRESENT = "present"  # already on this machine; nothing downloaded
    FETCHED = "fetched"  # downloaded, checked and moved into the library cache
    OFFLINE = "offline"  # downloads disabled, or the server did not answer in time: its variants are skipped
    REJECTED = "rejected"  # downloaded but not the published file (SHA-256): deleted, its variants skipped
    FAILED = "failed"  # the server answered with an error, or the transfer broke off: nothing kept


@dataclass(frozen=True)
class FetchResult:
    """What happened to one model's weights.

    Attributes:
        model: the model name of ``evalkit weights status`` (e.g. ``encodec_24khz``).
        path: the weights file when present or fetched, else ``None``.
        message: the one line shown for it (empty when the file was already present).
        sha256: SHA-256 of the fetched file (``None`` unless fetched).
    """

    model: str
    status: FetchStatus
    path: Path | None = None
    message: str = ""
    sha256: str | None = None


def needed_model(spec: CodecSpec | str) -> str | None:
    """The pretrained model a spec runs on official weights found through the search path, or ``None``
    (``weights=random``, an explicit path, codecs without pretrained EnCodec/DAC weights)."""
    from evalkit.codecs import build_codec, parse_spec
    from evalkit.codecs.rvq import pretrained_model_of

    spec = parse_spec(spec) if isinstance(spec, str) else spec
    if spec.params.get("weights") != "pretrained":  # a KLT spec carries its base's weights parameter
        return None
    model = pretrained_model_of(build_codec(spec, device="cpu"))  # a cheap constructor: nothing loaded
    if model is None or model.spec.params.get("weights") != "pretrained":
        return None
    return model.arch.weights_name


def fetch_missing(specs: Iterable[CodecSpec | str], *, timeout_s: float = REACHABILITY_TIMEOUT_S,
                  progress: bool = True, offline: bool | None = None,
                  mirror: str | None = None) -> dict[str, FetchResult]:
    """Download the missing pretrained weights that ``specs`` need; never raises for network trouble.

    Args:
        specs: codec specs (objects or text); those needing no pretrained weights are left out of the result,
            the others are keyed by their canonical text (every parameter, as ``str(CodecSpec)``).
        timeout_s: seconds to wait for a server's answer (and for any stall of a transfer); a server that does
            not answer is not asked again for the other models it serves.
        progress: show a tqdm bar (bytes, on stderr) per download.
        offline: ``True`` skips every download; ``None`` reads ``$EVALKIT_OFFLINE``.
        mirror: base URL serving the files under their cache names, instead of the official URLs; ``None``
            reads ``$EVALKIT_WEIGHTS_MIRROR``.

    Returns:
        ``{str(spec): FetchResult}`` for every spec that runs pretrained weights; specs of one model share
        its result. Every status but ``present`` and ``fetched`` means that the variants will be skipped.
    """
    if offline is None:
        offline = bool(os.environ.get(OFFLINE_ENV))
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    from evalkit.codecs import parse_spec

    by_model: dict[str, FetchResult] = {}
    silent_hosts: set[str] = set()
    results = {}
    for spec in specs:
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        name = needed_model(spec)
        if name is None:
            continue
        if name not in by_model:
            by_model[name] = _fetch_one(get_entry(name), timeout_s, progress, offline, mirror, silent_hosts)
        results[str(spec)] = by_model[name]
    return results


def fetch_model(name: str, *, timeout_s: float = REACHABILITY_TIMEOUT_S, progress: bool = True,
                mirror: str | None = None) -> FetchResult:
    """Download one model's weights unless present (``evalkit weights fetch``); as :func:`fetch_missing`, but
    ``$EVALKIT_OFFLINE`` does not apply (the user asked for this download)."""
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    return _fetch_one(get_entry(name), timeout_s, progress, False, mirror, set())


def _fetch_one(entry: WeightsEntry, timeout_s: float, progress: bool, offline: bool, mirror: str | None,
               silent_hosts: set[str]) -> FetchResult:
    found = entry.find()
    if found is not None:
        return FetchResult(entry.name, FetchStatus.PRESENT, found)
    url = entry.url_for(mirror)
    host = urllib.parse.urlsplit(url).netloc
    if offline or host in silent_hosts:
        why = f"downloads disabled by {OFFLINE_ENV}" if offline else f"{host} did not answer"
        return _report(FetchResult(entry.name, FetchStatus.OFFLINE, message=_offline_line(entry, why)),
                       asked_offline=offline)
    try:
        path = entry.download(timeout_s, progress=progress, mirror=mirror or "")
    except Unreachable as exc:
        silent_hosts.add(host)
        return _report(FetchResult(entry.name, FetchStatus.OFFLINE, message=_offline_line(entry, str(exc))))
    except ChecksumMismatch as exc:
        return _report(FetchResult(entry.name, FetchStatus.REJECTED,
                                   message=f"rejected {entry.name}: {exc}; file deleted, its variants are skipped"))
    except (urllib.error.HTTPError, OSError) as exc:  # error status, broken transfer, stall, unwritable cache
        return _report(FetchResult(entry.name, FetchStatus.FAILED,
                                   message=f"failed to fetch {entry.name} from {url}: {exc}; nothing kept, its "
                                           f"variants are skipped"))
    from evalkit.hashing import file_sha256

    digest = file_sha256(path)
    checked = "" if entry.sha256 or entry.sha256_prefix else " (not verified: no SHA-256 published)"
    return _report(FetchResult(entry.name, FetchStatus.FETCHED, path,
                               f"fetched {entry.name} into {path}, SHA-256 {digest}{checked}", digest))


def _offline_line(entry: WeightsEntry, why: str) -> str:
    return (f"offline: skipping {entry.name} ({why}; put {entry.filename} in ${WEIGHTS_ENV} or "
            f"{entry.cache_dir()}, or run `evalkit weights fetch {entry.name}` where the network allows)")


def _report(result: FetchResult, *, asked_offline: bool = False) -> FetchResult:
    """Log the result's line: a warning when the network failed it, else (fetched, or offline on request) info."""
    quiet = result.status is FetchStatus.FETCHED or asked_offline
    log.log(logging.INFO if quiet else logging.WARNING, "%s", result.message)
    return result
