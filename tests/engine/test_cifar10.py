"""CIFAR-10 batches: a restricted unpickler, a loader for any batch length, the real data set."""

import dataclasses
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from worker.engine.cifar10 import load_batch, restricted_loads
from worker.engine.datasets import Dataset, load_builtin
from worker.engine.losses import svm_loss
from worker.engine.metrics import accuracy
from worker.engine.preprocess import Preprocessor
from worker.engine.train import Diverged, TrainData, init_state, prepare_data, run
from worker.engine.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
REAL_CIFAR10 = REPO.parent / "shared" / "data" / "cifar-10-batches-py"


SyntheticDir = tuple[Path, NDArray[np.uint8], NDArray[np.int64]]


class RunsAShellCommand:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_refuses_a_pickle_that_reduces_to_os_system() -> None:
    payload = pickle.dumps({b"data": RunsAShellCommand()}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"system is not allowed"):
        restricted_loads(payload)


def test_restricted_unpickler_refuses_object_arrays() -> None:
    payload = pickle.dumps({b"data": np.array([1, "a"], dtype=object)}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="object arrays are not allowed"):
        restricted_loads(payload)


def test_load_batch_refuses_a_malicious_batch_file(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": RunsAShellCommand(), b"labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError):
        load_batch(path)


def write_batch(
    path: Path,
    data: NDArray[np.uint8],
    labels: Sequence[int] | NDArray[np.int64],
    *,
    text_keys: bool = False,
    old_numpy_name: bool = False,
) -> None:
    """A batch in the original layout: protocol 2, dict of data (uint8 (N, 3072)) and labels."""
    batch: dict[Any, Any] = {"batch_label": "synthetic", "labels": [int(v) for v in labels]}
    batch["data"] = data
    if not text_keys:
        batch = {key.encode(): value for key, value in batch.items()}
    payload = pickle.dumps(batch, protocol=2)
    if old_numpy_name:  # what the original files (pickled with numpy 1.x) reference
        payload = payload.replace(
            b"cnumpy._core.multiarray\n_reconstruct", b"cnumpy.core.multiarray\n_reconstruct"
        )
        assert b"numpy.core.multiarray" in payload
    path.write_bytes(payload)


