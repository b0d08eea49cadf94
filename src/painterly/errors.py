"""Errors that carry a user-facing message.

`InputError` means the user gave something we cannot use (a missing file, a broken image, a bad
option value). The CLI prints its message as one line and exits with status 2; other exceptions
are bugs or environment failures and exit with status 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class InputError(ValueError):
    """Bad input from the user; the message is one line, fit to show as it is.

    An error about an option writes the option's field in the message as `{size}`: `str()`
    shows the field name ("size must be ..."), `field` says which option it is about, and each
    client words it for its users with `worded` (the CLI as a flag, "--size", the web page as
    its label). The fields are those written so, unless `field` names them.
    """

    def __init__(self, message: str, *, field: str | Sequence[str] | None = None) -> None:
        self.template = message
        if field is None:
            field = list(dict.fromkeys(_FIELD.findall(message)))
        self.fields: tuple[str, ...] = (field,) if isinstance(field, str) else tuple(field)
        super().__init__(self.worded())

    @property
    def field(self) -> str | None:
        """The option the error is about (the first, when it names several)."""
        return self.fields[0] if self.fields else None

    def worded(self, name: Callable[[str], str] = str) -> str:
        """The message with each option field named by `name(field)`."""
        text = self.template
        for option in self.fields:
            text = text.replace("{" + option + "}", name(option))
        return text


class PainterlyWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. a mask was resized).

    The CLI prints these as one line on stderr.
    """
