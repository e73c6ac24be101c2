"""The listening-test error type, alone so that the CLI can catch it without importing anything else."""

from evalkit.errors import UserError


class ListenError(UserError, ValueError):
    """A user mistake (bad test folder, definition, ratings file, token): one line naming the file or field."""
