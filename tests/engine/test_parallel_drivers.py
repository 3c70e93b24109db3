"""The slabs of a compiled pass run on numba's threads where numba has a thread-safe layer, and on
Python's threads elsewhere: the same bits either way, from any thread, in a forked child too."""

import logging
import multiprocessing
import os
import subprocess
import sys
import threading
from typing import Any, Literal

import numpy as np
import pytest

pytest.importorskip("numba")

from tests.engine.test_kernels import problem
from worker.engine.accel import fused, jit
from worker.engine.accel.parallel import limit_threads

NAMES: tuple[Literal["svm", "softmax"], ...] = ("svm", "softmax")


def passes(W: Any, X: Any, y: Any, rows: Any) -> list[tuple[float, Any]]:
    """Every kind of compiled pass on this problem: full, loss only, rows in place."""
    found: list[tuple[float, Any]] = []
    for name in NAMES:
        found.append(fused.fused_pass(name, W, X, y, True))
        found.append((fused.fused_pass(name, W, X, y, False)[0], None))
        found.append(fused.gather_pass(name, W, X, y.astype(np.int64), rows))
    return found


def assert_same_bits(a: list[tuple[float, Any]], b: list[tuple[float, Any]]) -> None:
    assert len(a) == len(b)
    for (loss_a, grad_a), (loss_b, grad_b) in zip(a, b, strict=True):
        assert loss_a == loss_b
        if grad_a is None:
            assert grad_b is None
        else:
            np.testing.assert_array_equal(grad_a, grad_b)


@pytest.fixture(scope="module")
def numba_threads() -> None:
    if not jit.parallel_ready(2):
        pytest.skip("numba has no thread-safe threading layer here (no libgomp or tbb)")


@pytest.fixture
def data() -> tuple[Any, Any, Any, Any]:
    W, X, y = problem(3000, 300, 10, seed=11, dtype=np.float32)
    rows = np.random.default_rng(12).integers(0, 3000, 200)
    return W, X, y, rows


def test_numba_threads_python_threads_and_one_thread_give_the_same_bits(
    numba_threads: None, data: tuple[Any, Any, Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[int] = []
    for kernel, driver in list(fused.DRIVERS.items()):

        def counted(*args: Any, driver: Any = driver) -> None:
            launched.append(1)
            driver(*args)

        monkeypatch.setitem(fused.DRIVERS, kernel, counted)
    with limit_threads(2):
        on_numba = passes(*data)
    assert len(launched) == 3 * len(NAMES)
    with limit_threads(1):
        on_one = passes(*data)
    monkeypatch.setattr(jit, "parallel_ready", lambda threads: False)
    with limit_threads(2):
        on_python = passes(*data)
    assert len(launched) == 3 * len(NAMES)  # neither of these launched numba's threads
    assert_same_bits(on_numba, on_one)
    assert_same_bits(on_numba, on_python)


def test_passes_from_several_python_threads_at_once(
    numba_threads: None, data: tuple[Any, Any, Any, Any]
) -> None:
    with limit_threads(1):
        expected = passes(*data)
    results: list[list[tuple[float, Any]]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with limit_threads(2):
                for _ in range(3):
                    results.append(passes(*data))
        except BaseException as error:  # reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(results) == 12
    for found in results:
        assert_same_bits(found, expected)


def _child(data: tuple[Any, Any, Any, Any], answers: Any) -> None:
    with limit_threads(2):
        answers.put((jit.parallel_ready(2), passes(*data)))


def test_a_forked_child_passes_on_python_threads(
    numba_threads: None, data: tuple[Any, Any, Any, Any]
) -> None:
    """GNU OpenMP's threads do not survive a fork: a child of a process that launched them must
    not launch again (it could hang), and gets the same results on Python's threads."""
    with limit_threads(2):
        expected = passes(*data)  # numba's threads are running in this process now
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_child, args=(data, answers))
    child.start()
    ready, found = answers.get(timeout=120)
    child.join(timeout=30)
    assert child.exitcode == 0
    assert ready is False
    assert_same_bits(found, expected)


def test_without_a_thread_safe_layer_passes_use_python_threads(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def no_layer(out: Any) -> None:
        raise ValueError("No threading layer could be loaded.")

    monkeypatch.setattr(jit, "_probe", no_layer)
    layer = jit._ParallelLayer()
    with caplog.at_level(logging.INFO, logger=jit.__name__):
        assert layer.ready(2) is False
        assert layer.ready(2) is False  # decided once
    assert caplog.text.count("no thread-safe threading layer") == 1


SPIN = """
import os
from worker.engine import accel
from worker.engine.accel import fused, jit
imported = os.environ.get("GOMP_SPINCOUNT")
{start}
print(imported, os.environ.get("GOMP_SPINCOUNT"))
"""
STARTS = {
    "configured": 'accel.configure("compiled")',
    "first launch": "jit.parallel_ready(2)",  # a process where nothing configured the engine
}


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize(
    ("given", "expected"),
    [({}, "3000"), ({"GOMP_SPINCOUNT": "50"}, "50"), ({"OMP_WAIT_POLICY": "PASSIVE"}, None)],
)
def test_openmp_threads_spin_briefly_unless_the_user_says_otherwise(
    start: str, given: dict[str, str], expected: str | None
) -> None:
    """Read by libgomp when numba loads it (the first parallel launch): set by configure, or
    by that launch itself, never by importing the kernels."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    code = SPIN.format(start=STARTS[start])
    found = subprocess.run(
        [sys.executable, "-c", code], env={**env, **given}, capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    assert found == [given.get("GOMP_SPINCOUNT", "None"), str(expected)]
