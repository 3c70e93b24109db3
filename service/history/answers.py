"""The polled answers as bytes with their ETag, built by the response models, and their cache.

A page of a series is its points' JSON inside the page's own: each point is serialized once by the
point model (LossPoint or SeriesPoint) and kept so (the tails hold the newest points that way), and
a page is the page model's JSON (LossPage or SeriesPage) with those points spliced into its
`points` array. Polls by cursor then cost a join instead of a serialization of every point they
return, and a page is byte for byte the same whether it came from a tail or from a full read.

AnswerCache keeps whole answers by what was asked (ReadKey: the resource, the job, the series and
the query's values, as validated by the endpoint), within a byte budget, least recently used
first out; it is emptied whenever its generation moves (see service.history.freshness).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pydantic import BaseModel, TypeAdapter

from service.jobs.schemas import LossPage, LossPoint, SeriesPage, SeriesPoint
from service.single_flight import SingleFlight

ENTRY_OVERHEAD = 256  # bytes counted per cached answer on top of its body, key and ETag

# By the value's key in a point ("loss" or "value"): the point list's validator, one point's
# serializer, and the page model.
_POINT_LISTS: dict[str, TypeAdapter[Any]] = {
    "loss": TypeAdapter(list[LossPoint]),
    "value": TypeAdapter(list[SeriesPoint]),
}
_POINTS: dict[str, type[BaseModel]] = {"loss": LossPoint, "value": SeriesPoint}
_PAGES: dict[str, type[BaseModel]] = {"loss": LossPage, "value": SeriesPage}
assert all(next(iter(page.model_fields)) == "points" for page in _PAGES.values())


@dataclass(frozen=True, slots=True)
class Answer:
    """A 200's JSON body and its ETag (a weak one: a hash of the body)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Answer:
        return cls(body, f'W/"{hashlib.blake2b(body, digest_size=12).hexdigest()}"')


def point_fragments(rows: Iterable[tuple[int, float]], key: str) -> list[bytes]:
    """Each (step, value) row as the JSON of its point model ({"step": s, key: v}; a value that
    is not finite becomes null)."""
    points = _POINT_LISTS[key].validate_python([{"step": step, key: value} for step, value in rows])
    to_json = _POINTS[key].__pydantic_serializer__.to_json
    return [to_json(point) for point in points]


def page_answer(
    fragments: Sequence[bytes], next_after: int | None, total: int, *, key: str
) -> Answer:
    """A LossPage (key "loss") or SeriesPage (key "value") of points already serialized."""
    page = _PAGES[key].model_construct(points=[], next_after=next_after, total=total)
    head, tail = page.__pydantic_serializer__.to_json(page).split(b"[]", 1)  # points come first
    return Answer.of(b"".join((head, b"[", b",".join(fragments), b"]", tail)))


class ReadKey(NamedTuple):
    """What an answer is an answer to."""

    resource: str  # "job", "loss" or "metrics"
    job_id: str
    series: str | None = None
    query: tuple[int | None, ...] = ()

    def size(self) -> int:
        return len(self.job_id) + len(self.series or "") + 16 * len(self.query)


class AnswerCache:
    """Answers by ReadKey within `max_bytes`; emptied when the generation it is asked with moves."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.entries: OrderedDict[ReadKey, Answer] = OrderedDict()
        self.size = 0
        self.generation = 0  # the generation the entries were read in
        self.pending: SingleFlight[ReadKey] = SingleFlight()

    @staticmethod
    def cost(key: ReadKey, answer: Answer) -> int:
        return len(answer.body) + len(answer.etag) + key.size() + ENTRY_OVERHEAD

    def get(self, key: ReadKey, generation: int) -> Answer | None:
        if generation != self.generation:
            self.clear(generation)
            return None
        answer = self.entries.get(key)
        if answer is not None:
            self.entries.move_to_end(key)
        return answer

    def put(self, key: ReadKey, answer: Answer, generation: int) -> None:
        """Keep an answer read during `generation` (nothing, if the cache has moved past it)."""
        if generation > self.generation:
            self.clear(generation)
        cost = self.cost(key, answer)
        if generation != self.generation or cost > self.max_bytes:
            return
        old = self.entries.pop(key, None)
        self.size += cost - (0 if old is None else self.cost(key, old))
        self.entries[key] = answer
        while self.size > self.max_bytes:
            evicted_key, evicted = self.entries.popitem(last=False)
            self.size -= self.cost(evicted_key, evicted)

    def clear(self, generation: int) -> None:
        self.entries.clear()
        self.size = 0
        self.generation = generation
