"""The train loop overfits tiny sets, is deterministic and resumable, and reports divergence."""

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest

from worker.engine.byte_rows import as_float
from worker.engine.datasets import load_builtin
from worker.engine.losses import svm_loss
from worker.engine.metrics import accuracy
from worker.engine.preprocess import Preprocessor
from worker.engine.train import (
    Chunk,
    Diverged,
    Evaluation,
    TrainData,
    TrainState,
    init_state,
    prepare_data,
    run,
)
from worker.engine.train_config import TrainConfig


def prepared(name: str, dtype: str = "float32", **kwargs: Any) -> tuple[TrainData, int]:
    dataset = load_builtin(name, **kwargs)
    pre = Preprocessor.fit(dataset.X_train, center=True, standardize=False, bias=True)
    return prepare_data(dataset, pre, dtype), dataset.n_classes


def blobs(dtype: str = "float32", n_train: int = 20) -> tuple[TrainData, int]:
    return prepared(
        "blobs", dtype, n_train=n_train, n_val=10, n_test=0, options={"cluster_std": 0.5}
    )


def train(
    config: TrainConfig, data: TrainData, n_classes: int, chunk_steps: int = 1000
) -> tuple[TrainState, list[Chunk]]:
    state = init_state(config, n_classes, data.X_train.shape[1])
    chunks = list(run(state, config, data, chunk_steps=chunk_steps))
    return state, chunks


def history(chunks: Iterable[Chunk]) -> tuple[Any, Any, Any, list[Evaluation]]:
    chunks = list(chunks)
    return (
        np.concatenate([chunk.steps for chunk in chunks]),
        np.concatenate([chunk.losses for chunk in chunks]),
        np.concatenate([chunk.learning_rates for chunk in chunks]),
        [evaluation for chunk in chunks for evaluation in chunk.evals],
    )


def test_full_batch_gradient_descent_overfits_the_toy_points() -> None:
    data, n_classes = prepared("toy")
    config = TrainConfig(loss="svm", learning_rate=0.5, batch_size=None, iterations=300)
    state, chunks = train(config, data, n_classes)
    assert accuracy(state.W, data.X_train, data.y_train) == 1.0
    assert chunks[-1].losses[-1] == 0.0


@pytest.mark.parametrize("loss", ["svm", "softmax"])
def test_minibatch_sgd_overfits_twenty_blob_points(loss: str) -> None:
    data, n_classes = blobs()
    config = TrainConfig(loss=loss, learning_rate=0.05, batch_size=5, iterations=300)
    state, _ = train(config, data, n_classes)
    assert accuracy(state.W, data.X_train, data.y_train) == 1.0


def test_init_state_draws_scaled_gaussian_weights_in_the_run_dtype() -> None:
    config = TrainConfig(init_scale=0.001, dtype="float32", seed=5, optimizer="adam")
    state = init_state(config, 10, 3073)
    expected = 0.001 * np.random.default_rng(5).standard_normal((10, 3073))
    np.testing.assert_array_equal(state.W, expected.astype(np.float32))
    assert state.step == 0
    assert state.rule_state["m"].dtype == np.float32


def test_same_config_and_seed_give_bit_identical_runs() -> None:
    data, n_classes = blobs("float32", n_train=200)
    config = TrainConfig(
        loss="softmax", optimizer="momentum", learning_rate=0.01, batch_size=16, iterations=50,
        dtype="float32", seed=3,
    )  # fmt: skip
    first, first_chunks = train(config, data, n_classes)
    second, second_chunks = train(config, data, n_classes)
    np.testing.assert_array_equal(first.W, second.W)
    np.testing.assert_array_equal(history(first_chunks)[1], history(second_chunks)[1])
    other, _ = train(dataclasses.replace(config, seed=4), data, n_classes)
    assert not np.array_equal(first.W, other.W)


def checkpoint(state: TrainState) -> TrainState:
    """What a worker persists and restores: copies of the arrays and the Generator's state."""
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng.bit_generator.state
    rule_state = {key: value.copy() for key, value in state.rule_state.items()}
    return TrainState(W=state.W.copy(), rule_state=rule_state, rng=rng, step=state.step)


