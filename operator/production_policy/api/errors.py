"""Errors of ProductionPolicy validation, each naming its field: ``spec.resources.min.cpu: ...``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import ValidationError

Path = tuple[str | int, ...]


class FieldProblems(ValueError):
    """Raised by a model validator for problems in fields below the model, with paths relative to it.

    pydantic reports a model validator's error at the model itself; carrying the relative paths
    lets :func:`field_messages` name the exact field instead.
    """

    def __init__(self, problems: Sequence[tuple[Path, str]]) -> None:
        super().__init__("; ".join(f"{format_path(path)}: {message}" for path, message in problems))
        self.problems = list(problems)


class PolicyError(ValueError):
    """A ProductionPolicy is invalid; ``problems`` holds one ``field.path: message`` line per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


def format_path(path: Iterable[str | int]) -> str:
    """``("spec", "match", "namespaces", 0)`` -> ``spec.match.namespaces[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def field_messages(error: ValidationError, prefix: Path = ()) -> list[str]:
    """One ``path: message`` line per problem of a pydantic validation error, in the API's field names."""
    messages = []
    for detail in error.errors():
        path = prefix + tuple(detail["loc"])
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblems):
            messages += [_located(path + sub, message) for sub, message in cause.problems]
        elif isinstance(cause, ValueError):
            messages.append(_located(path, str(cause)))
        else:
            messages.append(_located(path, detail["msg"][:1].lower() + detail["msg"][1:]))
    return messages


def _located(path: Path, message: str) -> str:
    return f"{format_path(path)}: {message}" if path else message
