"""Finding pretrained weights: explicit path → ``$EVALKIT_WEIGHTS`` → library caches → download.

File names and cache locations are the libraries' own (torch hub ``checkpoints/`` for EnCodec,
``~/.cache/descript/dac/`` for DAC), so weights already fetched by ``encodec`` or ``dac`` are found, and
weights fetched by evalkit are found by them. Downloads use the libraries' official URLs; set
``EVALKIT_OFFLINE=1`` to forbid them.
"""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import UserError

WEIGHTS_ENV = "EVALKIT_WEIGHTS"
OFFLINE_ENV = "EVALKIT_OFFLINE"


class WeightsNotFound(UserError, FileNotFoundError):
    """Pretrained weights are absent and could not be downloaded; lists every place searched."""


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
    """

    name: str
    filename: str
    url: str
    cache_dir: Callable[[], Path]
    library: str
    sha256_prefix: str | None = None

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

    def download(self, timeout_s: float = 30.0) -> Path:
        """Fetch the official file into the library cache (atomic rename; SHA-256 prefix checked)."""
        target = self.cache_dir() / self.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        digest = hashlib.sha256()
        with urllib.request.urlopen(self.url, timeout=timeout_s) as response, open(partial, "wb") as out:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if self.sha256_prefix and not digest.hexdigest().startswith(self.sha256_prefix):
            partial.unlink(missing_ok=True)
            raise OSError(f"checksum mismatch for {self.url}: expected sha256 {self.sha256_prefix}...")
        partial.replace(target)
        return target

    def checksum_status(self, path: Path) -> str:
        """"official" / "custom" by the SHA-256 prefix, or "unknown" when the official digest is unknown."""
        if not self.sha256_prefix:
            return "unknown"
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return "official" if digest.hexdigest().startswith(self.sha256_prefix) else "custom"


def _encodec(name: str, filename: str) -> WeightsEntry:
    return WeightsEntry(name, filename, f"https://dl.fbaipublicfiles.com/encodec/v0/{filename}",
                        torch_hub_checkpoints, "encodec", filename.rsplit("-", 1)[1].split(".")[0])


def _dac(name: str, model_type: str, bitrate: str, tag: str, url_file: str) -> WeightsEntry:
    return WeightsEntry(name, f"weights_{model_type}_{bitrate}_{tag}.pth",
                        f"https://github.com/descriptinc/descript-audio-codec/releases/download/{tag}/{url_file}",
                        descript_cache, "descript-audio-codec")


WEIGHTS: dict[str, WeightsEntry] = {e.name: e for e in (
    _encodec("encodec_24khz", "encodec_24khz-d7cc33bc.th"),
    _encodec("encodec_48khz", "encodec_48khz-7e698e3e.th"),
    _dac("dac_44khz", "44khz", "8kbps", "0.0.1", "weights.pth"),
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
