"""Writes the fused kernels for a class count C: worker/engine/accel/fused_c{C}.py.

    python -m worker.engine.accel.fused_gen 10

The kernels hold the scores of R rows x GROUP classes in R * GROUP scalar accumulators (vector
registers once LLVM vectorizes the loop over a tile's columns); numba has no fixed-size local
arrays that stay in registers, so the classes are unrolled here rather than looped over. A test
checks that the committed file is what `render` writes.

Each slab kernel (`svm_slab`, `softmax_slab`: rows r0 .. r1 of X) has a gather twin
(`svm_gather`, `softmax_gather`: rows X[idx[r0 .. r1]], labels y[idx[...]]) generated from the
same lines with the row reads changed, so that it makes the same operations in the same order
as the slab kernel on the gathered rows: an SGD minibatch without its gather copy, bit for bit.
Both have byte twins (`svm_bytes`, `svm_bytes_gather`, ...) on rows kept as uint8 codes
(worker.engine.byte_rows.ByteRows: codes, offsets, scales, and `standardize`, since numba takes
no None: without it, scales is any array of offsets' type and is not read). At the start of each
chunk they turn its rows into floats in a chunk buffer B, as ByteRows does (a subtraction, then
a division when standardizing: operations fastmath's reassoc and contract leave alone), then
read the rows from B where the float kernel reads X: the same operations in the same order as
the float kernel on ByteRows.dense(), reading one byte per value from memory. Their prefetches
fetch the next chunk's codes.
Each kernel has a driver (`svm_slab_slabs`, ...) that runs it on every slab of a pass, the slabs
shared among numba's threads (accel.fused chooses between it and Python threads).

Layout (accel.fused.pack): W and the gradient are tile-major and padded, Wp / Gp of shape
(tiles, C, TILE + PAD): tile k holds columns k*TILE .. k*TILE + TILE - 1 of the C rows. The pad
keeps the row pitch off multiples of 4 KB, where all C rows of a tile would share L1 sets and the
gradient's loads would alias its stores.

One module, longer than most, because every kernel and its twins come from the same lines here:
a change to one is read, and made, in all of them.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROWS = 2  # rows per score block
GRAD_ROWS = 4  # rows per gradient block: a load and a store of the gradient tile per 4 FMAs
# Classes per pass over a tile's columns, in both blocks: a score block holds ROWS * GROUP
# accumulators, a gradient block GRAD_ROWS * GROUP scores broadcast over the lanes. Blocks of all
# C classes need more vector registers than AVX2 has (16), and the gradient's more than AVX-512
# has (32): the spilled registers cost a load each per FMA. Grouping changes no sum: each score
# and gradient entry adds the same terms in the same order.
GROUP = 5
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


@dataclass(frozen=True)
class Reads:
    """How a kernel reads its rows: X[i] or X[idx[i]] (`gather`), as floats or as byte codes
    turned into floats chunk by chunk (`codes`)."""

    gather: bool
    codes: bool

    @property
    def array(self) -> str:
        """The array holding the rows as stored: what the kernel prefetches."""
        return "codes" if self.codes else "X"

    def stored(self, position: str) -> str:
        """Row `position` of the kernel's rows as stored: X[position], X[idx[position]], ..."""
        index = f"idx[{position}]" if self.gather else position
        return f"{self.array}[{index}]"

    def floats(self, position: str, in_chunk: str) -> str:
        """That row as floats: the stored row, or row `in_chunk` of the chunk buffer B."""
        return f"B[{in_chunk}]" if self.codes else self.stored(position)


def _scores(emit: Callable[[str], None], ind: str, rows: int, C: int, reads: Reads) -> None:
    """Scores of `rows` rows from i over tile k, added into S, GROUP classes at a time."""
    for r in range(rows):
        emit(f"{ind}x{r} = {reads.floats(f'i + {r}', f'i - c0 + {r}')}")
    for group in _groups(C):
        for r in range(rows):
            for c in group:
                emit(f"{ind}s{r}_{c} = zero")
        emit(f"{ind}for d in range(width):")
        for r in range(rows):
            emit(f"{ind}    a{r} = x{r}[u0 + d]")
        for c in group:
            emit(f"{ind}    w = wk[{c}, d]")
            for r in range(rows):
                emit(f"{ind}    s{r}_{c} += a{r} * w")
        for r in range(rows):
            for c in group:
                emit(f"{ind}S[i - c0 + {r}, {c}] += s{r}_{c}")


