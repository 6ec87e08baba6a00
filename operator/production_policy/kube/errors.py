"""What can go wrong talking to the API server, said without the response body."""

from __future__ import annotations


class ApiError(Exception):
    """The API server answered with an error status. Its body is never kept: it may quote data."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason


class Conflict(Exception):
    """The object changed (or went away) since it was read: look again at its next version."""


class Gone(Exception):
    """The object does not exist (any more)."""


class Expired(Exception):
    """A watch's resourceVersion is too old to resume from: list afresh."""


def describe_error(exc: BaseException) -> str:
    """An error in one line, without the response body: it could quote what was sent or stored."""
    if isinstance(exc, ApiError):
        return f"HTTP {exc.status} {exc.reason}"
    return f"{type(exc).__name__}: {exc}"


def is_api_error(exc: BaseException) -> bool:
    """Whether the API server answered with an error (as opposed to a bug or a broken connection)."""
    return isinstance(exc, ApiError)
