"""Run configuration (YAML), validated as a whole: every problem is one line naming its field.

Example::

    dataset: {folder: data/demo, glob: null, segment_seconds: null, max_items: null}  # glob null: every audio file
    codecs:
      - family: encodec-24khz
        params: {bandwidth: [1.5, 6]}
      - spec: "lowpass?cutoff_hz=3500"
      - decoded: {folder: decoded/mycodec-6k, label: "mycodec 6 kbps", bitrate_kbps: 6.0}
    plugins: [my_codec.py, my_lab.metrics]       # plugin files or modules defining FAMILIES and/or METRICS
    metrics: [si_sdr, mel_distance, pesq_wb]     # or "applicable"
    exclude_metrics: []                          # left out of either (e.g. [wer, cer, dwer])
    output: runs/demo
    device: auto
    workers: 2
    executor: local                              # or {kind: slurm, slurm_partition: debug, slurm_jobs: 4, ...}
    seed: 0

Relative paths (dataset, output, plugins, decoded folders, and ``weights=``/``calibration=`` inside codec specs)
are taken from the config file's folder. Every field is classified below as changing decoded audio
(:data:`DECODE_FIELDS`, part of every unit key), changing metric values (:data:`SCORE_FIELDS`, part of every
result key), or neither (:data:`PLAN_FIELDS`); a test checks that no field is left out.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from evalkit.codecs import FAMILIES, CodecSpec, SpecError, get_family, split_spec
from evalkit.errors import UserError
from evalkit.messages import nearest, shown
from evalkit.runner.dataset import folder_problems, manifest_problems, not_utf8


class ConfigError(UserError, ValueError):
    """A config with problems; ``problems`` holds one line per problem, each naming its field.

    One problem reads as one line (``source: field: message``); several as a header and one line each. The
    message shows control characters in names escaped (:func:`~evalkit.messages.shown`); ``problems`` keeps
    them as they are.
    """

    terminal_safe = True  # its message is already escaped: the CLI prints it as it is

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"{shown(source)}: {shown(problems[0])}")
        else:
            super().__init__(f"{shown(source)}: {len(problems)} problems:\n"
                             + "\n".join(f"  - {shown(p)}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(_Strict):
    """Where the items come from: exactly one of a folder, a manifest CSV, a Kaldi ``wav.scp``, a Lhotse
    manifest, a Hugging Face dataset or a JSON-lines list (see :mod:`evalkit.runner.formats`)."""

    folder: Path | None = None
    glob: str | None = None  # None: the folder's audio files (evalkit.audio.AUDIO_EXTENSIONS), not its subfolders
    manifest: Path | None = None
    scp: Path | None = None  # Kaldi wav.scp (`text`, `utt2category` next to it are read when present)
    segments: Path | None = None  # Kaldi segments file (with scp): cuts of its recordings
    lhotse: Path | None = None  # Lhotse recording or cut manifest (.jsonl, .jsonl.gz, .json)
    hf: str | None = None  # Hugging Face dataset: a folder saved by save_to_disk, a local dataset folder or a name
    split: str | None = None  # with hf
    audio_column: str | None = None  # with hf (default "audio")
    jsonl: Path | None = None  # one JSON object per line: file, id, category, text, start, end
    category_column: str | None = None  # where categories are read (default "category", when present)
    segment_seconds: float | None = Field(default=None, gt=0)
    max_items: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        given = [name for name in SOURCE_FIELDS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'folder' (with 'glob'), 'manifest', 'scp' (with 'segments'), "
                             "'lhotse', 'hf' (with 'split', 'audio_column') or 'jsonl'"
                             + (f" (got {', '.join(map(repr, given))})" if given else ""))
        for name, owner in COMPANION_FIELDS.items():
            if getattr(self, name) is not None and getattr(self, owner) is None:
                raise ValueError(f"'{name}' goes with '{owner}'")
        return self

    @property
    def source_field(self) -> str:
        """The field naming the items' source (``folder``, ``manifest``, ``scp``, ``lhotse``, ``hf``, ``jsonl``)."""
        return next(name for name in SOURCE_FIELDS if getattr(self, name) is not None)


