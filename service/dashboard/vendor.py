"""Front-end libraries served from installed Python packages (no CDN, no build step)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path


@lru_cache(maxsize=1)
def plotly_js() -> Path:
    """plotly.min.js as shipped inside the `plotly` package (plotly/package_data)."""
    found = resources.files("plotly") / "package_data" / "plotly.min.js"
    path = Path(str(found))
    if not path.is_file():
        raise FileNotFoundError(f"plotly.min.js is not in the installed plotly package ({path})")
    return path
