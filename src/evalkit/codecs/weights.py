"""Finding pretrained weights: explicit path → ``$EVALKIT_WEIGHTS`` → library caches → download.

File names and cache locations are the libraries' own (torch hub ``checkpoints/`` for EnCodec,
``~/.cache/descript/dac/`` for DAC), so weights already fetched by ``encodec`` or ``dac`` are found, and
weights fetched by evalkit are found by them. Downloads use the libraries' official URLs (or
``$EVALKIT_WEIGHTS_MIRROR/<file name>``); set ``EVALKIT_OFFLINE=1`` to forbid them. A download goes to a temporary
name beside its target and is renamed only once complete and checked against the published SHA-256: the full
digest where one is published, else the 8 hex digits of EnCodec's torch hub file name; files without any
published digest are kept and their SHA-256 is reported. :func:`fetch_missing` fetches what a list of codec specs
needs before a run (:mod:`evalkit.codecs.weights_fetch`).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import UserError

WEIGHTS_ENV = "EVALKIT_WEIGHTS"
OFFLINE_ENV = "EVALKIT_OFFLINE"
MIRROR_ENV = "EVALKIT_WEIGHTS_MIRROR"  # a base URL serving the files under their cache names (tests, local mirrors)


class WeightsNotFound(UserError, FileNotFoundError):
    """Pretrained weights are absent and could not be downloaded; lists every place searched."""


class Unreachable(OSError):
    """The weights server did not answer (refused, unknown host, or no response within the timeout)."""


class ChecksumMismatch(OSError):
    """A downloaded file's SHA-256 is not the published one (the file was deleted)."""


class IncompleteDownload(OSError):
    """The transfer ended before the announced length (nothing was kept)."""


def torch_hub_checkpoints() -> Path:
    """torch hub's ``checkpoints/`` folder, found without importing torch when it is not imported yet.

    torch puts its hub in ``$TORCH_HOME/hub``, ``$TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch`` and
    ``$XDG_CACHE_HOME`` to ``~/.cache``; once torch is loaded its own answer (``torch.hub.set_dir``) counts.
    """
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        return Path(hub.get_dir()) / "checkpoints"
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.path.expanduser(os.environ.get("TORCH_HOME", os.path.join(cache, "torch")))
    return Path(home) / "hub" / "checkpoints"


def descript_cache() -> Path:
    return Path.home() / ".cache" / "descript" / "dac"


