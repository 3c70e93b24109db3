"""Parameters of the non-train tasks; each lives in the JobSpec field named after its task."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from service.jobs.spec_base import DifferenceStep, PlainText, PositiveFloat, Strict

MAX_LANDSCAPE_POINTS = 201
# 10^k stays a normal float32 number: beyond these a step size is 0 or infinite in float32.
MIN_EXPONENT, MAX_EXPONENT = -37, 38


class GradientCheckParams(Strict):
    num_checks: int | None = Field(
        10, ge=1, description="Random entries to check (the bias column always among them); "
        "null = every entry.",
    )  # fmt: skip
    h: DifferenceStep = Field(1e-5, description="Centered-difference step (at most 1).")
    init_scale: PositiveFloat = Field(0.001, description="Checked around W = init_scale·randn.")


class StepSizeSweepParams(Strict):
    exponents: list[Annotated[int, Field(ge=MIN_EXPONENT, le=MAX_EXPONENT)]] = Field(
        default_factory=lambda: list(range(-10, 0)),
        min_length=1,
        max_length=100,
        description=f"Step sizes 10^k for these k (the note: -10..-1), each in "
        f"[{MIN_EXPONENT}, {MAX_EXPONENT}].",
    )
    init_scale: PositiveFloat = Field(0.001, description="From W = init_scale·rand (uniform).")


class LandscapeParams(Strict):
    dims: Literal[1, 2] = Field(1, description="1: L(W + a·W1); 2: L(W + a·W1 + b·W2).")
    points: int = Field(51, ge=2, le=MAX_LANDSCAPE_POINTS, description="Grid points per axis.")
    span: PositiveFloat = Field(1.0, description="a and b range over [-span, span].")
    around: PlainText | None = Field(
        None, max_length=64, description="A finished job whose W is the centre (default: random)."
    )
    examples: int | None = Field(
        None, ge=1, description="Score on k random examples (1 = the note's single-example bowl)."
    )
    init_scale: PositiveFloat = Field(0.001, description="Random centre W = init_scale·randn.")
