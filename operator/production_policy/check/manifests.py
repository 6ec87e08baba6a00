"""Reading Kubernetes manifests from files and directories, each document with where it came from.

Multi-document YAML (and JSON) files; directories are searched for ``*.yaml``, ``*.yml`` and
``*.json``. A ``kind: List`` (or ``<Kind>List``, as ``kubectl get -o yaml`` writes) is unwrapped
into its items. Every problem names the file, the document (counted from 1) and the field.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Document:
    """One object of a manifest file: the file, its document number, its item number inside a List."""

    file: str
    index: int
    item: int | None
    obj: dict[str, Any]

    @property
    def location(self) -> str:
        """``file: document 2``, or ``file: document 2, item 3`` inside a List."""
        return _location(self.file, self.index, self.item)


@dataclass(frozen=True)
class Loaded:
    """The documents found, and one message per problem (with its location)."""

    documents: list[Document]
    errors: list[str]


def manifest_files(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The files named, and the manifest files inside the directories named (sorted), with errors."""
    files: list[Path] = []
    errors: list[str] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
            if not found:
                errors.append(f"{name}: no {', '.join(MANIFEST_SUFFIXES)} files in this directory")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{name}: no such file or directory")
    return files, errors


def load_documents(paths: Sequence[str]) -> Loaded:
    """Every object in the manifests at ``paths``; objects without apiVersion and kind are errors."""
    files, errors = manifest_files(paths)
    documents: list[Document] = []
    for path in files:
        raw: list[Any] = []
        try:
            with path.open(encoding="utf-8") as stream:
                raw.extend(yaml.safe_load_all(stream))
        except (OSError, UnicodeDecodeError) as error:
            errors.append(f"{path}: cannot read: {error}")
        except yaml.YAMLError as error:
            # The documents before the broken one were read: it is the next one.
            errors.append(f"{path}: document {len(raw) + 1}: {_describe_yaml_error(error)}")
        for index, obj in enumerate(raw, start=1):
            if obj is None:  # an empty document, such as after a trailing "---"
                continue
            for item, entry in _unwrap(obj):
                problem = _shape_problem(entry)
                if problem:
                    errors.append(f"{_location(str(path), index, item)}: {problem}")
                else:
                    documents.append(Document(str(path), index, item, entry))
    return Loaded(documents, errors)


def _location(file: str, index: int, item: int | None) -> str:
    return f"{file}: document {index}" + ("" if item is None else f", item {item}")


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    return f"invalid YAML: {where}{problem}"


def _unwrap(obj: Any) -> Iterator[tuple[int | None, Any]]:
    """(item number, object): the items of a List, else the object itself (item None)."""
    kind = obj.get("kind") if isinstance(obj, dict) else None
    if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        yield from enumerate(obj["items"], start=1)
    else:
        yield None, obj


def _shape_problem(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return f"not a Kubernetes object but a {type(obj).__name__}"
    for field in ("apiVersion", "kind"):
        if not isinstance(obj.get(field), str) or not obj[field]:
            return f"{field}: missing; every Kubernetes object needs apiVersion and kind"
    return None
