"""Numerical gradients on CIFAR-10: finite differences through the linear scores vs the loop.

Float64, the 49,000 x 3,073 training set, W = 0.001 randn (seed 0), reg 0. The per-entry loop
(worker.engine.gradients.numerical_gradient) is timed on a sample of entries and extrapolated;
the structured version (worker.engine.numerical) computes every entry.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from bench.common import Array, interleaved, options, table, write_report
from bench.step import cifar10_prepared
from worker.engine.gradients import numerical_gradient
from worker.engine.losses import LossFunction, make_loss
from worker.engine.numerical import loss_and_numerical_gradient, svm_centered_with_kinks

SAMPLE, REPEATS = 16, 3
H = 1e-5
EPS = float(np.finfo(np.float64).eps)


def sample_entries(rng: np.random.Generator, shape: tuple[int, int], size: int) -> Array:
    """`size` distinct flat indices of W, one of them in the bias column."""
    n_classes, n_features = shape
    bias = int(rng.integers(n_classes)) * n_features + n_features - 1
    others = rng.choice(np.setdiff1d(np.arange(n_classes * n_features), [bias]), size - 1, False)
    return np.sort(np.r_[bias, others])


def sampled_loop(loss: LossFunction, W: Array, X: Array, y: Array, flat: Array) -> Array:
    """The generic per-entry loop, run over the sampled entries of W only."""
    work = W.copy()
    view = work.reshape(-1)

    def f(values: Array) -> float:
        view[flat] = values
        return loss.loss(work, X, y)

    return numerical_gradient(f, view[flat].copy(), h=H, difference="centered")


def main() -> None:
    options(__doc__)
    prepared, labels = cifar10_prepared(("float64",))
    X, y = prepared["float64"]["train"], labels["train"]
    rng = np.random.default_rng(0)
    W = 0.001 * rng.standard_normal((10, X.shape[1]))
    flat = sample_entries(rng, W.shape, SAMPLE)

    def run(kind: str, loss: LossFunction) -> Array:
        if kind == "structured":
            return loss_and_numerical_gradient(loss, W, X, y, h=H, difference="centered")[1]
        return sampled_loop(loss, W, X, y, flat)

    # Centered differences only: the target's accuracy is theirs (forward ones are cheaper but
    # do not agree within 1e-8).
    candidates = [(f"{name} {kind}", partial(run, kind, make_loss(name, 0.0)))
                  for name in ("svm", "softmax") for kind in ("structured", "loop")]  # fmt: skip
    timed = {t.name: t for t in interleaved(candidates, repeats=REPEATS, warmup=0)}
    timings = {name: t.seconds for name, t in timed.items()}
    rows = []
    for name in ("svm", "softmax"):
        per_loss = timings[f"{name} loop"] / (2 * SAMPLE)  # two losses an entry
        full_loop = per_loss * 2 * W.size
        s = timed[f"{name} structured"].value.reshape(-1)[flat]
        n = timed[f"{name} loop"].value
        relative = np.abs(s - n) / np.maximum(np.abs(s), np.abs(n))
        scaled = np.abs(s - n).max() / np.abs(n).max()
        # The loop's own rounding: its numerator is exact to about eps * L.
        noise = 4 * EPS * make_loss(name).loss(W, X, y) / H
        within = np.abs(s - n) <= 1e-8 * np.maximum(np.abs(s), np.abs(n)) + noise
        rows.append([
            name, f"{timings[f'{name} structured']:.2f}", f"{per_loss:.3f}", f"{full_loop:,.0f}",
            f"{full_loop / timings[f'{name} structured']:,.0f}x", f"{relative.max():.1e}",
            f"{np.median(relative):.1e}", f"{scaled:.1e}", f"{int(within.sum())}/{len(flat)}",
        ])  # fmt: skip
    _, kinks = svm_centered_with_kinks(make_loss("svm"), W, X, y, h=H)
    header = ["loss", "structured s", "loop s / loss", "loop s (all entries)", "speed-up",
              "max rel. diff", "median rel. diff", "max diff / max grad",
              "within 1e-8 rel. + loop noise"]  # fmt: skip
    body = f"""
{table(header, rows)}

- {W.size:,} entries, centered differences; the loop (two full losses an entry) was timed on
  {len(flat)} sampled entries (flat indices {flat.tolist()}, the bias column among them) and
  extrapolated. Min of {REPEATS} interleaved runs each.
- Agreement on the sampled entries: |s - n| / max(|s|, |n|), and the largest difference over
  the largest sampled derivative; "loop noise" is the loop's own rounding, about eps * L / h
  ({4 * EPS * 9 / H:.0e} for the SVM's L of about 9).
- SVM at this W: the +-h step of {int(kinks.sum()):,} of the {W.size:,} entries moves some
  margin across its kink; the structured differences include those crossings exactly.
"""
    write_report("numerical", "Numerical gradient: through the linear scores vs the per-entry loop",
                 body)  # fmt: skip


if __name__ == "__main__":
    main()