SOURCE_FIELDS = ("folder", "manifest", "scp", "lhotse", "hf", "jsonl")
COMPANION_FIELDS = {"glob": "folder", "segments": "scp", "split": "hf", "audio_column": "hf"}


class DecodedConfig(_Strict):
    """Files decoded by another tool, one per item (see :mod:`evalkit.runner.decoded`)."""

    folder: Path
    label: str = Field(min_length=1)
    bitrate_kbps: float | None = Field(default=None, gt=0)
    codes: Path | None = None
    cardinality: int | None = Field(default=None, ge=2)
    family: str | None = Field(default=None, min_length=1)  # rate-quality curve (default: the label)
    length_tolerance_s: float = Field(default=0.1, ge=0)

    @model_validator(mode="after")
    def _codes_with_cardinality(self) -> DecodedConfig:
        if (self.codes is None) != (self.cardinality is None):
            raise ValueError("'codes' and 'cardinality' go together (codebook entries K of the code arrays)")
        return self


class CodecGrid(_Strict):
    """A spec string, a family with a list of values per parameter (their product is the grid), or a folder of
    decoded files."""

    spec: str | None = None
    family: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    decoded: DecodedConfig | None = None

    @model_validator(mode="after")
    def _one_form(self) -> CodecGrid:
        if sum(x is not None for x in (self.spec, self.family, self.decoded)) != 1:
            raise ValueError("give exactly one of 'spec', 'family' (+ 'params') or 'decoded'")
        if self.spec is not None and self.params:
            raise ValueError("'params' goes with 'family', not with 'spec'")
        return self


SLURM_MEMORY = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?)?B$", re.IGNORECASE)  # as dask-jobqueue's ``memory``
SLURM_WALLTIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")  # Slurm's [D-]HH[:MM[:SS]] and MM[:SS] forms


class ExecutorConfig(_Strict):
    """Where units run: ``local`` (worker processes here), ``dask`` (the scheduler at ``scheduler``, or a new
    LocalCluster) or ``slurm`` (Dask workers started as Slurm jobs through dask-jobqueue's ``SLURMCluster``:
    ``slurm_jobs`` jobs of ``slurm_cores`` cores and ``slurm_memory`` each, one single-task worker per job).
    The string ``slurm`` is short for ``{kind: slurm}``; ``evalkit run``'s options override these fields."""

    kind: Literal["local", "dask", "slurm"] = "local"
    scheduler: str | None = None
    slurm_partition: str | None = None  # None: the cluster's default partition
    slurm_jobs: int = Field(default=1, ge=1)
    slurm_cores: int = Field(default=1, ge=1)
    slurm_memory: str = "4GB"
    slurm_walltime: str = "01:00:00"

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _slurm_formats(self) -> ExecutorConfig:
        if not SLURM_MEMORY.match(self.slurm_memory):
            raise ValueError(f"slurm_memory: expected a size such as 8GB or 500MB, got {self.slurm_memory!r}")
        if not SLURM_WALLTIME.match(self.slurm_walltime):
            raise ValueError(f"slurm_walltime: expected HH:MM:SS (or D-HH:MM:SS), got {self.slurm_walltime!r}")
        return self


class RunConfig(_Strict):
    dataset: DatasetConfig
    codecs: list[CodecGrid] = Field(min_length=1)
    # plugin files or importable module names defining codec families (FAMILIES) and/or metrics (METRICS)
    plugins: list[str] = []
    metrics: list[str] | Literal["applicable"] = "applicable"
    exclude_metrics: list[str] = []
    output: Path
    device: str = "auto"
    workers: int = Field(default=2, ge=0)  # 0: units run in this process (no isolation from a native crash)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    seed: int = 0
    channel_policy: Literal["per_channel", "mono"] = "per_channel"
    max_delay_s: float = Field(default=0.05, ge=0)
    log: list[Literal["tensorboard", "wandb"]] = []  # trackers that get the finished run (reports/tracking.py)