@pytest.mark.parametrize(
    "changes",
    [
        {"optimizer": "sgd", "sampling": "replacement"},
        {"optimizer": "adam", "sampling": "epoch", "batch_size": 7},
        {"optimizer": "nesterov", "batch_size": None,
         "lr_schedule": {"type": "step", "step_size": 10, "gamma": 0.5}},
        {"optimizer": "rmsprop", "log_every": 4, "eval_every": 6},
    ],
)  # fmt: skip
def test_a_resumed_run_equals_one_that_never_stopped(changes: dict[str, Any]) -> None:
    data, n_classes = blobs("float32", n_train=100)
    config = TrainConfig(
        **{"loss": "svm", "reg": 1e-3, "learning_rate": 0.01, "batch_size": 10,
           "iterations": 60, "eval_every": 5, "dtype": "float32", "seed": 1, **changes}
    )  # fmt: skip
    straight, straight_chunks = train(config, data, n_classes)

    state = init_state(config, n_classes, data.X_train.shape[1])
    stream = run(state, config, data, chunk_steps=23)
    first_chunk = next(stream)
    saved = checkpoint(state)
    stream.close()
    state.W[...] = np.nan  # the interrupted process's memory is gone
    resumed_chunks = [first_chunk, *run(saved, config, data, chunk_steps=1000)]

    np.testing.assert_array_equal(saved.W, straight.W)
    assert saved.step == straight.step == 60
    for resumed_part, straight_part in zip(
        history(resumed_chunks), history(straight_chunks), strict=True
    ):
        np.testing.assert_array_equal(resumed_part, straight_part)


def test_chunks_cover_every_step_once_and_only_the_last_is_done() -> None:
    data, n_classes = blobs()
    config = TrainConfig(learning_rate=0.01, batch_size=4, iterations=20)
    _, chunks = train(config, data, n_classes, chunk_steps=7)
    assert [len(chunk.steps) for chunk in chunks] == [7, 7, 6]
    assert [chunk.done for chunk in chunks] == [False, False, True]
    np.testing.assert_array_equal(history(chunks)[0], np.arange(20))
    assert chunks[0].steps.dtype == np.int64
    assert chunks[0].losses.dtype == np.float64


