"""Writes the fused kernels for a class count C: worker/engine/accel/fused_c{C}.py.

    python -m worker.engine.accel.fused_gen 10

The kernels hold the scores of R rows x C classes in R * C scalar accumulators (vector registers
once LLVM vectorizes the loop over a tile's columns); numba has no fixed-size local arrays that
stay in registers, so the C classes are unrolled here rather than looped over. A test checks that
the committed file is what `render` writes.

Each slab kernel (`svm_slab`, `softmax_slab`: rows r0 .. r1 of X) has a gather twin
(`svm_gather`, `softmax_gather`: rows X[idx[r0 .. r1]], labels y[idx[...]]) generated from the
same lines with the row reads changed, so that it makes the same operations in the same order
as the slab kernel on the gathered rows: an SGD minibatch without its gather copy, bit for bit.
Each kernel has a driver (`svm_slab_slabs`, ...) that runs it on every slab of a pass, the slabs
shared among numba's threads (accel.fused chooses between it and Python threads).

Layout (accel.fused.pack): W and the gradient are tile-major and padded, Wp / Gp of shape
(tiles, C, TILE + PAD): tile k holds columns k*TILE .. k*TILE + TILE - 1 of the C rows. The pad
keeps the row pitch off multiples of 4 KB, where all C rows of a tile would share L1 sets and the
gradient's loads would alias its stores.
"""

import sys
from collections.abc import Callable
from pathlib import Path

ROWS = 2  # rows per score block: ROWS * C accumulators
GRAD_ROWS = 4  # rows per gradient group: C loads and stores of the gradient tile per 4 C FMAs
PAD = 16

# A NaN margin (scores overflowed to inf) makes the loss NaN, as in the NumPy pass, so that
# training sees the divergence.
SVM = [
    "yi = y[c0 + r]",
    "sy = S[r, yi]",
    "count = zero",
    "for c in range(C):",
    "    m = S[r, c] - sy + delta",
    "    if c == yi or m <= zero:",
    "        S[r, c] = zero",
    "    elif m > zero:",
    "        loss += m",
    "        S[r, c] = one",
    "        count += one",
    "    else:",
    "        loss += m",
    "        S[r, c] = m",
    "        count += m",
    "S[r, yi] = -count",
]
SOFTMAX = [
    "yi = y[c0 + r]",
    "top = S[r, 0]",
    "for c in range(1, C):",
    "    top = max(top, S[r, c])",
    "sy = S[r, yi] - top",
    "total = zero",
    "for c in range(C):",
    "    e = math.exp(S[r, c] - top)",
    "    S[r, c] = e",
    "    total += e",
    "loss += math.log(total) - sy",  # -log p_y
    "inverse = one / total",
    "for c in range(C):",
    "    S[r, c] *= inverse",
    "S[r, yi] -= one",
]


def _row(gather: bool, position: str) -> str:
    """Row `position` of the kernel's rows: X[position], or X[idx[position]] in a gather kernel."""
    return f"X[idx[{position}]]" if gather else f"X[{position}]"


def _scores(emit: Callable[[str], None], ind: str, rows: int, C: int, gather: bool) -> None:
    """Scores of `rows` rows from i over tile k, added into S."""
    for r in range(rows):
        emit(f"{ind}x{r} = {_row(gather, f'i + {r}')}")
    for r in range(rows):
        for c in range(C):
            emit(f"{ind}s{r}_{c} = zero")
    emit(f"{ind}for d in range(width):")
    for r in range(rows):
        emit(f"{ind}    a{r} = x{r}[u0 + d]")
    for c in range(C):
        emit(f"{ind}    w = wk[{c}, d]")
        for r in range(rows):
            emit(f"{ind}    s{r}_{c} += a{r} * w")
    for r in range(rows):
        for c in range(C):
            emit(f"{ind}S[i - c0 + {r}, {c}] += s{r}_{c}")


def _gradient(emit: Callable[[str], None], ind: str, rows: int, C: int, gather: bool) -> None:
    """Tile k of the gradient += dS[r : r + rows]^T X[c0 + r : c0 + r + rows, tile k], and a
    prefetch of the same columns of the next chunk's rows."""
    for r in range(rows):
        emit(f"{ind}x{r} = {_row(gather, f'c0 + r + {r}')}")
        for c in range(C):
            emit(f"{ind}g{r}_{c} = S[r + {r}, {c}]")
    for r in range(rows):
        emit(f"{ind}if c1 + r + {r} < r1:")
        emit(f"{ind}    ahead = {_row(gather, f'c1 + r + {r}')}")
        emit(f"{ind}    for q in range(u0, u0 + width, line):")
        emit(f"{ind}        prefetch(ahead, q)")
    emit(f"{ind}for d in range(width):")
    for r in range(rows):
        emit(f"{ind}    a{r} = x{r}[u0 + d]")
    for c in range(C):
        terms = " + ".join(f"g{r}_{c} * a{r}" for r in range(rows))
        emit(f"{ind}    gk[{c}, d] += {terms}")


