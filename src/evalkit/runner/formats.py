"""Dataset lists in the field's formats: a Kaldi ``wav.scp`` (with ``segments``), a Lhotse manifest, a Hugging
Face dataset and a JSON-lines list, read into :class:`Entry` records (see :mod:`evalkit.runner.materialise` for
their audio).

Every entry names where it came from (file and line, or dataset and row) so that one line can say what is wrong
with it. Nothing here runs a command from a data file (a Kaldi ``cmd |`` line or a Lhotse ``command`` source is
refused) or downloads anything (a Lhotse ``url`` source is refused; a Hugging Face name is looked up in the
local cache only).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from evalkit.errors import UserError
from evalkit.messages import nearest
from evalkit.runner.dataset import not_utf8


class DatasetConfig(Protocol):
    """The fields of :class:`evalkit.runner.config.DatasetConfig` read here (config imports this module)."""

    scp: Path | None
    segments: Path | None
    lhotse: Path | None
    hf: str | None
    split: str | None
    audio_column: str | None
    jsonl: Path | None
    category_column: str | None

    @property
    def source_field(self) -> str: ...

DEFAULT_CATEGORY = "category"  # the column categories come from when dataset.category_column is not given
DEFAULT_AUDIO_COLUMN = "audio"
HF_TEXT_COLUMN = "text"
HF_ID_COLUMN = "id"
KALDI_TEXT = "text"  # Kaldi's transcript file, next to wav.scp
LHOTSE_SOURCES = ("file", "memory")  # 'command' runs a shell command, 'url' downloads: both refused


class DatasetError(UserError, ValueError):
    """A dataset list that cannot be read; the message is one line naming the field, file and line or row."""


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One item of a dataset list, before its audio is read."""

    item_id: str
    where: str  # "FILE line N" or "DATASET row N": names the entry in messages and provenance
    category: str = ""
    text: str | None = None  # transcript, for wer/cer


@dataclass(frozen=True, kw_only=True)
class FileEntry(Entry):
    """An audio file, whole (``start_s`` and ``end_s`` ``None``) or the span [start_s, end_s) of it (seconds)."""

    path: Path
    start_s: float | None = None
    end_s: float | None = None  # None: to the end of the file

    @property
    def whole(self) -> bool:
        return self.start_s is None and self.end_s is None


@dataclass(frozen=True, kw_only=True)
class LhotseEntry(Entry):
    """A Lhotse recording or cut, read through ``load_audio()``."""

    cut: Any  # lhotse Recording or Cut


@dataclass(frozen=True, kw_only=True)
class HfEntry(Entry):
    """Row ``index`` of a Hugging Face dataset whose audio column is read undecoded (``{bytes, path}``)."""

    rows: Any  # datasets.Dataset, audio column cast to Audio(decode=False)
    index: int
    column: str


def read_entries(ds: DatasetConfig) -> list[Entry]:
    """The entries of a ``scp``, ``lhotse``, ``hf`` or ``jsonl`` dataset in list order (ids unique).

    Raises:
        DatasetError: missing or malformed list, missing audio file, unknown column, empty dataset, a missing
            optional package; one line naming the field and the file and line.
    """
    readers = {"scp": _kaldi_entries, "lhotse": _lhotse_entries, "hf": _hf_entries, "jsonl": _jsonl_entries}
    field = ds.source_field
    entries = readers[field](ds)
    if not entries:
        raise DatasetError(f"dataset.{field}: {getattr(ds, field)} lists no item")
    seen: dict[str, str] = {}
    for entry in entries:
        if entry.item_id in seen:
            raise DatasetError(f"dataset.{field}: {entry.where}: item id {entry.item_id!r} already used at "
                               f"{seen[entry.item_id]}")
        seen[entry.item_id] = entry.where
    return entries


