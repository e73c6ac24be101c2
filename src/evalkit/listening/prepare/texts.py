"""The researcher's texts of a test (welcome instructions, consent, per-trial instructions), read from files."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.listening.errors import ListenError


def read_text_file(option: str, path: str | Path | None) -> str:
    """The UTF-8 text of ``path`` given for ``option`` ("" without a path).

    Raises:
        ListenError: the file cannot be read or is not UTF-8 text.
    """
    if path is None:
        return ""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ListenError(f"{option} {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ListenError(f"{option} {path}: not UTF-8 text (Markdown expected)") from None


def read_trial_instructions(path: str | Path | None) -> tuple[tuple[str, str], ...]:
    """``--trial-instructions``: Markdown for every trial (``(("*", text),)``), or a ``.json`` file's object
    {item or "*": Markdown} as pairs; ``()`` without a path or with an empty file.

    Raises:
        ListenError: unreadable, not JSON, or not an object of strings.
    """
    text = read_text_file("--trial-instructions", path)
    if path is None or not str(path).endswith(".json"):
        return (("*", text),) if text.strip() else ()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ListenError(f"--trial-instructions {path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise ListenError(f'--trial-instructions {path}: expected an object {{"item or *": "Markdown"}}')
    return tuple((str(k), v) for k, v in raw.items())
