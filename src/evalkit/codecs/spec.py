"""Parametric codec spec strings: ``family?key=value&key=value``.

A spec names a codec family and fixes its constructor parameters, e.g. ``encodec-24khz?bandwidth=6`` or
``dac-44khz?n_codebooks=4``. Parsing validates every parameter against the family's declaration and fills
defaults, so the canonical form (sorted, complete) identifies a variant in caches and result tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from evalkit.errors import UserError
from evalkit.messages import nearest


class SpecError(UserError, ValueError):
    """An unknown family, unknown parameter or bad value in a codec spec; the message names it."""


def format_value(value: Any) -> str:
    """Canonical text of a parameter value (``6.0`` → ``6``, ``1.5`` → ``1.5``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return format(value, "g")
    return str(value)


@dataclass(frozen=True)
class Param:
    """One constructor parameter of a codec family.

    Attributes:
        kind: ``int``, ``float`` or ``str``; raw spec text is converted with it.
        choices: allowed values, or ``None`` for any value passing ``minimum``/``maximum``.
        sweep: the parameter that sets the bitrate (listed by ``evalkit codecs list``).
    """

    name: str
    kind: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    sweep: bool = False

    def parse(self, raw: Any, family: str) -> Any:
        try:
            value = self.kind(raw) if not isinstance(raw, self.kind) else raw
        except (TypeError, ValueError):
            raise SpecError(
                f"{family}: {self.name}={raw!r} is not a valid {self.kind.__name__}") from None
        if self.kind is int and isinstance(raw, float | str) and float(raw) != value:
            raise SpecError(f"{family}: {self.name}={raw!r} is not an integer")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(format_value(c) for c in self.choices)
            raise SpecError(f"{family}: {self.name}={format_value(value)} is not one of {allowed}")
        if self.minimum is not None and value < self.minimum:
            raise SpecError(f"{family}: {self.name}={format_value(value)} is below the minimum "
                            f"{format_value(self.minimum)}")
        if self.maximum is not None and value > self.maximum:
            raise SpecError(f"{family}: {self.name}={format_value(value)} is above the maximum "
                            f"{format_value(self.maximum)}")
        return value

    def describe(self) -> str:
        if self.choices is not None:
            allowed = "|".join(format_value(c) for c in self.choices)
        elif self.minimum is not None or self.maximum is not None:
            lo = format_value(self.minimum) if self.minimum is not None else ""
            hi = format_value(self.maximum) if self.maximum is not None else ""
            allowed = f"{lo}..{hi}"
        else:
            allowed = self.kind.__name__
        return f"{self.name}={allowed} (default {format_value(self.default)}): {self.help}"


@dataclass(frozen=True)
class CodecSpec:
    """A parsed, complete spec: family name plus every parameter value (defaults filled in)."""

    family: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:  # the spec is frozen: its text is made once (a unit reads it several times)
        if not self.params:
            return self.family
        query = "&".join(f"{k}={format_value(v)}" for k, v in sorted(self.params.items()))
        return f"{self.family}?{query}"

    def short(self, defaults: Mapping[str, Any]) -> str:
        """Spec text listing only the parameters that differ from ``defaults`` (for display)."""
        changed = {k: v for k, v in self.params.items() if defaults.get(k) != v}
        return str(CodecSpec(self.family, changed))


def split_spec(text: str) -> tuple[str, dict[str, str]]:
    """Split ``family?a=1&b=2`` into the family name and raw (string) parameters."""
    text = text.strip()
    if not text:
        raise SpecError("empty codec spec")
    family, _, query = text.partition("?")
    raw: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise SpecError(f"{text}: expected key=value, got {part!r}")
        if key in raw:
            raise SpecError(f"{text}: parameter {key!r} given twice")
        raw[key] = value
    return family.strip(), raw


@dataclass(frozen=True)
class CodecFamily:
    """A codec family: its parameters and a factory building a (not yet loaded) codec from them."""

    name: str
    description: str
    params: tuple[Param, ...]
    factory: Callable[..., Any]
    display_name: str = ""  # for labels ("QinCodec"); empty: see evalkit.labels.DISPLAY_NAMES, else the name

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def resolve(self, raw: Mapping[str, Any]) -> CodecSpec:
        known = {p.name for p in self.params}
        unknown = sorted(set(raw) - known)
        if unknown:
            close = [c for c in (nearest(u, known) for u in unknown) if c is not None]
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise SpecError(f"{self.name}: unknown parameter {', '.join(map(repr, unknown))}; "
                            f"valid: {', '.join(sorted(known)) or 'none'}{hint}")
        values = {p.name: p.parse(raw[p.name], self.name) if p.name in raw else p.default for p in self.params}
        return CodecSpec(self.name, values)