def _text_lines(path: Path, field: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file's non-blank lines."""
    if not path.is_file():
        raise DatasetError(f"dataset.{field}: {path} not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"dataset.{field}: {path}: {not_utf8(exc)}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def _two_columns(path: Path, field: str) -> dict[str, str]:
    """A Kaldi table ``key value...`` (``text``, ``utt2category``) as {key: value}."""
    table = {}
    for _, line in _text_lines(path, field):
        key, _, value = line.partition(" ")
        table[key] = value.strip()
    return table


def _kaldi_entries(ds: DatasetConfig) -> list[Entry]:
    scp = ds.scp
    recordings: dict[str, tuple[Path, str]] = {}
    for number, line in _text_lines(scp, "scp"):
        where = f"{scp} line {number}"
        parts = line.split(maxsplit=1)
        if len(parts) < 2:
            raise DatasetError(f"dataset.scp: {where}: expected 'utt-id path', got {line!r}")
        utt, target = parts
        if target.endswith("|"):
            raise DatasetError(f"dataset.scp: {where}: {utt} is a piped command ('... |'); evalkit never runs "
                               f"commands from a data file: write the audio to files and list their paths")
        if utt in recordings:
            raise DatasetError(f"dataset.scp: {where}: utterance id {utt!r} already used at "
                               f"{recordings[utt][1]}")
        path = _resolve(Path(target), scp.parent)
        if not path.is_file():
            hint = " (Kaldi ark offsets are not read)" if ".ark:" in target else ""
            raise DatasetError(f"dataset.scp: {where}: {path} not found{hint}")
        recordings[utt] = path, where
    texts = _two_columns(scp.parent / KALDI_TEXT, "scp") if (scp.parent / KALDI_TEXT).is_file() else {}
    categories = _kaldi_categories(ds)
    if ds.segments is None:
        return [FileEntry(item_id=utt, where=where, path=path, category=categories.get(utt, ""),
                          text=texts.get(utt) or None) for utt, (path, where) in recordings.items()]
    entries: list[Entry] = []
    for number, line in _text_lines(ds.segments, "segments"):
        where = f"{ds.segments} line {number}"
        parts = line.split()
        start = end = math.nan
        if len(parts) == 4:
            with contextlib.suppress(ValueError):
                start, end = float(parts[2]), float(parts[3])
        if not (len(parts) == 4 and math.isfinite(start) and math.isfinite(end)):
            raise DatasetError(f"dataset.segments: {where}: expected 'segment-id utt-id start end' (seconds), "
                               f"got {line!r}")
        seg, utt = parts[:2]
        if utt not in recordings:
            raise DatasetError(f"dataset.segments: {where}: recording {utt!r} is not in {scp.name}")
        bounds_problem = _span_problem(start, None if end == -1 else end)  # Kaldi: end -1 is the file's end
        if bounds_problem:
            raise DatasetError(f"dataset.segments: {where}: {bounds_problem}")
        entries.append(FileEntry(item_id=seg, where=where, path=recordings[utt][0], start_s=start,
                                 end_s=None if end == -1 else end, category=categories.get(seg, ""),
                                 text=texts.get(seg) or None))
    return entries


def _kaldi_categories(ds: DatasetConfig) -> dict[str, str]:
    """Categories from the Kaldi table ``utt2<column>`` next to wav.scp (required when the column is named)."""
    table = ds.scp.parent / f"utt2{ds.category_column or DEFAULT_CATEGORY}"
    if ds.category_column is not None and not table.is_file():
        raise DatasetError(f"dataset.category_column: {table} not found (the Kaldi table of column "
                           f"{ds.category_column!r})")
    return _two_columns(table, "category_column") if table.is_file() else {}


def _span_problem(start: float | None, end: float | None) -> str | None:
    if start is not None and start < 0:
        return f"start {start} s is negative"
    if end is not None and end <= (start or 0.0):
        return f"end {end} s is not after start {start or 0.0} s"
    return None


def _resolve(path: Path, base: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else base / path


JSONL_FIELDS = {"file": str, "id": str, "text": str, "start": (int, float), "end": (int, float)}


def _jsonl_entries(ds: DatasetConfig) -> list[Entry]:
    listing = ds.jsonl
    column = ds.category_column or DEFAULT_CATEGORY
    entries: list[Entry] = []
    for number, line in _text_lines(listing, "jsonl"):
        where = f"{listing} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"dataset.jsonl: {where}: not a JSON object ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DatasetError(f"dataset.jsonl: {where}: expected a JSON object, got {type(row).__name__}")
        for name, kind in JSONL_FIELDS.items():
            value = row.get(name)
            if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
                raise DatasetError(f"dataset.jsonl: {where}: field {name!r} must be a "
                                   f"{'number' if name in ('start', 'end') else 'string'}, got {value!r}")
        if not row.get("file"):
            raise DatasetError(f"dataset.jsonl: {where}: no 'file' field (fields: {', '.join(row) or 'none'})")
        if ds.category_column is not None and column not in row:
            raise DatasetError(f"dataset.category_column: {where}: no field {column!r} (fields: {', '.join(row)})")
        start, end = row.get("start"), row.get("end")
        if (problem := _span_problem(start, end)) is not None:
            raise DatasetError(f"dataset.jsonl: {where}: {problem}")
        path = _resolve(Path(row["file"]), listing.parent)
        if not path.is_file():
            raise DatasetError(f"dataset.jsonl: {where}: {path} not found")
        item_id = row.get("id") or (row["file"] if start is None and end is None
                                    else f"{row['file']}#{start or 0:g}-{'end' if end is None else f'{end:g}'}")
        entries.append(FileEntry(item_id=item_id, where=where, path=path,
                                 start_s=None if start is None and end is None else float(start or 0.0),
                                 end_s=None if end is None else float(end), category=str(row.get(column) or ""),
                                 text=row.get("text") or None))
    return entries


def _missing_extra(package: str, extra: str, field: str) -> DatasetError:
    return DatasetError(f"dataset.{field}: reading this format needs the optional package {package!r}: "
                        f"pip install 'codec-evalkit[{extra}]'")


def _lhotse_entries(ds: DatasetConfig) -> list[Entry]:
    try:
        import lhotse
    except ImportError:
        raise _missing_extra("lhotse", "lhotse", "lhotse") from None
    path = ds.lhotse
    if not path.is_file():
        raise DatasetError(f"dataset.lhotse: {path} not found")
    try:
        manifest = lhotse.load_manifest(path)
    except (ValueError, KeyError, TypeError, AttributeError, OSError, EOFError) as exc:
        raise DatasetError(f"dataset.lhotse: {path}: not a Lhotse manifest ({type(exc).__name__}: {exc})") from None
    if isinstance(manifest, lhotse.RecordingSet):
        units = [rec.with_path_prefix(path.parent) for rec in manifest]
    elif isinstance(manifest, lhotse.CutSet):
        units = [cut.with_recording_path_prefix(path.parent) for cut in manifest]
    else:
        raise DatasetError(f"dataset.lhotse: {path} is a {type(manifest).__name__}, not a recording or cut manifest "
                           f"(give the manifest that carries the audio)")
    column = ds.category_column or DEFAULT_CATEGORY
    entries: list[Entry] = []
    for n, unit in enumerate(units, start=1):
        where = f"{path} entry {n} ({unit.id})"
        _check_lhotse_sources(unit, where)
        category = _lhotse_field(unit, column)
        if category is None and ds.category_column is not None:
            raise DatasetError(f"dataset.category_column: {where}: no custom field {column!r}")
        supervisions = sorted(getattr(unit, "supervisions", None) or [], key=lambda s: s.start)
        text = " ".join(s.text for s in supervisions if s.text) or None
        entries.append(LhotseEntry(item_id=unit.id, where=where, cut=unit, category=str(category or ""), text=text))
    return entries


def lhotse_recordings(unit: Any) -> list[Any]:
    if hasattr(unit, "sources"):  # a Recording
        return [unit]
    if getattr(unit, "recording", None) is not None:
        return [unit.recording]
    return [track.cut.recording for track in getattr(unit, "tracks", None) or []
            if getattr(track.cut, "recording", None) is not None]


def _check_lhotse_sources(unit: Any, where: str) -> None:
    recordings = lhotse_recordings(unit)
    if not recordings:
        raise DatasetError(f"dataset.lhotse: {where}: no recording (a cut without audio)")
    for rec in recordings:
        for source in rec.sources:
            if source.type not in LHOTSE_SOURCES:
                raise DatasetError(f"dataset.lhotse: {where}: audio source of type {source.type!r} refused "
                                   f"(evalkit never runs commands or downloads; give files)")
            if source.type == "file" and not Path(source.source).is_file():
                raise DatasetError(f"dataset.lhotse: {where}: {source.source} not found")


def _lhotse_field(unit: Any, name: str) -> Any:
    """A custom field of the cut (or recording), else an attribute or custom field of its first supervision."""
    custom = getattr(unit, "custom", None) or {}
    if name in custom:
        return custom[name]
    for sup in getattr(unit, "supervisions", None) or []:
        if getattr(sup, name, None) is not None:
            return getattr(sup, name)
        if name in (sup.custom or {}):
            return sup.custom[name]
    return None


@contextlib.contextmanager
def _hub_offline(datasets_module: Any) -> Iterator[None]:
    """The Hub in offline mode for the duration (as ``HF_HUB_OFFLINE=1`` does, without editing the environment)."""
    from huggingface_hub import constants

    saved = datasets_module.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets_module.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets_module.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _load_hf(ds: DatasetConfig) -> tuple[Any, str]:
    """(the dataset's split, a name for messages)."""
    try:
        import datasets
    except ImportError:
        raise _missing_extra("datasets", "hf", "hf") from None
    folder = Path(ds.hf)
    saved = folder.is_dir() and ((folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file())
    with _hub_offline(datasets):
        try:
            loaded = (datasets.load_from_disk(str(folder)) if saved
                      else datasets.load_dataset(ds.hf, split=ds.split))
        except (OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as exc:
            where = "a folder" if folder.is_dir() else "a name in the local Hugging Face cache"
            raise DatasetError(f"dataset.hf: {ds.hf} cannot be read as {where} (evalkit never downloads): "
                               f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if isinstance(loaded, datasets.DatasetDict):
        if ds.split not in loaded:
            given = "give dataset.split" if ds.split is None else f"no split {ds.split!r}"
            raise DatasetError(f"dataset.split: {ds.hf}: {given} (splits: {', '.join(loaded)})")
        loaded = loaded[ds.split]
    return loaded, f"{ds.hf}" + (f" [{ds.split}]" if ds.split else "")


def _hf_column(rows: Any, field: str, column: str, name: str) -> None:
    if column not in rows.column_names:
        close = nearest(column, rows.column_names)
        raise DatasetError(f"dataset.{field}: {name} has no column {column!r} (columns: "
                           f"{', '.join(rows.column_names)})" + (f"; did you mean {close!r}?" if close else ""))


def _hf_entries(ds: DatasetConfig) -> list[Entry]:
    rows, name = _load_hf(ds)  # first: a missing package is its one line
    import datasets

    audio = ds.audio_column or DEFAULT_AUDIO_COLUMN
    _hf_column(rows, "audio_column", audio, name)
    feature = rows.features[audio]
    if isinstance(feature, datasets.Audio):
        rows = rows.cast_column(audio, datasets.Audio(decode=False))  # raw bytes: read by evalkit's own loader
    elif not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
        raise DatasetError(f"dataset.audio_column: {name}: column {audio!r} holds {feature}, not audio or paths")
    if ds.category_column is not None:
        _hf_column(rows, "category_column", ds.category_column, name)
    column = ds.category_column or DEFAULT_CATEGORY
    categories = rows[column] if column in rows.column_names else [""] * len(rows)
    texts = rows[HF_TEXT_COLUMN] if HF_TEXT_COLUMN in rows.column_names else [None] * len(rows)
    ids = ([str(i) for i in rows[HF_ID_COLUMN]] if HF_ID_COLUMN in rows.column_names
           else [f"{i:06d}" for i in range(len(rows))])
    return [HfEntry(item_id=ids[i], where=f"{name} row {i}", rows=rows, index=i, column=audio,
                    category=str(categories[i] or ""), text=texts[i] or None) for i in range(len(rows))]
