"""The names of the series a job records (its loss history and its metrics over steps)."""

from __future__ import annotations

from typing import Literal, get_args

Series = Literal["loss", "best_loss", "learning_rate", "train_accuracy", "val_accuracy"]
SERIES: tuple[str, ...] = get_args(Series)