#: Fields that change the decoded audio of a unit: hashed into every unit key (and so every result key).
#: ``device`` is hashed per variant as the device its codec really runs on (see ``plan.plan_variant``).
DECODE_FIELDS = ("channel_policy", "dataset.segment_seconds")
#: Fields that change metric values but not decoded audio: hashed into every result key and passed to
#: ``score_pair`` as keyword arguments (field name = argument name).
SCORE_FIELDS = ("max_delay_s",)
#: Fields that only choose what is planned or how it is run; they change no stored value.
# A dataset's source fields choose the items; what they read (samples, cut bounds) is keyed through each item's
# id and content hash (a cut is written to a file of its own samples, see ``formats``).
PLAN_FIELDS = ("dataset.folder", "dataset.glob", "dataset.manifest", "dataset.scp", "dataset.segments",
               "dataset.lhotse", "dataset.hf", "dataset.split", "dataset.audio_column", "dataset.jsonl",
               "dataset.category_column", "dataset.max_items", "codecs", "metrics",
               "exclude_metrics", "output", "device", "workers", "executor", "seed",
               "plugins", "log")  # a plugin's code identity is keyed per variant (see ``plan.plan_variant``)


def _field(config: RunConfig, dotted: str):
    value = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def decode_settings(config: RunConfig) -> dict[str, Any]:
    """The settings that change decoded audio, by field name (JSON-serialisable; part of unit keys)."""
    return {name.rsplit(".", 1)[-1]: _field(config, name) for name in DECODE_FIELDS}


def score_settings(config: RunConfig) -> dict[str, Any]:
    """The settings that change metric values (keyword arguments of ``score_pair``; part of result keys)."""
    return {name.rsplit(".", 1)[-1]: _field(config, name) for name in SCORE_FIELDS}


PATH_PARAMS = ("weights", "calibration")  # spec parameters holding a path (besides keywords, for weights)
WEIGHTS_KEYWORDS = ("pretrained", "random")


