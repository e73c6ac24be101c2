"""Text for the user's terminal: names shown escaped, and a near name suggested for a misspelled one.

File names, item ids, labels and paths come from the user's data and may hold control characters: an ESC
starting a terminal escape sequence, a CR that overwrites the line, a BEL, a newline that forges a line of
output. Everything evalkit prints that carries such a name goes through :func:`shown` (the log formatters, the
CLI's error line, :class:`~evalkit.runner.config.ConfigError`, the run summary); stored values keep the real
names.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

# C0 controls (newline, CR, tab, ESC, BEL...), DEL, C1 controls (CSI 0x9b among them), the line and paragraph
# separators, and the bidirectional overrides and isolates that reorder what a terminal shows.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object) -> str:
    r"""``text`` as printed on a terminal: control characters written as escapes, the rest unchanged.

    >>> shown("take\x1b[2J1.wav"), shown("a\nb\rc"), shown("ünïcode ok.flac")
    ('take\\x1b[2J1.wav', 'a\\nb\\rc', 'ünïcode ok.flac')
    """
    return _UNSAFE.sub(_escape, str(text))


def shown_lines(text: str) -> str:
    r"""A block of several lines (a table) as printed: each line through :func:`shown`, the line breaks kept.

    >>> shown_lines("a\x07\nb")
    'a\\x07\nb'
    """
    return "\n".join(shown(line) for line in str(text).split("\n"))


def nearest(name: str, choices: Iterable[str]) -> str | None:
    """The choice closest to a misspelled ``name`` (difflib's ratio at least 0.6), else ``None``.

    >>> nearest("datset", ["dataset", "codecs"]), nearest("colour", ["dataset", "codecs"])
    ('dataset', None)
    """
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


P_FLOOR = 0.0001  # p-values below this print as "< 0.0001" (four decimals would show a misleading 0.0000)


def format_p(p, missing: str = "nan") -> str:
    """A p-value with four decimals, ``< 0.0001`` below that, ``missing`` for None or NaN.

    >>> format_p(0.01234), format_p(3e-7), format_p(None, "-")
    ('0.0123', '< 0.0001', '-')
    """
    if p is None or p != p:
        return missing
    return f"< {P_FLOOR}" if p < P_FLOOR else f"{p:.4f}"
