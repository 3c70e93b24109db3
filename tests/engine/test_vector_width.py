"""The kernels use the full width of AVX-512 where the host has it (worker.engine.accel.jit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from llvmlite import binding as llvm

from worker.engine.accel.jit import vector_features

HOST = llvm.get_host_cpu_features().flatten()
AVX512 = "+avx512f" in HOST.split(",")


def test_avx512_hosts_turn_off_llvms_preference_for_256_bit_vectors() -> None:
    assert vector_features("+avx2,+avx512f,+fma") == "+avx2,+avx512f,+fma,-prefer-256-bit"


@pytest.mark.parametrize("host", ["+avx2,+fma,-avx512f", "+neon", ""])
def test_other_hosts_keep_numbas_default(host: str) -> None:
    assert vector_features(host) is None


FEATURES = """
import numba
from worker.engine import accel
from worker.engine.accel import jit
imported = numba.config.CPU_FEATURES
accel.configure("compiled")
print(imported, numba.config.CPU_FEATURES, sep="\\n")
"""


def _features_in_a_new_process(env: dict[str, str]) -> tuple[str, str]:
    """numba's CPU features once the engine's jit module is imported, then once the engine is
    configured (before any kernel is defined, which would fix them)."""
    imported, configured = subprocess.run(
        [sys.executable, "-c", FEATURES], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return imported, configured


@pytest.mark.skipif(not AVX512, reason="this host has no AVX-512")
def test_configuring_the_engine_sets_numbas_features_on_this_avx512_host() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_FEATURES"}
    imported, configured = _features_in_a_new_process(env)
    assert imported == "None"  # importing sets nothing
    assert configured.endswith(",-prefer-256-bit")


def test_features_the_user_set_win() -> None:
    env = {**os.environ, "NUMBA_CPU_FEATURES": "+avx2,+fma"}
    assert _features_in_a_new_process(env) == ("+avx2,+fma", "+avx2,+fma")


@pytest.mark.skipif(not AVX512, reason="this host has no AVX-512")
def test_a_compiled_kernel_uses_512_bit_registers(tmp_path: Path) -> None:
    """The SVM slab kernel, compiled afresh (no disk cache) in a new process that configures
    nothing: the engine's first pass configures the compiled backend before it defines a kernel."""
    code = (
        "import re, numpy as np\n"
        "from worker.engine.losses import make_loss\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.standard_normal((256, 40)).astype(np.float32)\n"
        "W = rng.standard_normal((10, 40)).astype(np.float32)\n"
        "make_loss('svm').loss_grad(W, X, rng.integers(0, 10, 256))\n"
        "from worker.engine.accel import fused_c10 as fc\n"
        "asm = ''.join(fc.svm_slab.inspect_asm().values())\n"
        "print(len(re.findall(r'zmm[0-9]+', asm)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_FEATURES"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)  # empty: compiled here, so numba can show the code
    found = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert int(found) > 0
