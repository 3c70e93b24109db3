"""Worker processes share the cores: BLAS threads per worker."""

from __future__ import annotations

import pytest

from service import processes


@pytest.mark.parametrize(("cores", "workers", "threads"), [(2, 1, 2), (2, 2, 1), (2, 4, 1),
                                                            (8, 3, 2)])  # fmt: skip
def test_cores_are_divided_among_workers(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int, threads: int
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: cores)

    assert processes.blas_threads_per_worker(workers) == threads
