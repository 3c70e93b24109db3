"""A small Server-Sent Events reader for tests (the wire format: fields, blank-line separated)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    event: str
    data: str
    id: str | None
    retry: int | None = None

    def json(self) -> Any:
        return json.loads(self.data)


def parse(lines: Iterable[str]) -> Iterator[Event | str]:
    """Events, and comment lines (as the comment text) where the server sent them."""
    fields: dict[str, list[str]] = {}
    for raw in lines:
        line = raw.rstrip("\r\n")
        if line == "":
            if fields:
                retry = fields.get("retry")
                yield Event(
                    event=(fields.get("event") or ["message"])[-1],
                    data="\n".join(fields.get("data", [])),
                    id=fields["id"][-1] if "id" in fields else None,
                    retry=int(retry[-1]) if retry else None,
                )
                fields = {}
            continue
        if line.startswith(":"):
            yield line[1:].strip()
            continue
        name, _, value = line.partition(":")
        fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)


def events_only(items: Iterable[Event | str]) -> list[Event]:
    return [item for item in items if isinstance(item, Event)]