def _resolve_param_paths(raw: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    if base_dir is None:
        return raw
    raw = dict(raw)
    for name in PATH_PARAMS:
        value = raw.get(name)
        if isinstance(value, str) and value and value not in WEIGHTS_KEYWORDS:
            raw[name] = str(_resolve(Path(value).expanduser(), base_dir))
    return raw


def expand_grid(grid: CodecGrid, base_dir: Path | None = None) -> list[CodecSpec]:
    """Spec(s) of one grid entry; raises SpecError naming the bad parameter.

    Relative ``weights=``/``calibration=`` paths (and a decoded entry's folders) are taken from ``base_dir``.
    """
    if grid.decoded is not None:
        return [_decoded_source(grid.decoded, base_dir).spec()]
    if grid.spec is not None:
        family, raw = split_spec(grid.spec)
        return [get_family(family).resolve(_resolve_param_paths(raw, base_dir))]
    family = get_family(grid.family)
    names = list(grid.params)
    values = [v if isinstance(v, list) else [v] for v in grid.params.values()]
    return [family.resolve(_resolve_param_paths(dict(zip(names, combo, strict=True)), base_dir))
            for combo in itertools.product(*values)]


def _decoded_source(decoded: DecodedConfig, base_dir: Path | None):
    from evalkit.runner.decoded import DecodedSource

    def where(path: Path | None) -> Path | None:
        if path is None:
            return None
        path = path.expanduser()
        return path if base_dir is None else _resolve(path, base_dir)

    return DecodedSource(where(decoded.folder), decoded.label, decoded.bitrate_kbps, where(decoded.codes),
                         decoded.cardinality, decoded.family, decoded.length_tolerance_s)


def decoded_problems(decoded: DecodedConfig, base_dir: Path) -> list[str]:
    """Problems of a decoded entry known before any unit runs (folders, characters a spec cannot hold)."""
    source = _decoded_source(decoded, base_dir)
    problems = []
    for name, folder in (("folder", source.folder), ("codes", source.codes)):
        if folder is not None and not folder.is_dir():
            problems.append(f"{name}: {folder} is not a folder")
    for name in ("folder", "label", "codes", "family"):
        value = getattr(source, name)
        if value is not None and "&" in str(value):
            problems.append(f"{name}: {str(value)!r} contains '&', which a spec string cannot hold")
    return problems


def resolve_plugin(entry: str, base_dir: Path) -> str:
    """A ``plugins:`` entry as the runner uses it: a module name as given, a file as an absolute path (relative
    ones taken from ``base_dir``).

    >>> resolve_plugin("my_lab.codecs", Path("/cfg")), resolve_plugin("my_codec.py", Path("/cfg"))
    ('my_lab.codecs', '/cfg/my_codec.py')
    """
    from evalkit.plugin_files import is_module_name

    return entry if is_module_name(entry) else str(_resolve(Path(entry).expanduser(), base_dir))


def plugin_problems(entries: list[str], base_dir: Path) -> tuple[list[str], list[str]]:
    """Import every plugin file or module (registering its families and metrics); the resolved entries
    (:func:`resolve_plugin`) and one line per problem."""
    from evalkit.codecs import PluginError, load_plugin_file
    from evalkit.metrics import load_metric_plugins

    resolved, problems = [], []
    for i, entry in enumerate(entries):
        path = resolve_plugin(entry, base_dir)
        resolved.append(path)
        try:
            load_plugin_file(path)
            load_metric_plugins([path])
        except PluginError as exc:
            problems.append(f"plugins.{i}: {exc}")
    return resolved, problems


DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_problem(device: str) -> str | None:
    """Why ``device`` cannot be used on this machine, or ``None``."""
    if not DEVICE_PATTERN.fullmatch(device):
        return f"device: unknown device {device!r}; expected auto, cpu, cuda or cuda:N"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return f"device: {device} requested but no CUDA GPU is available (use auto or cpu)"
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            return f"device: {device} requested but only {torch.cuda.device_count()} CUDA GPU(s) are present"
    return None


def _spec_problems(spec: CodecSpec) -> list[str]:
    """Problems of one variant that are known before any unit runs (missing files, unusable calibration)."""
    problems = []
    weights = spec.params.get("weights")
    if isinstance(weights, str) and weights not in WEIGHTS_KEYWORDS:
        if not Path(weights).is_file():
            problems.append(f"{spec}: weights file {weights} does not exist")
        elif (problem := _weights_file_problem(spec, Path(weights))) is not None:
            problems.append(f"{spec}: {problem}")
    from evalkit.codecs import FAMILIES, build_codec
    from evalkit.codecs.klt import CalibrationError, check_calibration

    if spec.family not in FAMILIES:  # decoded folders are read, not built
        return problems
    try:
        check_calibration(build_codec(spec, device="cpu"))  # KLT only; reads files until the first usable one
    except CalibrationError as exc:
        problems.append(str(exc))
    return problems


def _weights_file_problem(spec: CodecSpec, path: Path) -> str | None:
    """Why an explicit weights file of EnCodec/DAC (or a KLT variant of one) would be refused at load time."""
    from evalkit.codecs import build_codec
    from evalkit.codecs.rvq import pretrained_model_of, weights_file_problem

    model = pretrained_model_of(build_codec(spec, device="cpu"))
    return None if model is None else weights_file_problem(model, path)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The config model whose fields sit at ``loc`` (field names and list indices from the top), if any."""
    model: type[BaseModel] | None = RunConfig
    for part in loc:
        if isinstance(part, int):  # an entry of a list: the list's model
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _model_in(field.annotation)
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):  # list[X], X | None
        if (model := _model_in(arg)) is not None:
            return model
    return None


def _pydantic_problems(exc: ValidationError) -> list[str]:
    """One line per schema error; an unknown field nearly spelled like a known one says "did you mean", and
    that field's own "Field required" is then left out (it is the same mistake)."""
    errors = exc.errors()
    meant: dict[tuple, str] = {}  # loc of an unknown key -> the known field it is close to
    for err in errors:
        model = _model_at(err["loc"][:-1]) if err["type"] == "extra_forbidden" else None
        if model is not None and (close := nearest(str(err["loc"][-1]), model.model_fields)) is not None:
            meant[err["loc"]] = close
    standing_for = {loc[:-1] + (close,) for loc, close in meant.items()}
    lines = []
    for err in errors:
        loc = err["loc"]
        if err["type"] == "missing" and loc in standing_for:
            continue
        field = ".".join(str(p) for p in loc) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field" + (f"; did you mean {meant[loc]!r}?" if loc in meant else "")
        lines.append(f"{field}: {message}")
    return lines


_OPTION = {"kind": "executor"}  # executor fields whose command-line option is not named after them


def override_executor(config: RunConfig, options: dict[str, Any], source: str) -> RunConfig:
    """``config`` with its executor fields replaced by the command-line ``options`` given (``None``: not given).

    Raises:
        ConfigError: a bad value, or a ``slurm_*`` option without the ``slurm`` executor, one line per option
            (named as on the command line, ``--slurm-jobs``).
    """
    given = {name: value for name, value in options.items() if value is not None}
    try:
        executor = ExecutorConfig.model_validate({**config.executor.model_dump(), **given})
    except ValidationError as exc:
        lines = [line.removeprefix("(top level): ").partition(": ") for line in _pydantic_problems(exc)]
        raise ConfigError(source, [f"--{_OPTION.get(name, name.replace('_', '-'))}: {message}"
                                   for name, _, message in lines]) from None
    if executor.kind != "slurm" and (stray := [n for n in given if n.startswith("slurm_")]):
        raise ConfigError(source, [f"--{n.replace('_', '-')}: only with --executor slurm (or executor: slurm in "
                                   f"the config), not {executor.kind}" for n in stray])
    return config.model_copy(update={"executor": executor})


def _valid_parts(raw: dict, config: RunConfig | None) -> dict[str, Any]:
    """Every top-level field that is valid by itself (absent optional ones at their default), and ``codecs`` as
    {index: entry} of the valid entries: what the checks beyond the schema can look at when the schema failed."""
    if config is not None:
        return {**{name: getattr(config, name) for name in RunConfig.model_fields},
                "codecs": dict(enumerate(config.codecs))}
    values: dict[str, Any] = {}
    for name, info in RunConfig.model_fields.items():
        if name == "codecs":
            continue
        if name not in raw:
            if not info.is_required():
                values[name] = info.get_default(call_default_factory=True)
            continue
        with contextlib.suppress(ValidationError):  # the schema's own error names it
            values[name] = TypeAdapter(Annotated[info.annotation, info]).validate_python(raw[name])
    grids = raw.get("codecs")
    values["codecs"] = {}
    for i, grid in enumerate(grids if isinstance(grids, list) else []):
        with contextlib.suppress(ValidationError):
            values["codecs"][i] = CodecGrid.model_validate(grid)
    return values


def _codec_problems(grids: dict[int, CodecGrid], base_dir: Path) -> tuple[list[CodecSpec], list[str]]:
    specs: list[CodecSpec] = []
    problems: list[str] = []
    checked: set[str] = set()
    for i, grid in grids.items():
        if grid.decoded is not None and (bad := decoded_problems(grid.decoded, base_dir)):
            problems += [f"codecs.{i}.decoded.{p}" for p in bad]
            continue
        try:
            grid_specs = expand_grid(grid, base_dir)
        except SpecError as exc:
            problems.append(f"codecs.{i}: {exc}")
            continue
        for spec in grid_specs:
            if str(spec) not in checked:
                checked.add(str(spec))
                problems += [f"codecs.{i}: {p}" for p in _spec_problems(spec)]
            if spec not in specs:
                specs.append(spec)
    return specs, problems


def _metric_problems(field: str, names: list[str]) -> list[str]:
    from evalkit.metrics import PAIR_METRICS
    from evalkit.plugin_files import PluginError

    problems = []
    for i, name in enumerate(names):
        try:
            known = name in PAIR_METRICS  # reads the metric entry points when not one of evalkit's own
        except PluginError as exc:
            problems.append(f"{field}.{i}: {exc}")
            continue
        if not known:
            close = nearest(name, PAIR_METRICS)
            hint = f"; did you mean {close!r}?" if close else ""
            problems.append(f"{field}.{i}: unknown metric {name!r}; valid: {', '.join(PAIR_METRICS)}{hint}")
    return problems


def validate_config(raw: dict, base_dir: Path, source: str = "config",
                    extra_plugins: Sequence[str] = ()) -> tuple[RunConfig, list[CodecSpec]]:
    """Check everything (schema, plugin files, codec specs, decoded folders, explicit weights files, KLT
    calibration audio, device, metric names, dataset paths and manifest) and report all problems at once: a
    field the schema rejects leaves the checks of the other fields running. A misspelled field name, codec
    parameter or metric name gets "did you mean".

    Relative paths, including ``weights=``/``calibration=`` inside codec specs, are taken from ``base_dir``.
    ``extra_plugins`` (files as absolute paths, or module names) are added to the config's ``plugins:``.

    Raises:
        ConfigError: with one line per problem.
    """
    if not isinstance(raw, dict):
        raise ConfigError(source, ["(top level): expected a mapping of fields"])
    if extra_plugins and isinstance(raw.get("plugins", []), list):
        raw = {**raw, "plugins": [*raw.get("plugins", []), *map(str, extra_plugins)]}
    try:
        config, problems = RunConfig.model_validate(raw), []
    except ValidationError as exc:
        config, problems = None, _pydantic_problems(exc)
    parts = _valid_parts(raw, config)
    updates: dict[str, Any] = {}
    if "plugins" in parts:  # before the specs: they name its families
        updates["plugins"], bad = plugin_problems(parts["plugins"], base_dir)
        problems += bad
    specs, bad = _codec_problems(parts["codecs"], base_dir)
    problems += bad
    if "device" in parts and (problem := device_problem(parts["device"])) is not None:
        problems.append(problem)
    if isinstance(parts.get("metrics"), list):
        problems += _metric_problems("metrics", parts["metrics"])
    problems += _metric_problems("exclude_metrics", parts.get("exclude_metrics", []))
    if "output" in parts:
        updates["output"] = _resolve(parts["output"], base_dir)
    if (ds := parts.get("dataset")) is not None:
        ds = resolve_dataset_paths(ds, base_dir)
        problems += dataset_problems(ds)
        updates["dataset"] = ds
    if problems:
        raise ConfigError(source, problems)
    return config.model_copy(update=updates), specs


def resolve_dataset_paths(ds: DatasetConfig, base_dir: Path) -> DatasetConfig:
    """``ds`` with its relative paths taken from ``base_dir`` (an ``hf`` value only when it names an existing
    folder there: otherwise it is a dataset name)."""
    update: dict[str, Any] = {name: _resolve(getattr(ds, name), base_dir)
                              for name in ("folder", "manifest", "scp", "segments", "lhotse", "jsonl")
                              if getattr(ds, name) is not None}
    if ds.hf is not None and (folder := _resolve(Path(ds.hf).expanduser(), base_dir)).is_dir():
        update["hf"] = str(folder)
    return ds.model_copy(update=update)


def dataset_problems(ds: DatasetConfig) -> list[str]:
    """Problems of the dataset known before any audio is decoded, one line each naming its field."""
    if ds.folder is not None:
        return folder_problems(ds.folder, ds.glob) + ([] if ds.category_column is None else [
            "dataset.category_column: a folder's categories come from its MANIFEST.csv 'category' column; "
            "give a manifest to choose another"])
    if ds.manifest is not None:
        return manifest_problems(ds.manifest, ds.category_column)
    from evalkit.runner.formats import DatasetError, read_entries

    try:
        read_entries(ds)
    except DatasetError as exc:
        return [str(exc)]
    return []


def _resolve(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else (base_dir / path)


def load_config(path: str | Path, extra_plugins: Sequence[str] = ()) -> tuple[RunConfig, list[CodecSpec]]:
    """Read and validate a YAML config; relative paths are taken from the config file's folder (``extra_plugins``:
    see :func:`validate_config`)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), [f"config file {path} not found"])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"(yaml): {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [not_utf8(exc)]) from None
    return validate_config(raw, path.resolve().parent, str(path), extra_plugins)


__all__ = ["DECODE_FIELDS", "FAMILIES", "PLAN_FIELDS", "SCORE_FIELDS", "CodecGrid", "ConfigError", "DatasetConfig",
           "DecodedConfig", "SOURCE_FIELDS", "dataset_problems", "resolve_dataset_paths",
           "RunConfig", "decode_settings", "device_problem", "expand_grid", "load_config", "score_settings",
           "validate_config"]