def _kernel(emit: Callable[[str], None], name: str, C: int, svm: bool, gather: bool) -> None:
    """A slab kernel (rows r0 .. r1 of X), or with `gather` its twin on rows X[idx[r0 .. r1]]:
    the same operations in the same order as the slab kernel on the gathered rows."""
    delta = "    delta: Any,\n" if svm else ""
    loss = "hinge loss (margin delta)" if svm else "cross-entropy"
    rows = "X[idx[r0:r1]]" if gather else "rows [r0, r1) of X"
    elementwise = SVM if svm else SOFTMAX
    if gather:
        elementwise = [line.replace("y[c0 + r]", "y[idx[c0 + r]]") for line in elementwise]
    emit("")
    emit("")
    emit("@kernel")
    emit(f"def {name}(")
    emit("    X: Any,")
    emit("    y: Any,")
    if gather:
        emit("    idx: Any,")
    emit("    Wp: Any,")
    emit("    r0: int,")
    emit("    r1: int,")
    emit("    Gp: Any,")
    emit("    chunk: int,")
    emit("    want_grad: bool,")
    if delta:
        emit(delta.rstrip("\n"))
    emit(") -> float:")
    emit(f'    """Summed {loss} over {rows}; with want_grad, Gp = dS^T X."""')
    emit("    D = X.shape[1]")
    emit("    line = np.uint64(64 // X.itemsize)")
    emit(f"    tiles, T = Wp.shape[0], Wp.shape[2] - {PAD}")
    emit("    zero = Wp[0, 0, 0] - Wp[0, 0, 0]")
    emit("    one = zero + 1")
    emit("    S = np.empty((chunk, C), dtype=X.dtype)")
    emit("    if want_grad:")
    emit("        Gp[:, :, :] = zero")
    emit("    loss = 0.0")
    emit("    # The first chunk; later ones are prefetched while the previous one's gradient runs.")
    emit("    for i in range(r0, min(r0 + chunk, r1)):")
    emit("        for q in range(np.uint64(0), np.uint64(D), line):")
    emit(f"            prefetch({_row(gather, 'i')}, q)")
    emit("    for c0 in range(r0, r1, chunk):")
    emit("        c1 = min(c0 + chunk, r1)")
    emit("        n = c1 - c0")
    emit("        S[:n, :] = zero")
    emit("        for k in range(tiles):")
    emit("            wk = Wp[k]")
    emit("            u0 = np.uint64(k * T)")
    emit("            width = np.uint64(min(T, D - k * T))")
    emit("            i = c0")
    emit(f"            while i + {ROWS} <= c1:")
    _scores(emit, " " * 16, ROWS, C, gather)
    emit(f"                i += {ROWS}")
    emit("            while i < c1:")
    _scores(emit, " " * 16, 1, C, gather)
    emit("                i += 1")
    emit("        for r in range(n):")
    for line in elementwise:
        emit(" " * 12 + line)
    emit("        if not want_grad:")
    emit("            continue")
    emit("        for k in range(tiles):")
    emit("            gk = Gp[k]")
    emit("            u0 = np.uint64(k * T)")
    emit("            width = np.uint64(min(T, D - k * T))")
    emit("            r = 0")
    emit(f"            while r + {GRAD_ROWS} <= n:")
    _gradient(emit, " " * 16, GRAD_ROWS, C, gather)
    emit(f"                r += {GRAD_ROWS}")
    emit("            while r < n:")
    _gradient(emit, " " * 16, 1, C, gather)
    emit("                r += 1")
    emit("    return float(loss)")


KERNEL_NAMES = [  # name, svm (else softmax), gather
    ("svm_slab", True, False),
    ("softmax_slab", False, False),
    ("svm_gather", True, True),
    ("softmax_gather", False, True),
]


def _driver(emit: Callable[[str], None], name: str, svm: bool, gather: bool) -> None:
    """`{name}_slabs`: the kernel on every slab of a pass at once, slabs shared by numba's
    threads (a launch costs far less than a Python thread's hand-off: bench.sgd)."""
    data = ["X", "y", "idx"] if gather else ["X", "y"]
    delta = ["delta"] if svm else []
    emit("")
    emit("")
    emit("@parallel_driver")
    emit(f"def {name}_slabs(")
    for param in [*data, "Wp", "bounds", "Gps", "chunk", "want_grad", *delta, "losses"]:
        emit(f"    {param}: Any,")
    emit(") -> None:")
    emit(f'    """{name} on each slab s (rows bounds[s, 0] .. bounds[s, 1]): Gps[s], losses[s]."""')
    emit("    for s in prange(bounds.shape[0]):")
    emit(f"        losses[s] = {name}(")
    slab = ["Wp", "bounds[s, 0]", "bounds[s, 1]", "Gps[s]", "chunk", "want_grad"]
    for arg in [*data, *slab, *delta]:
        emit(f"            {arg},")
    emit("        )")


def render(C: int) -> str:
    """The source of worker/engine/accel/fused_c{C}.py."""
    lines: list[str] = []
    emit = lines.append
    emit(f'"""Fused loss + gradient kernels for {C} classes. Generated by accel.fused_gen')
    emit(f'(python -m worker.engine.accel.fused_gen {C}): edit the generator, not this file."""')
    emit("")
    emit("import math")
    emit("from typing import Any")
    emit("")
    emit("import numpy as np")
    emit("from numba import prange")
    emit("")
    emit("from worker.engine.accel.jit import kernel, parallel_driver, prefetch")
    emit("")
    emit(f"C = {C}")
    for name, svm, gather in KERNEL_NAMES:
        _kernel(emit, name, C, svm, gather)
    for name, svm, gather in KERNEL_NAMES:
        _driver(emit, name, svm, gather)
    return "\n".join(lines) + "\n"


def path_for(C: int) -> Path:
    return Path(__file__).with_name(f"fused_c{C}.py")


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["10"]:
        path_for(int(arg)).write_text(render(int(arg)))
