"""The exit statuses of the ``squeezelens`` command (the table in :mod:`squeezelens.core.errors` says
which error kind gives which)."""

from __future__ import annotations

#: Everything worked.
EXIT_OK = 0
#: ``classify``: some inputs could not be classified (each has its error line); the rest were.
EXIT_SOME_FAILED = 1
#: Bad usage, or a :class:`~squeezelens.core.errors.SqueezeLensError` (one ``squeezelens: error:`` line).
EXIT_USAGE = 2
#: A bug: an exception nobody raised on purpose (``SQUEEZELENS_DEBUG=1`` shows its traceback).
EXIT_INTERNAL = 3
#: Cancelled by Ctrl+C: 128 + SIGINT (2), what a shell reports for a process that SIGINT ended.
EXIT_CANCELLED = 130
#: stdout's reader left (``squeezelens classify DIR | head``): 128 + SIGPIPE (13), as a shell reports it.
EXIT_BROKEN_PIPE = 141
