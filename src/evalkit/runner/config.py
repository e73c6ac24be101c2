"""Run configuration (YAML), validated as a whole: every problem is one line naming its field.

Example::

    dataset: {folder: data/demo, glob: "*.flac", segment_seconds: null, max_items: null}
    codecs:
      - family: encodec-24khz
        params: {bandwidth: [1.5, 6]}
      - spec: "lowpass?cutoff_hz=3500"
    metrics: [si_sdr, mel_distance, pesq_wb]     # or "applicable"
    output: runs/demo
    device: auto
    workers: 2
    seed: 0
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evalkit.codecs import FAMILIES, CodecSpec, SpecError, get_family, parse_spec


class ConfigError(ValueError):
    """A config with problems; ``problems`` holds one line per problem, each naming its field."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetConfig(_Strict):
    folder: Path | None = None
    glob: str = "*.flac"
    manifest: Path | None = None
    segment_seconds: float | None = Field(default=None, gt=0)
    max_items: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        if (self.folder is None) == (self.manifest is None):
            raise ValueError("give exactly one of 'folder' (with 'glob') or 'manifest'")
        return self


class CodecGrid(_Strict):
    """Either a spec string, or a family with a list of values per parameter (their product is the grid)."""

    spec: str | None = None
    family: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_form(self) -> CodecGrid:
        if (self.spec is None) == (self.family is None):
            raise ValueError("give exactly one of 'spec' or 'family' (+ 'params')")
        if self.spec is not None and self.params:
            raise ValueError("'params' goes with 'family', not with 'spec'")
        return self


class RunConfig(_Strict):
    dataset: DatasetConfig
    codecs: list[CodecGrid] = Field(min_length=1)
    metrics: list[str] | Literal["applicable"] = "applicable"
    output: Path
    device: str = "auto"
    workers: int = Field(default=2, ge=1)
    seed: int = 0
    channel_policy: Literal["per_channel", "mono"] = "per_channel"
    max_delay_s: float = Field(default=0.05, ge=0)


def expand_grid(grid: CodecGrid) -> list[CodecSpec]:
    """Spec(s) of one grid entry; raises SpecError naming the bad parameter."""
    if grid.spec is not None:
        return [parse_spec(grid.spec)]
    family = get_family(grid.family)
    names = list(grid.params)
    values = [v if isinstance(v, list) else [v] for v in grid.params.values()]
    return [family.resolve(dict(zip(names, combo, strict=True))) for combo in itertools.product(*values)]


def _pydantic_problems(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(f"{field}: {message}")
    return lines


def validate_config(raw: dict, base_dir: Path, source: str = "config") -> tuple[RunConfig, list[CodecSpec]]:
    """Check everything (schema, codec specs, metric names, dataset paths) and report all problems at once.

    Relative paths are taken from ``base_dir``.

    Raises:
        ConfigError: with one line per problem.
    """
    from evalkit.metrics import PAIR_METRICS

    if not isinstance(raw, dict):
        raise ConfigError(source, ["(top level): expected a mapping of fields"])
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, _pydantic_problems(exc)) from None
    problems: list[str] = []
    specs: list[CodecSpec] = []
    for i, grid in enumerate(config.codecs):
        try:
            specs.extend(s for s in expand_grid(grid) if s not in specs)
        except SpecError as exc:
            problems.append(f"codecs.{i}: {exc}")
    if config.metrics != "applicable":
        for i, name in enumerate(config.metrics):
            if name not in PAIR_METRICS:
                problems.append(f"metrics.{i}: unknown metric {name!r}; valid: {', '.join(PAIR_METRICS)}")
    ds = config.dataset
    updates: dict[str, Any] = {"output": _resolve(config.output, base_dir)}
    if ds.folder is not None:
        folder = _resolve(ds.folder, base_dir)
        if not folder.is_dir():
            problems.append(f"dataset.folder: {folder} is not a folder")
        elif not any(folder.glob(ds.glob)):
            problems.append(f"dataset.glob: {ds.glob!r} matches no file in {folder}")
        updates["dataset"] = ds.model_copy(update={"folder": folder})
    else:
        manifest = _resolve(ds.manifest, base_dir)
        if not manifest.is_file():
            problems.append(f"dataset.manifest: {manifest} not found")
        else:
            with open(manifest, newline="") as fh:
                header = next(csv.reader(fh), [])
            if "file" not in header:
                problems.append(f"dataset.manifest: {manifest.name} has no 'file' column (columns: "
                                f"{', '.join(header) or 'none'})")
        updates["dataset"] = ds.model_copy(update={"manifest": manifest})
    if problems:
        raise ConfigError(source, problems)
    return config.model_copy(update=updates), specs


def _resolve(path: Path, base_dir: Path) -> Path:
    return path if path.is_absolute() else (base_dir / path)


def load_config(path: str | Path) -> tuple[RunConfig, list[CodecSpec]]:
    """Read and validate a YAML config; relative paths are relative to the current directory."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), [f"config file {path} not found"])
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"(yaml): {exc}"]) from None
    return validate_config(raw, Path.cwd(), str(path))


__all__ = ["FAMILIES", "CodecGrid", "ConfigError", "DatasetConfig", "RunConfig", "expand_grid", "load_config",
           "validate_config"]