def test_time_bounded_chunks_hold_at_least_one_step_and_change_nothing() -> None:
    data, n_classes = blobs()
    config = TrainConfig(learning_rate=0.01, batch_size=4, iterations=20, eval_every=5)
    straight_state, straight = train(config, data, n_classes)

    state = init_state(config, n_classes, data.X_train.shape[1])
    chunks = list(run(state, config, data, chunk_steps=1000, chunk_seconds=0.0))

    assert [len(chunk.steps) for chunk in chunks] == [1] * 20
    for got, want in zip(history(chunks), history(straight), strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    np.testing.assert_array_equal(state.W, straight_state.W)


def test_log_every_keeps_every_kth_step_and_always_the_last() -> None:
    data, n_classes = blobs()
    config = TrainConfig(
        learning_rate=0.01, batch_size=None, iterations=11, log_every=3,
        lr_schedule={"type": "inverse_time", "k": 0.5},
    )  # fmt: skip
    _, chunks = train(config, data, n_classes)
    steps, _, learning_rates, _ = history(chunks)
    np.testing.assert_array_equal(steps, [0, 3, 6, 9, 10])
    np.testing.assert_allclose(learning_rates, 0.01 / (1 + 0.5 * steps))


def test_losses_are_logged_before_each_update() -> None:
    data, n_classes = blobs()
    config = TrainConfig(learning_rate=0.01, batch_size=None, iterations=3, reg=0.1)
    initial = init_state(config, n_classes, data.X_train.shape[1]).W
    _, chunks = train(config, data, n_classes)
    assert chunks[0].losses[0] == svm_loss(initial, data.X_train, data.y_train, 0.1)


def test_evaluations_use_the_current_w_and_the_final_w_at_the_last_step() -> None:
    data, n_classes = blobs()
    config = TrainConfig(learning_rate=0.05, batch_size=5, iterations=10, eval_every=4)
    initial = init_state(config, n_classes, data.X_train.shape[1]).W
    state, chunks = train(config, data, n_classes)
    evals = history(chunks)[3]
    assert [evaluation.step for evaluation in evals] == [0, 4, 8, 9]
    assert evals[0].train_accuracy == accuracy(initial, data.X_train, data.y_train)
    assert evals[-1].train_accuracy == accuracy(state.W, data.X_train, data.y_train)
    assert evals[-1].val_accuracy == accuracy(state.W, data.X_val, data.y_val)
    _, no_eval_chunks = train(dataclasses.replace(config, eval_every=0), data, n_classes)
    assert history(no_eval_chunks)[3] == []


def test_a_chunk_ending_at_an_evaluation_step_holds_that_steps_evaluation() -> None:
    """The accuracy at step s is W's after s updates, recorded by the chunk that made that W:
    a chunk ending at step s carries it (a run stopped there reports it), and chunked runs give
    the same evaluations as one straight run."""
    data, n_classes = blobs()
    config = TrainConfig(learning_rate=0.05, batch_size=5, iterations=13, eval_every=4)
    state = init_state(config, n_classes, data.X_train.shape[1])
    chunks = run(state, config, data, chunk_steps=4)

    first = next(chunks)
    assert state.step == 4
    assert [e.step for e in first.evals] == [0, 4]
    assert first.evals[-1].val_accuracy == accuracy(state.W, data.X_val, data.y_val)
    rest = list(chunks)
    _, straight = train(config, data, n_classes)
    assert history([first, *rest])[3] == history(straight)[3]
    assert [e.step for e in history(straight)[3]] == [0, 4, 8, 12]


def test_one_iteration_evaluates_once_with_the_final_w() -> None:
    data, n_classes = blobs()
    config = TrainConfig(learning_rate=0.05, batch_size=5, iterations=1, eval_every=1)
    state, chunks = train(config, data, n_classes)
    evals = history(chunks)[3]
    assert [e.step for e in evals] == [0]
    assert evals[0].train_accuracy == accuracy(state.W, data.X_train, data.y_train)


def test_a_huge_learning_rate_raises_diverged_after_yielding_the_history_before_it() -> None:
    data, n_classes = blobs("float32")
    config = TrainConfig(
        loss="svm", reg=1.0, learning_rate=1e3, batch_size=None, iterations=1000, dtype="float32"
    )
    state = init_state(config, n_classes, data.X_train.shape[1])
    chunks: list[Chunk] = []
    with pytest.raises(Diverged) as caught:
        chunks.extend(run(state, config, data, chunk_steps=3))
    diverged_at = caught.value.step
    steps, losses, _, _ = history(chunks)
    np.testing.assert_array_equal(steps, np.arange(diverged_at))
    assert np.all(np.isfinite(losses))
    assert not math.isfinite(caught.value.loss)
    assert not any(chunk.done for chunk in chunks)
    assert state.step == diverged_at
    with np.errstate(all="ignore"):
        assert not math.isfinite(svm_loss(state.W, data.X_train, data.y_train, 1.0))


def test_a_finished_state_yields_one_empty_done_chunk() -> None:
    data, n_classes = blobs()
    config = TrainConfig(learning_rate=0.01, batch_size=None, iterations=5)
    state, _ = train(config, data, n_classes)
    (chunk,) = run(state, config, data)
    assert chunk.done
    assert len(chunk.steps) == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"loss": "hinge"}, "unknown loss"),
        ({"optimizer": "lbfgs"}, "unknown optimizer"),
        ({"optimizer": "adam", "optimizer_params": {"momentum": 0.9}}, "does not take"),
        ({"lr_schedule": {"type": "cosine"}}, "unknown learning-rate schedule"),
        ({"batch_size": 0}, "batch_size"),
        ({"sampling": "stratified"}, "sampling"),
        ({"dtype": "float16"}, "dtype"),
        ({"iterations": 0}, "iterations"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"reg": -1.0}, "reg"),
    ],
)
def test_invalid_configs_are_rejected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_run_rejects_data_that_does_not_fit_the_config() -> None:
    data, n_classes = blobs("float64")
    config = TrainConfig(dtype="float32")
    state = init_state(config, n_classes, data.X_train.shape[1])
    with pytest.raises(ValueError, match="X_train must be float32"):
        next(run(state, config, data))
    config = TrainConfig(dtype="float64", batch_size=21)
    state = init_state(config, n_classes, data.X_train.shape[1])
    with pytest.raises(ValueError, match="batch_size must be between 1 and the 20 training rows"):
        next(run(state, config, data))
    bad_labels = TrainData(data.X_train, data.y_train + 10, data.X_val, data.y_val)
    with pytest.raises(ValueError, match="y_train must lie in"):
        next(run(state, TrainConfig(dtype="float64"), bad_labels))


def test_chunks_end_at_the_multiples_of_chunk_steps_after_any_shorter_chunk() -> None:
    """A run that starts between multiples (resumed, or after a chunk cut short by time) ends
    its next chunk at the next multiple, so a step a caller must stop at (a sweep's rung) is
    always a chunk's end, never run past."""
    data, n_classes = blobs()
    config = TrainConfig(learning_rate=0.05, batch_size=5, iterations=23, eval_every=5)
    state = init_state(config, n_classes, data.X_train.shape[1])
    state.step = 7

    ends = [state.step for _ in run(state, config, data, chunk_steps=5)]

    assert ends == [10, 15, 20, 23]


