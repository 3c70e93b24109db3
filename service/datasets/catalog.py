"""Built-in data sets as the service sees them: default sizes, availability on this server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.settings import Settings
from worker.engine.datasets import BUILTIN_INFO, DEFAULT_OPTIONS, BuiltinInfo

CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
CIFAR10_TRAIN_ROWS = 50_000
CIFAR10_TEST_ROWS = 10_000
DIGITS_ROWS = 1_797
TOY_ROWS = 3
OPTION_FIELDS = ("n_features", "n_classes", "cluster_std", "noise", "seed")


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None = None


def availability(name: str, settings: Settings) -> Availability:
    if name == "cifar10":
        return _cifar10_availability(settings.cifar10_dir)
    return Availability(True)


def _cifar10_availability(directory: Path | None) -> Availability:
    if directory is None:
        return Availability(False, "CIFAR-10 is not configured: set DESCENT_CIFAR10_DIR")
    missing = [f for f in (*CIFAR10_FILES, "test_batch") if not (directory / f).is_file()]
    if missing:
        return Availability(False, f"CIFAR-10 batches missing in {directory}: {', '.join(missing)}")
    return Availability(True)


def info(name: str) -> BuiltinInfo:
    return BUILTIN_INFO[name]


def builtin_names() -> list[str]:
    return sorted(BUILTIN_INFO)


def option_names(name: str) -> tuple[str, ...]:
    return tuple(DEFAULT_OPTIONS[name])


def default_option(name: str, key: str) -> float | int:
    return DEFAULT_OPTIONS[name][key]


def size_problems(name: str, n_train: int, n_val: int, n_test: int) -> list[tuple[str, str]]:
    """Why these split sizes cannot be served from built-in `name`, as (field, message) pairs
    (empty when they can)."""
    problems: list[tuple[str, str]] = []
    if name == "cifar10":
        if n_train + n_val > CIFAR10_TRAIN_ROWS:
            problems.append(
                (
                    "n_train",
                    f"n_train + n_val may not exceed the {CIFAR10_TRAIN_ROWS} training images",
                )
            )
        if n_test > CIFAR10_TEST_ROWS:
            problems.append(("n_test", f"may not exceed the {CIFAR10_TEST_ROWS} test images"))
    if name == "digits" and n_train + n_val + n_test > DIGITS_ROWS:
        problems.append(
            ("n_train", f"n_train + n_val + n_test may not exceed the {DIGITS_ROWS} digits")
        )
    if name == "toy":
        sizes = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
        problems += [
            (split, f"each split of toy holds at most its {TOY_ROWS} points")
            for split, size in sizes.items()
            if size > TOY_ROWS
        ]
    return problems
