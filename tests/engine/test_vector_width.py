"""The kernels use the full width of AVX-512 where the host has it (worker.engine.jit)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from llvmlite import binding as llvm

from worker.engine.jit import vector_features

HOST = llvm.get_host_cpu_features().flatten()
AVX512 = "+avx512f" in HOST.split(",")


def test_avx512_hosts_turn_off_llvms_preference_for_256_bit_vectors() -> None:
    assert vector_features("+avx2,+avx512f,+fma") == "+avx2,+avx512f,+fma,-prefer-256-bit"


@pytest.mark.parametrize("host", ["+avx2,+fma,-avx512f", "+neon", ""])
def test_other_hosts_keep_numbas_default(host: str) -> None:
    assert vector_features(host) is None


def _features_in_a_new_process(env: dict[str, str]) -> str:
    code = "import numba, worker.engine.jit; print(numba.config.CPU_FEATURES)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.mark.skipif(not AVX512, reason="this host has no AVX-512")
def test_importing_the_engine_sets_numbas_features_on_this_avx512_host() -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_FEATURES"}
    assert _features_in_a_new_process(env).endswith(",-prefer-256-bit")


def test_features_the_user_set_win() -> None:
    env = {**os.environ, "NUMBA_CPU_FEATURES": "+avx2,+fma"}
    assert _features_in_a_new_process(env) == "+avx2,+fma"


@pytest.mark.skipif(not AVX512, reason="this host has no AVX-512")
def test_a_compiled_kernel_uses_512_bit_registers(tmp_path: Path) -> None:
    """The SVM slab kernel, compiled afresh (no disk cache) in a new process, as the engine does."""
    code = (
        "import re, numpy as np\n"
        "from worker.engine import fused_c10 as fc\n"
        "from worker.engine.losses import make_loss\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.standard_normal((256, 40)).astype(np.float32)\n"
        "W = rng.standard_normal((10, 40)).astype(np.float32)\n"
        "make_loss('svm').loss_grad(W, X, rng.integers(0, 10, 256))\n"
        "asm = ''.join(fc.svm_slab.inspect_asm().values())\n"
        "print(len(re.findall(r'zmm[0-9]+', asm)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_FEATURES"}
    env["NUMBA_CACHE_DIR"] = str(tmp_path)  # empty: compiled here, so numba can show the code
    env.pop("DESCENT_FUSED_KERNELS", None)
    found = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert int(found) > 0