@dataclass(frozen=True)
class WeightsEntry:
    """One pretrained checkpoint: official file name, URL, and where its library caches it.

    Attributes:
        sha256_prefix: leading hex digits of the official file's SHA-256 (EnCodec puts them in the name).
        sha256: the whole digest, where one is published (``sha256_source`` says where), else ``None``.
    """

    name: str
    filename: str
    url: str
    cache_dir: Callable[[], Path]
    library: str
    sha256_prefix: str | None = None
    sha256: str | None = None
    sha256_source: str = ""

    @property
    def verification(self) -> str:
        """What a download is checked against, in words."""
        if self.sha256:
            return f"full SHA-256 ({self.sha256_source})"
        if self.sha256_prefix:
            return f"SHA-256 prefix {self.sha256_prefix} (torch hub file name; no full digest published)"
        return "nothing: no SHA-256 published"

    def digest_problem(self, hexdigest: str) -> str | None:
        """Why a file with this SHA-256 is not the official one, or ``None`` (also when no digest is known)."""
        expected = self.sha256 or self.sha256_prefix
        if expected and not hexdigest.startswith(expected):
            return f"SHA-256 {hexdigest[:16]}... is not the published {expected[:16]}..."
        return None

    def url_for(self, mirror: str | None = None) -> str:
        """The official URL, or ``mirror/<cache file name>``."""
        return f"{mirror.rstrip('/')}/{self.filename}" if mirror else self.url

    def candidates(self, explicit: str | Path | None = None) -> list[Path]:
        places = []
        if explicit:
            places.append(Path(explicit).expanduser())
        env_dir = os.environ.get(WEIGHTS_ENV)
        if env_dir:
            places.append(Path(env_dir).expanduser() / self.filename)
        places.append(self.cache_dir() / self.filename)
        return places

    def find(self, explicit: str | Path | None = None) -> Path | None:
        """First existing candidate, without downloading."""
        return next((p for p in self.candidates(explicit) if p.is_file()), None)

    def resolve(self, explicit: str | Path | None = None, *, allow_download: bool | None = None) -> Path:
        """Path of the checkpoint, downloading it into the library cache if allowed and needed.

        An explicit path that does not exist is an error (no silent fallback to other places).

        Raises:
            WeightsNotFound: with the file name, every place searched and why no download happened.
        """
        if explicit and not Path(explicit).expanduser().is_file():
            raise WeightsNotFound(f"{self.name}: weights file {explicit} does not exist")
        found = self.find(explicit)
        if found:
            return found
        if allow_download is None:
            allow_download = not os.environ.get(OFFLINE_ENV)
        searched = "\n".join(f"  - {p}" for p in self.candidates(explicit))
        if not allow_download:
            raise WeightsNotFound(
                f"{self.name}: pretrained weights {self.filename} not found (downloads disabled by "
                f"{OFFLINE_ENV}). Searched:\n{searched}\nPut the file in one of these places, set "
                f"{WEIGHTS_ENV}=DIR, or use weights=random for architecture-only runs.")
        try:
            return self.download()
        except (OSError, urllib.error.URLError) as exc:
            raise WeightsNotFound(
                f"{self.name}: pretrained weights {self.filename} not found and the download from "
                f"{self.url} failed ({exc}). Searched:\n{searched}\nCopy the file into one of these places, "
                f"set {WEIGHTS_ENV}=DIR, or use weights=random for architecture-only runs.") from exc

    def download(self, timeout_s: float = 30.0, *, progress: bool = False, mirror: str | None = None) -> Path:
        """Fetch the file into the library cache: temporary name, length and SHA-256 checked, then renamed.

        ``timeout_s`` bounds the connection, the response headers and every stall of the transfer. ``mirror``
        (default ``$EVALKIT_WEIGHTS_MIRROR``) replaces the official URL by ``mirror/<cache file name>``. With
        ``progress`` a tqdm bar (bytes) goes to stderr. Nothing is left in the cache unless the whole file arrived
        and matches the published digest.

        Raises:
            Unreachable: no answer from the server (refused, unknown host, timeout).
            ChecksumMismatch: the file is not the published one.
            IncompleteDownload: fewer bytes than announced.
            urllib.error.HTTPError: the server answered with an error status.
        """
        url = self.url_for(mirror if mirror is not None else os.environ.get(MIRROR_ENV))
        target = self.cache_dir() / self.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        _check_resolves(url, timeout_s)
        try:
            response = urllib.request.urlopen(url, timeout=timeout_s)
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise Unreachable(f"{url}: no answer within {timeout_s:g} s") from exc
            raise Unreachable(f"{url} not reachable ({reason})") from exc
        fd, partial_name = tempfile.mkstemp(prefix=f".{self.filename}.", suffix=".partial", dir=target.parent)
        partial = Path(partial_name)
        try:
            with response, os.fdopen(fd, "wb") as out:
                total = _content_length(response)
                hexdigest, received = _copy(response, out, total, self.filename, progress)
            if total is not None and received != total:
                raise IncompleteDownload(f"{url}: transfer ended after {received} of {total} bytes")
            if problem := self.digest_problem(hexdigest):
                raise ChecksumMismatch(f"checksum mismatch for {url}: {problem}")
            partial.replace(target)
        except BaseException as exc:
            partial.unlink(missing_ok=True)
            if isinstance(exc, http.client.IncompleteRead):
                raise IncompleteDownload(f"{url}: transfer ended early ({exc})") from exc
            raise
        return target

    def checksum_status(self, path: Path) -> str:
        """"official" / "custom" by the published SHA-256 (or its prefix), "unknown" when none is published."""
        if not (self.sha256 or self.sha256_prefix):
            return "unknown"
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return "custom" if self.digest_problem(digest.hexdigest()) else "official"


