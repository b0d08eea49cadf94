"""Errors that carry a user-facing message.

`InputError` means the user gave something we cannot use (a missing file, a broken image, a bad
option value). The CLI prints its message as one line and exits with status 2; other exceptions
are bugs or environment failures and exit with status 1.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from the user; the message is one line, fit to show as it is."""


class PainterlyWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. a mask was resized).

    The CLI prints these as one line on stderr.
    """