def noisy_blobs() -> tuple[TrainData, int]:
    """Overlapping blobs, so that accuracy on a few rows differs from accuracy on all of them."""
    return prepared(
        "blobs", "float32", n_train=300, n_val=150, n_test=0, options={"cluster_std": 4.0}
    )


def oracle_accuracy(W: Any, X: Any, y: Any, rows: Any = None) -> float:
    if rows is not None:
        X, y = X[rows], y[rows]
    return float(np.mean(np.argmax(X @ W.T, axis=1) == y))


@pytest.mark.parametrize(
    "changes",
    [{"batch_size": 16}, {"batch_size": None}, {"batch_size": 8, "sampling": "epoch"}],
)
def test_eval_sample_leaves_losses_and_weights_bit_identical(changes: dict[str, Any]) -> None:
    data, n_classes = noisy_blobs()
    config = TrainConfig(
        **{"loss": "softmax", "optimizer": "momentum", "learning_rate": 0.01, "iterations": 40,
           "eval_every": 5, "seed": 7, "eval_sample": None, **changes}
    )  # fmt: skip
    full_state, full_chunks = train(config, data, n_classes, chunk_steps=5)
    sampled = dataclasses.replace(config, eval_sample=37)
    sampled_state, sampled_chunks = train(sampled, data, n_classes, chunk_steps=5)
    no_eval_state, _ = train(dataclasses.replace(config, eval_every=0), data, n_classes)

    np.testing.assert_array_equal(sampled_state.W, full_state.W)
    np.testing.assert_array_equal(no_eval_state.W, full_state.W)
    for got, want in zip(history(sampled_chunks)[:3], history(full_chunks)[:3], strict=True):
        np.testing.assert_array_equal(got, want)
    assert history(sampled_chunks)[3] != history(full_chunks)[3]  # the sample was used


def test_intermediate_evaluations_score_the_documented_rows_and_the_last_every_row() -> None:
    """Before the last step: the first eval_sample of default_rng(0).permutation(n), sorted,
    whatever the run's seed; at the last step: every row, its labels kept on the done chunk."""
    data, n_classes = noisy_blobs()
    config = TrainConfig(
        loss="svm", learning_rate=0.05, batch_size=10, iterations=23, eval_every=5,
        eval_sample=40, seed=11,
    )  # fmt: skip
    state = init_state(config, n_classes, data.X_train.shape[1])
    weights = {0: state.W.copy()}
    chunks = []
    for chunk in run(state, config, data, chunk_steps=5):
        chunks.append(chunk)
        weights[state.step] = state.W.copy()
    train_rows = np.sort(np.random.default_rng(0).permutation(300)[:40])
    val_rows = np.sort(np.random.default_rng(0).permutation(150)[:40])

    evals = history(chunks)[3]
    assert [e.step for e in evals] == [0, 5, 10, 15, 20, 22]
    differs = False
    for e in evals[:-1]:
        W = weights[e.step]
        assert e.train_accuracy == oracle_accuracy(W, data.X_train, data.y_train, train_rows)
        assert e.val_accuracy == oracle_accuracy(W, data.X_val, data.y_val, val_rows)
        differs |= e.train_accuracy != oracle_accuracy(W, data.X_train, data.y_train)
    assert differs  # on this data the sample tells apart from every row
    last = evals[-1]
    assert last.train_accuracy == oracle_accuracy(state.W, data.X_train, data.y_train)
    assert last.val_accuracy == oracle_accuracy(state.W, data.X_val, data.y_val)

    assert [chunk.predictions is not None for chunk in chunks] == [False] * 4 + [True]
    predictions = chunks[-1].predictions
    assert predictions is not None and sorted(predictions) == ["train", "val"]
    np.testing.assert_array_equal(
        predictions["train"], np.argmax(as_float(data.X_train) @ state.W.T, 1)
    )
    np.testing.assert_array_equal(
        predictions["val"], np.argmax(as_float(data.X_val) @ state.W.T, 1)
    )


def test_eval_sample_not_below_a_splits_rows_scores_every_row() -> None:
    data, n_classes = noisy_blobs()
    config = TrainConfig(learning_rate=0.05, batch_size=10, iterations=12, eval_every=5)
    _, chunks = train(config, data, n_classes)
    _, capped = train(dataclasses.replace(config, eval_sample=300), data, n_classes)
    assert history(capped)[3] == history(chunks)[3]
    _, none = train(dataclasses.replace(config, eval_every=0, eval_sample=40), data, n_classes)
    assert history(none)[3] == [] and none[-1].predictions is None


def test_eval_sample_must_be_positive() -> None:
    with pytest.raises(ValueError, match="eval_sample must be >= 1"):
        TrainConfig(eval_sample=0)