def _check_resolves(url: str, timeout_s: float) -> None:
    """Raise :class:`Unreachable` when the host name does not resolve within ``timeout_s`` (the socket timeout
    of ``urlopen`` does not bound the name lookup, which can hang far longer on a machine without network)."""
    import socket
    import threading
    import urllib.parse

    host = urllib.parse.urlsplit(url).hostname
    if not host:
        return
    outcome: list[BaseException | None] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, None)
            outcome.append(None)
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=lookup, daemon=True)  # left behind if the lookup hangs; it holds nothing
    worker.start()
    worker.join(timeout_s)
    if not outcome:
        raise Unreachable(f"{url}: no answer within {timeout_s:g} s (name lookup of {host})")
    if outcome[0] is not None:
        raise Unreachable(f"{url} not reachable ({outcome[0]})")


def _content_length(response) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    return int(value) if value and value.isdigit() else None


def _copy(response, out, total: int | None, label: str, progress: bool) -> tuple[str, int]:
    """Stream ``response`` into ``out``; returns (SHA-256 hex digest, bytes received)."""
    from tqdm import tqdm

    digest = hashlib.sha256()
    received = 0
    with tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
              disable=not progress, dynamic_ncols=True) as bar:
        while chunk := response.read(1 << 20):
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return digest.hexdigest(), received


def _encodec(name: str, filename: str, sha256: str | None = None, source: str = "") -> WeightsEntry:
    return WeightsEntry(name, filename, f"https://dl.fbaipublicfiles.com/encodec/v0/{filename}",
                        torch_hub_checkpoints, "encodec", filename.rsplit("-", 1)[1].split(".")[0], sha256, source)


def _dac(name: str, model_type: str, bitrate: str, tag: str, url_file: str, sha256: str | None = None,
         source: str = "") -> WeightsEntry:
    return WeightsEntry(name, f"weights_{model_type}_{bitrate}_{tag}.pth",
                        f"https://github.com/descriptinc/descript-audio-codec/releases/download/{tag}/{url_file}",
                        descript_cache, "descript-audio-codec", None, sha256, source)


# Neither Meta nor Descript publishes full digests. The two below are pinned by third-party projects that verify
# their downloads against them; the EnCodec one agrees with the 8 digits of Meta's file name. The others are
# checked by that prefix (EnCodec 48 kHz) or not at all (the other DAC files): their SHA-256 is reported instead.
WEIGHTS: dict[str, WeightsEntry] = {e.name: e for e in (
    _encodec("encodec_24khz", "encodec_24khz-d7cc33bc.th",
             "d7cc33bcf1aad7f2dad9836f36431530744abeace3ca033005e3290ed4fa47bf",
             "as pinned by codekansas/ml-pretrained, pretrained/encodec.py"),
    _encodec("encodec_48khz", "encodec_48khz-7e698e3e.th"),
    _dac("dac_44khz", "44khz", "8kbps", "0.0.1", "weights.pth",
         "a88eed82a7024ccc1facdb1e605c4c2f99281c8118c22c9895ffa846d8fb61aa",
         "as pinned by vLLM-Omni's ZONOS2 CI asset script"),
    _dac("dac_24khz", "24khz", "8kbps", "0.0.4", "weights_24khz.pth"),
    _dac("dac_16khz", "16khz", "8kbps", "0.0.5", "weights_16khz.pth"),
    _dac("dac_44khz_16kbps", "44khz", "16kbps", "1.0.0", "weights_44khz_16kbps.pth"),
)}


def get_entry(name: str) -> WeightsEntry:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(WEIGHTS)}") from None


@dataclass(frozen=True)
class WeightsStatus:
    name: str
    filename: str
    path: Path | None
    checksum: str | None


def status() -> list[WeightsStatus]:
    """Where each model's weights are (no downloads, no hashing beyond the files found)."""
    rows = []
    for entry in WEIGHTS.values():
        path = entry.find()
        rows.append(WeightsStatus(entry.name, entry.filename, path, entry.checksum_status(path) if path else None))
    return rows