def _groups(C: int) -> list[range]:
    """The classes in groups of at most GROUP."""
    return [range(c, min(C, c + GROUP)) for c in range(0, C, GROUP)]


def _gradient(emit: Callable[[str], None], ind: str, rows: int, C: int, reads: Reads) -> None:
    """Tile k of the gradient += dS[r : r + rows]^T X[c0 + r : c0 + r + rows, tile k], GROUP
    classes at a time, and a prefetch of the same columns of the next chunk's stored rows."""
    for r in range(rows):
        emit(f"{ind}x{r} = {reads.floats(f'c0 + r + {r}', f'r + {r}')}")
        for c in range(C):
            emit(f"{ind}g{r}_{c} = S[r + {r}, {c}]")
    for r in range(rows):
        emit(f"{ind}if c1 + r + {r} < r1:")
        emit(f"{ind}    ahead = {reads.stored(f'c1 + r + {r}')}")
        emit(f"{ind}    for q in range(u0, u0 + width, line):")
        emit(f"{ind}        prefetch(ahead, q)")
    for group in _groups(C):
        emit(f"{ind}for d in range(width):")
        for r in range(rows):
            emit(f"{ind}    a{r} = x{r}[u0 + d]")
        for c in group:
            terms = " + ".join(f"g{r}_{c} * a{r}" for r in range(rows))
            emit(f"{ind}    gk[{c}, d] += {terms}")


def _decode(emit: Callable[[str], None], ind: str, reads: Reads) -> None:
    """The chunk's rows c0 .. c1 as floats into B, as ByteRows computes them: a byte minus a
    float has the float's type (the byte converts exactly), then at most one division."""
    emit(f"{ind}for r in range(n):")
    emit(f"{ind}    row = {reads.stored('c0 + r')}")
    emit(f"{ind}    b = B[r]")
    emit(f"{ind}    if standardize:")
    emit(f"{ind}        for d in range(D):")
    emit(f"{ind}            b[d] = (row[d] - offsets[d]) / scales[d]")
    emit(f"{ind}    else:")
    emit(f"{ind}        for d in range(D):")
    emit(f"{ind}            b[d] = row[d] - offsets[d]")


def _docstring(emit: Callable[[str], None], text: str, split: str) -> None:
    """A function's docstring, on two lines after `split` when one line would be too long."""
    line = f'    """{text}"""'
    emit(line if len(line) <= 100 else line.replace(split, f"{split.rstrip()}\n    ", 1))


def _data(reads: Reads) -> list[str]:
    """A kernel's (and its driver's) parameters before Wp: its rows, labels and row indices."""
    rows = ["codes", "offsets", "scales", "standardize"] if reads.codes else ["X"]
    return [*rows, "y", *(["idx"] if reads.gather else [])]


