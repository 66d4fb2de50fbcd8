"""Why a path could not be used, in words for a message."""

from __future__ import annotations

import errno

__all__ = ["path_error_reason"]


def path_error_reason(err: BaseException) -> str:
    """The reason of an error raised while opening a path: "the path is too long" for
    ``ENAMETOOLONG``, else the system's words (``strerror``), else the error's text."""
    if getattr(err, "errno", None) == errno.ENAMETOOLONG:
        return "the path is too long"
    return getattr(err, "strerror", None) or str(err)
