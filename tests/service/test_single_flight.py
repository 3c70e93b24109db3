"""Tasks that need one key at once: the first does the work, the others wait for it."""

from __future__ import annotations

import anyio
import pytest

from service.single_flight import SingleFlight


def test_waiters_wait_for_the_leader_and_find_its_work_done() -> None:
    flight: SingleFlight[str] = SingleFlight()
    done: dict[str, int] = {}
    reads = 0

    async def get(key: str) -> int:
        nonlocal reads
        await flight.wait(key)
        if key not in done:
            with flight.lead(key):
                reads += 1
                mine = reads
                await anyio.sleep(0.01)
                done[key] = mine
        return done[key]

    async def main() -> list[int]:
        found: list[int] = []

        async def one(key: str) -> None:
            found.append(await get(key))

        async with anyio.create_task_group() as group:
            for key in ["a"] * 5 + ["b"] * 5:
                group.start_soon(one, key)
        return found

    found = anyio.run(main)
    assert reads == 2 and sorted(found) == [1] * 5 + [2] * 5
    assert not flight


def test_a_failed_leader_still_wakes_its_waiters() -> None:
    flight: SingleFlight[str] = SingleFlight()

    async def main() -> None:
        async def read() -> None:
            with flight.lead("a"):
                await anyio.sleep(0.01)
                raise RuntimeError("read failed")

        async def fail() -> None:
            with pytest.raises(RuntimeError):
                await read()

        async with anyio.create_task_group() as group:
            group.start_soon(fail)
            await anyio.sleep(0)
            assert flight
            with anyio.fail_after(1):
                await flight.wait("a")

    anyio.run(main)
    assert not flight
