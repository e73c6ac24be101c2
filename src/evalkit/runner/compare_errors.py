"""The error of ``evalkit compare`` in its own module, so the CLI imports nothing else of the comparisons at start."""

from evalkit.errors import UserError


class CompareError(UserError, ValueError):
    """A bad ``compare`` request (missing file, unknown metric or anchor); the message names it."""
