"""Shared pieces of the spec models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# A finite-difference step is small: one above this approximates no derivative.
MAX_DIFFERENCE_STEP = 1.0
DifferenceStep = Annotated[float, Field(gt=0, le=MAX_DIFFERENCE_STEP, allow_inf_nan=False)]
# A name or an id as a person writes it: no control characters (C0, DEL and C1). PostgreSQL
# refuses a NUL in text while SQLite stores it, so without this the same request would get a
# different answer on each.
PLAIN_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*$"
PlainText = Annotated[str, Field(pattern=PLAIN_TEXT)]


class Strict(BaseModel):
    """Unknown fields are an error, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid")
