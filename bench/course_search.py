"""The course's hyperparameter search on CIFAR-10, as two sweeps through the REST API.

A real `descent serve --workers 2` on a temporary SQLite database runs the SVM and the softmax
learning-rate x regularization grids with the SGD recipe (batch 200, 1,500 iterations); the
report gives each one's best validation and test accuracy and the request that produced them.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import options, require_cifar10, serve, table, wait_finished, write_report

# The course's grid (learning rates 1e-7 and 5e-7, strengths 2.5e4 and 5e4), a little wider and
# finer: 4 log-spaced rates from 5e-8 to 5e-7, and 1e4 besides 2.5e4 and 5e4.
SPACE = {
    "optimizer.learning_rate": {"log_uniform": [5e-8, 5e-7], "num": 4},
    "model.reg": {"values": [1e4, 2.5e4, 5e4]},
}


def sweep(loss: str) -> dict[str, Any]:
    return {
        "name": f"course {loss} search",
        "base": {
            "dataset": {"name": "cifar10"},
            "model": {"loss": loss},
            "optimizer": {"type": "sgd", "batch_size": 200, "iterations": 1500},
            "eval_every": 500,
        },
        "method": "grid",
        "space": SPACE,
        "metric": "val_accuracy",
    }


def report(results: dict[str, dict[str, Any]], elapsed: float) -> str:
    rows = []
    for loss, found in results.items():
        best, params = found["best"], found["best"]["params"]
        rows.append([loss, f"{params['optimizer.learning_rate']:.3g}",
                     f"{params['model.reg']:.3g}", f"{best['val_accuracy']:.3f}",
                     f"{best['test_accuracy']:.3f}", found["counts"]["succeeded"]])  # fmt: skip
    header = ["loss", "best learning rate", "best reg", "val accuracy", "test accuracy", "trials"]
    parts = [
        table(header, rows),
        f"Both sweeps ran on one `descent serve --workers 2` in {elapsed:.0f} s. Validation is"
        " the course's 1,000 images after the first 49,000 training images; test is the first"
        " 1,000 test images. The course expects about 0.38-0.40 (SVM) and 0.35-0.40 (softmax)"
        " on validation.",
    ]
    for loss, found in results.items():
        board = [[e["rank"], f"{e['params']['optimizer.learning_rate']:.3g}",
                  f"{e['params']['model.reg']:.3g}", f"{e['val_accuracy']:.3f}",
                  f"{e['test_accuracy']:.3f}"] for e in found["leaderboard"]]  # fmt: skip
        parts.append(f"### {loss}: leaderboard\n\n"
                     + table(["rank", "learning rate", "reg", "val", "test"], board))  # fmt: skip
        request = json.dumps(sweep(loss), indent=2)
        parts.append(f"The request ({loss}), as sent to `POST /sweeps`:\n\n```json\n{request}\n```")
    return "\n\n".join(parts)


def main() -> None:
    options(__doc__)
    require_cifar10()
    workdir = Path(tempfile.mkdtemp(prefix="descent-course-search-"))
    with serve(workdir, {}, workers=2) as (api, _):
        started = time.perf_counter()
        ids = {}
        for loss in ("svm", "softmax"):
            response = api.post("/sweeps", json=sweep(loss))
            response.raise_for_status()
            ids[loss] = response.json()["id"]
        results = {loss: wait_finished(api, f"/sweeps/{i}", 1.0) for loss, i in ids.items()}
        elapsed = time.perf_counter() - started
    write_report("course_search",
                 "The course's learning-rate x regularization search on CIFAR-10, as two sweeps",
                 report(results, elapsed))  # fmt: skip


if __name__ == "__main__":
    main()