@pytest.fixture
def synthetic_dir(tmp_path: Path) -> SyntheticDir:
    """Five 40-row training batches and a test batch of 60 rows (the original has 10,000)."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(260, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, size=260)
    for i in range(5):
        rows = slice(40 * i, 40 * (i + 1))
        write_batch(
            tmp_path / f"data_batch_{i + 1}", data[rows], labels[rows],
            text_keys=i == 1, old_numpy_name=i == 2,
        )  # fmt: skip
    write_batch(tmp_path / "test_batch", data[200:], labels[200:])
    return tmp_path, data, labels


def test_loader_reads_a_synthetic_batch_directory_in_batch_order(
    synthetic_dir: SyntheticDir,
) -> None:
    directory, data, labels = synthetic_dir
    dataset = load_builtin("cifar10", n_train=150, n_val=50, n_test=60, cifar10_dir=directory)
    np.testing.assert_array_equal(dataset.X_train, data[:150])
    np.testing.assert_array_equal(dataset.y_train, labels[:150])
    np.testing.assert_array_equal(dataset.X_val, data[150:200])
    np.testing.assert_array_equal(dataset.X_test, data[200:])
    np.testing.assert_array_equal(dataset.y_test, labels[200:])
    assert dataset.X_train.dtype == np.uint8
    assert dataset.y_train.dtype == np.int64
    assert dataset.image_shape == (3, 32, 32)
    assert dataset.class_names[0] == "airplane"


def test_loader_says_when_the_batches_hold_fewer_rows_than_asked(
    synthetic_dir: SyntheticDir,
) -> None:
    directory, _, _ = synthetic_dir
    with pytest.raises(ValueError, match="asked for 61 rows from test_batch, which hold 60"):
        load_builtin("cifar10", n_train=10, n_val=10, n_test=61, cifar10_dir=directory)
    with pytest.raises(ValueError, match="asked for 201 rows"):
        load_builtin("cifar10", n_train=200, n_val=1, n_test=1, cifar10_dir=directory)


def test_loader_reads_the_directory_from_the_environment(
    synthetic_dir: SyntheticDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, data, _ = synthetic_dir
    monkeypatch.setenv("DESCENT_CIFAR10_DIR", str(directory))
    dataset = load_builtin("cifar10", n_train=10, n_val=5, n_test=5)
    np.testing.assert_array_equal(dataset.X_val, data[10:15])


def test_load_batch_checks_the_layout(tmp_path: Path) -> None:
    path = tmp_path / "data_batch_1"
    write_batch(path, np.zeros((3, 100), dtype=np.uint8), [0, 1, 2])
    with pytest.raises(ValueError, match="100 columns, expected 3072"):
        load_batch(path)
    write_batch(path, np.zeros((3, 3072), dtype=np.uint8), [0, 1, 12])
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.9"):
        load_batch(path)


@pytest.fixture(scope="module")
def cifar10() -> Dataset:
    directory = Path(os.environ.get("DESCENT_CIFAR10_DIR") or REAL_CIFAR10)
    if not (directory / "data_batch_5").is_file():
        pytest.skip(f"real CIFAR-10 batches not found in {directory} (set DESCENT_CIFAR10_DIR)")
    return load_builtin("cifar10", cifar10_dir=directory)


@pytest.fixture(scope="module")
def cifar10_prepared(cifar10: Dataset) -> TrainData:
    pre = Preprocessor.fit(cifar10.X_train, center=True, standardize=False, bias=True)
    return prepare_data(cifar10, pre, "float32")


@pytest.mark.cifar
def test_real_cifar10_has_the_course_split(cifar10: Dataset) -> None:
    assert cifar10.X_train.shape == (49_000, 3072)
    assert cifar10.X_val.shape == (1_000, 3072)
    assert cifar10.X_test.shape == (1_000, 3072)
    assert cifar10.X_train.dtype == np.uint8
    all_train_labels = np.concatenate([cifar10.y_train, cifar10.y_val])
    np.testing.assert_array_equal(np.bincount(all_train_labels), np.full(10, 5_000))
    np.testing.assert_array_equal(np.unique(cifar10.y_test), np.arange(10))


SVM_COURSE = TrainConfig(
    loss="svm", reg=2.5e4, optimizer="sgd", learning_rate=1e-7, batch_size=200,
    iterations=1500, eval_every=0, dtype="float32", seed=0,
)  # fmt: skip


@pytest.mark.cifar
def test_real_cifar10_initial_svm_loss_is_about_790(cifar10_prepared: TrainData) -> None:
    """W = 0.001 randn after mean-centring + bias, reg 2.5e4: the regularizer alone is ~768."""
    state = init_state(SVM_COURSE, 10, cifar10_prepared.X_train.shape[1])
    assert state.W.shape == (10, 3073)
    full_loss = svm_loss(state.W, cifar10_prepared.X_train, cifar10_prepared.y_train, 2.5e4)
    assert 780.0 <= full_loss <= 800.0
    first = next(run(state, SVM_COURSE, cifar10_prepared, chunk_steps=1))
    assert 780.0 <= first.losses[0] <= 800.0


@pytest.mark.cifar
def test_real_cifar10_course_svm_run_reaches_the_assignment_accuracy(
    cifar10_prepared: TrainData,
) -> None:
    state = init_state(SVM_COURSE, 10, cifar10_prepared.X_train.shape[1])
    history = list(run(state, SVM_COURSE, cifar10_prepared))
    losses = np.concatenate([chunk.losses for chunk in history])
    assert losses.shape == (1500,)
    assert losses[-50:].mean() < 8.0
    val = accuracy(state.W, cifar10_prepared.X_val, cifar10_prepared.y_val)
    assert 0.35 <= val <= 0.41


@pytest.mark.cifar
def test_real_cifar10_learning_rate_5e_5_diverges(cifar10_prepared: TrainData) -> None:
    config = dataclasses.replace(SVM_COURSE, learning_rate=5e-5)
    state = init_state(config, 10, cifar10_prepared.X_train.shape[1])
    with pytest.raises(Diverged) as caught:
        list(run(state, config, cifar10_prepared))
    assert 0 < caught.value.step < 1500
    assert state.step == caught.value.step
