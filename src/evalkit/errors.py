"""The one base class of user errors: bad input that the command line reports as one line and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (a file, a field, an option): its message is one line that names what is wrong.

    Every module raises a subclass of it for what the user can fix; ``evalkit.cli.main`` is the one place that
    prints it. A subclass that already escapes the names it quotes sets ``terminal_safe = True``.
    """

    terminal_safe = False
