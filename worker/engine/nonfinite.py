"""The error of a computation that gave NaN or an infinity where its result needs a number.

Overflow is expected on the way to some answers (a diverging step, a search candidate far too
large), but a result built from such values would be wrong: a relative error of 0 between two
NaNs, a best W that never had a finite loss. The engine raises this instead, and the worker fails
the job as `non_finite` with the message.
"""

from __future__ import annotations


class NonFinite(ArithmeticError):
    pass