def _kernel(emit: Callable[[str], None], name: str, C: int, svm: bool, reads: Reads) -> None:
    """A slab kernel (rows r0 .. r1 of X), or its twin on rows X[idx[r0 .. r1]] (`reads.gather`)
    or on byte codes (`reads.codes`): the same operations in the same order as the slab kernel on
    the gathered rows, the rows as floats."""
    loss = "hinge loss (margin delta)" if svm else "cross-entropy"
    rows = f"{reads.array}[idx[r0:r1]]" if reads.gather else f"rows [r0, r1) of {reads.array}"
    if reads.codes:
        rows += " as floats X"
    elementwise = SVM if svm else SOFTMAX
    if reads.gather:
        elementwise = [line.replace("y[c0 + r]", "y[idx[c0 + r]]") for line in elementwise]
    emit("")
    emit("")
    emit("@kernel")
    emit(f"def {name}(")
    types = {"standardize": "bool", "r0": "int", "r1": "int", "chunk": "int", "want_grad": "bool"}
    slab = ["Wp", "r0", "r1", "Gp", "chunk", "want_grad", *(["delta"] if svm else [])]
    for param in [*_data(reads), *slab]:
        emit(f"    {param}: {types.get(param, 'Any')},")
    emit(") -> float:")
    _docstring(emit, f"Summed {loss} over {rows}; with want_grad, Gp = dS^T X.", "; ")
    emit(f"    D = {reads.array}.shape[1]")
    emit(f"    line = np.uint64(64 // {reads.array}.itemsize)")
    emit(f"    tiles, T = Wp.shape[0], Wp.shape[2] - {PAD}")
    emit("    zero = Wp[0, 0, 0] - Wp[0, 0, 0]")
    emit("    one = zero + 1")
    emit(f"    S = np.empty((chunk, C), dtype={'Wp' if reads.codes else 'X'}.dtype)")
    if reads.codes:
        emit("    B = np.empty((min(chunk, r1 - r0), D), dtype=Wp.dtype)  # the chunk as floats")
    emit("    if want_grad:")
    emit("        Gp[:, :, :] = zero")
    emit("    loss = 0.0")
    emit("    # The first chunk; later ones are prefetched while the previous one's gradient runs.")
    emit("    for i in range(r0, min(r0 + chunk, r1)):")
    emit("        for q in range(np.uint64(0), np.uint64(D), line):")
    emit(f"            prefetch({reads.stored('i')}, q)")
    emit("    for c0 in range(r0, r1, chunk):")
    emit("        c1 = min(c0 + chunk, r1)")
    emit("        n = c1 - c0")
    if reads.codes:
        _decode(emit, " " * 8, reads)
    emit("        S[:n, :] = zero")
    emit("        for k in range(tiles):")
    emit("            wk = Wp[k]")
    emit("            u0 = np.uint64(k * T)")
    emit("            width = np.uint64(min(T, D - k * T))")
    emit("            i = c0")
    emit(f"            while i + {ROWS} <= c1:")
    _scores(emit, " " * 16, ROWS, C, reads)
    emit(f"                i += {ROWS}")
    emit("            while i < c1:")
    _scores(emit, " " * 16, 1, C, reads)
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
    _gradient(emit, " " * 16, GRAD_ROWS, C, reads)
    emit(f"                r += {GRAD_ROWS}")
    emit("            while r < n:")
    _gradient(emit, " " * 16, 1, C, reads)
    emit("                r += 1")
    emit("    return float(loss)")


KERNEL_NAMES = [  # name, svm (else softmax), how it reads its rows
    ("svm_slab", True, Reads(gather=False, codes=False)),
    ("softmax_slab", False, Reads(gather=False, codes=False)),
    ("svm_gather", True, Reads(gather=True, codes=False)),
    ("softmax_gather", False, Reads(gather=True, codes=False)),
    ("svm_bytes", True, Reads(gather=False, codes=True)),
    ("softmax_bytes", False, Reads(gather=False, codes=True)),
    ("svm_bytes_gather", True, Reads(gather=True, codes=True)),
    ("softmax_bytes_gather", False, Reads(gather=True, codes=True)),
]


def _driver(emit: Callable[[str], None], name: str, svm: bool, reads: Reads) -> None:
    """`{name}_slabs`: the kernel on every slab of a pass at once, slabs shared by numba's
    threads (a launch costs far less than a Python thread's hand-off: bench.sgd)."""
    data = _data(reads)
    delta = ["delta"] if svm else []
    emit("")
    emit("")
    emit("@parallel_driver")
    emit(f"def {name}_slabs(")
    for param in [*data, "Wp", "bounds", "Gps", "chunk", "want_grad", *delta, "losses"]:
        emit(f"    {param}: Any,")
    emit(") -> None:")
    _docstring(
        emit, f"{name} on each slab s (rows bounds[s, 0] .. bounds[s, 1]): Gps[s], losses[s].", ": "
    )
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
    for name, svm, reads in KERNEL_NAMES:
        _kernel(emit, name, C, svm, reads)
    for name, svm, reads in KERNEL_NAMES:
        _driver(emit, name, svm, reads)
    return "\n".join(lines) + "\n"


def path_for(C: int) -> Path:
    return Path(__file__).with_name(f"fused_c{C}.py")


if __name__ == "__main__":
    for arg in sys.argv[1:] or ["10"]:
        path_for(int(arg)).write_text(render(int(arg)))
