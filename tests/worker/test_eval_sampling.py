"""A train job's final scoring reuses the labels its last step predicted on train and val."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.db.session import Database
from service.history import point_store
from service.jobs import repository, service
from service.jobs.spec import JobSpec
from service.settings import Settings
from tests.worker.conftest import hand_back_after_a_checkpoint, submit
from worker import evaluation
from worker.engine.byte_rows import as_float
from worker.engine.metrics import predict
from worker.prepare import DataPreparer
from worker.runner import Worker

# Split sizes all different, so that a prediction's row count names its split.
DATASET = {"name": "blobs", "n_train": 300, "n_val": 100, "n_test": 80}


def spy_on_predict(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The row counts worker.evaluation predicts, in order."""
    rows: list[int] = []

    def counting(W: np.ndarray, X: np.ndarray) -> np.ndarray:
        rows.append(int(X.shape[0]))
        return predict(W, X)

    monkeypatch.setattr(evaluation, "predict", counting)
    return rows


def finished_job(database: Database, job_id: str) -> tuple[Any, np.ndarray]:
    with database.read() as session:
        job = service.get(session, job_id)
        assert job.status == "succeeded", job.error
        stored = repository.array(session, job_id, "W")
        assert stored is not None
        return job, service.as_ndarray(stored)


def reference_evaluation(settings: Settings, stored: dict[str, Any], W: np.ndarray) -> Any:
    """Every split predicted afresh from the stored W (the original predict, not the spy)."""
    spec = JobSpec.model_validate(stored)
    data, _ = DataPreparer(2**30, settings.cifar10_dir, settings.data_dir).prepare(spec)
    report: dict[str, Any] = {"n_classes": data.n_classes, "splits": {}}
    for split in evaluation.SPLITS:
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        predicted = np.argmax(X @ W.T, axis=1)
        report["splits"][split] = evaluation.split_evaluation(W, X, y, data.n_classes, predicted)
    return report


def last_points(database: Database, job_id: str) -> dict[str, float]:
    with database.read() as session:
        return {
            split: point_store.points(session, job_id, f"{split}_accuracy", after=None, limit=None)[
                -1
            ][1]
            for split in ("train", "val")
        }


@pytest.mark.parametrize(("eval_every", "predicted"), [(25, [80]), (0, [300, 100, 80])])
def test_the_final_scoring_predicts_only_the_splits_the_last_step_did_not(
    settings: Settings,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    eval_every: int,
    predicted: list[int],
) -> None:
    rows = spy_on_predict(monkeypatch)
    job_id = submit(database, settings, dataset=DATASET, eval_every=eval_every)

    with Worker(settings) as worker:
        worker.run(burst=True)

    assert rows == predicted
    job, W = finished_job(database, job_id)
    expected = reference_evaluation(settings, job.spec, W)
    assert job.evaluation["splits"] == expected["splits"]
    for split in ("train", "val", "test"):
        assert job.metrics[f"{split}_accuracy"] == expected["splits"][split]["accuracy"]
    if eval_every:
        assert last_points(database, job_id) == {
            split: job.metrics[f"{split}_accuracy"] for split in ("train", "val")
        }


def test_a_resumed_job_scores_every_split_as_one_that_never_stopped(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = {
        "dataset": DATASET,
        "optimizer": {"type": "sgd", "learning_rate": 0.05, "batch_size": 8,
                      "iterations": 100_000},
        "log_every": 1000,
        "eval_every": 20_000,
        "eval_sample": 50,
    }  # fmt: skip
    job_id = submit(database, settings, **spec)
    hand_back_after_a_checkpoint(database, settings, job_id)

    rows = spy_on_predict(monkeypatch)
    with Worker(settings) as second:
        second.run(burst=True)
    assert rows == [80]  # the resumed run's last step predicted train and val
    monkeypatch.undo()
    reference = submit(database, settings, **spec)
    with Worker(settings) as third:
        third.run(burst=True)

    resumed, W = finished_job(database, job_id)
    straight, W_straight = finished_job(database, reference)
    assert resumed.attempts == 2
    np.testing.assert_array_equal(W, W_straight)
    assert resumed.evaluation == straight.evaluation
    assert resumed.evaluation["splits"] == reference_evaluation(settings, resumed.spec, W)["splits"]
    assert resumed.metrics == straight.metrics
    assert last_points(database, job_id) == last_points(database, reference)
    assert last_points(database, job_id) == {
        split: resumed.metrics[f"{split}_accuracy"] for split in ("train", "val")
    }


def test_given_predictions_score_a_split_as_predicting_it_would(settings: Settings) -> None:
    spec = JobSpec.model_validate(
        {"dataset": {**DATASET, "n_features": 2, "n_classes": 3, "cluster_std": 1.0, "seed": 0},
         "dtype": "float32", "preprocess": {"center": True, "standardize": False, "bias": True},
         "optimizer": {"type": "sgd"}}
    )  # fmt: skip
    data, _ = DataPreparer(2**30, None, settings.data_dir).prepare(spec)
    W = np.random.default_rng(1).standard_normal((3, data.X_train.shape[1])).astype(np.float32)
    given = {"train": np.argmax(as_float(data.X_train) @ W.T, axis=1)}

    assert evaluation.evaluate(W, data, 7, given) == evaluation.evaluate(W, data, 7)
    with pytest.raises(ValueError, match="one label per row"):
        evaluation.evaluate(W, data, 7, {"val": given["train"]})
