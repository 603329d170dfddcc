"""The one JSON sanitiser and writer: numpy values, paths and tuples become plain JSON; NaN becomes null."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from studio.atomic import write_bytes


def json_safe(value: Any, *, array_limit: int | None = 64, digits: int | None = None) -> Any:
    """``value`` made JSON-serialisable: numpy scalars and arrays, paths, tuples; NaN and infinities -> None.

    Arrays longer than ``array_limit`` become a ``"<array shape dtype>"`` note (None: always a list);
    ``digits`` rounds floats to that many significant digits (None: exact).
    """
    def safe(v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k): safe(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [safe(x) for x in v]
        if isinstance(v, np.ndarray):
            if array_limit is not None and v.size > array_limit:
                return f"<array {v.shape} {v.dtype}>"
            return safe(v.tolist())
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                return None
            return float(f"{v:.{digits}g}") if digits else v
        if isinstance(v, (str, int, bool)) or v is None:
            return v
        return str(v)

    return safe(value)


def dumps(data: Any, **safe_options: Any) -> str:
    """Pretty, deterministic JSON text (sorted keys, UTF-8 kept) of :func:`json_safe` ``data``, newline-ended."""
    return json.dumps(json_safe(data, **safe_options), indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, data: Any, **safe_options: Any) -> Path:
    """Write :func:`dumps` ``data`` atomically to ``path``; returns the path."""
    return write_bytes(path, dumps(data, **safe_options).encode("utf-8"))
