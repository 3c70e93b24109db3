"""The engine's backend (worker.engine.accel): importing the engine loads no numba and changes
nothing in the process; `configure` makes numba's settings (the user's environment wins) and
chooses the backend; a process that configures nothing gets the compiled backend on its first
pass, and one without numba gets NumPy."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import worker.engine
from tests.engine.conftest import SwitchBackend
from worker.engine import accel
from worker.engine.accel import Backend

REPO = Path(__file__).resolve().parents[2]
# What numba reads from the environment, which the engine's settings must leave to the user.
USER_SETTINGS = ("NUMBA_THREADING_LAYER", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "NUMBA_CPU_FEATURES")


def run_python(script: str, env: dict[str, str] | None = None) -> str:
    """`script` in a fresh interpreter at the repository's root, without the user's settings
    unless `env` gives them; its stdout."""
    base = {k: v for k, v in os.environ.items() if k not in USER_SETTINGS}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_maths_imports_neither_numba_nor_llvmlite() -> None:
    """Every module of worker.engine outside accel, and accel's own modules that define no
    kernel: numba is imported only once the compiled backend is in effect."""
    maths = [
        f"worker.engine.{info.name}"
        for info in pkgutil.iter_modules(worker.engine.__path__)
        if info.name != "accel"
    ]
    numpy_side = ["backend", "kernels", "parallel", "warmup"]
    modules = [*maths, "worker.engine.accel", *(f"worker.engine.accel.{m}" for m in numpy_side)]
    loaded = run_python(
        f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
        print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"numba", "llvmlite"}}))
        """
    )
    assert "worker.engine.losses" in modules and "worker.engine.scoreloss" in modules
    assert loaded == "[]"


def test_importing_the_kernels_changes_neither_the_environment_nor_numbas_config() -> None:
    found = run_python(
        """
        import os, numba
        def state():
            c = numba.config
            spin = os.environ.get("GOMP_SPINCOUNT")
            return (c.THREADING_LAYER, c.CPU_FEATURES, c.CACHE_DIR, spin)
        before = state()
        from worker.engine.accel import fused, fused_c10, fused_scoreloss, jit, warmup
        from worker.engine import losses, scoreloss, train
        print(before == state(), state()[3])
        """
    )
    assert found == "True None"


@pytest.mark.parametrize(
    ("given", "expected"), [({}, "threadsafe"), ({"NUMBA_THREADING_LAYER": "omp"}, "omp")]
)
def test_configure_restricts_numba_to_a_thread_safe_layer_unless_the_user_chose(
    given: dict[str, str], expected: str
) -> None:
    found = run_python(
        """
        import numba
        from worker.engine import accel
        print(accel.configure("compiled").name, numba.config.THREADING_LAYER)
        """,
        given,
    )
    assert found == f"compiled {expected}"


def test_a_process_that_configures_nothing_gets_the_compiled_backend_on_its_first_pass() -> None:
    found = run_python(
        """
        import sys
        import numpy as np
        from worker.engine.accel import backend
        from worker.engine.losses import make_loss
        rng = np.random.default_rng(0)
        X, W = rng.standard_normal((40, 7)), rng.standard_normal((10, 7))
        y = rng.integers(0, 10, 40)
        unset = backend._active is None and "numba" not in sys.modules
        make_loss("svm").loss_grad(W, X, y)
        import numba
        print(unset, backend.active(), numba.config.THREADING_LAYER)
        """
    )
    assert found == f"True {Backend('compiled', None)} threadsafe"


def test_without_numba_the_engine_runs_on_numpy() -> None:
    found = run_python(
        """
        import sys
        sys.modules["numba"] = None  # import numba now raises ImportError
        import numpy as np
        from worker.engine import accel
        from worker.engine.accel.kernels import FusedLoss, linear_pass
        from worker.engine.losses import elementwise, make_loss
        from worker.engine.scoreloss import data_loss, numpy_data_loss
        rng = np.random.default_rng(0)
        X, W = rng.standard_normal((300, 7)), rng.standard_normal((10, 7))
        y = rng.integers(0, 10, 300)
        loss, _ = make_loss("svm").loss_grad(W, X, y)
        oracle = linear_pass(W, X, y, elementwise(FusedLoss("svm")), want_grad=False)
        T = W @ X.T
        print(accel.active().name, accel.configure("compiled").name,
              loss == oracle.loss_sum / 300, data_loss("svm", T, y) == numpy_data_loss("svm", T, y))
        """
    )
    assert found == "numpy numpy True True"


def test_configure_switches_the_backend_the_maths_asks_for(switch_backend: SwitchBackend) -> None:
    assert switch_backend("numpy") == Backend("numpy") == accel.active()
    assert not accel.active().compiled
    compiled = switch_backend("compiled")
    assert compiled.compiled and accel.active() == compiled
