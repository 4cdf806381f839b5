"""Number formats shared by tables and findings (empty for a missing value)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd


def fmt_value(value: Any) -> str:
    return "" if _missing(value) or not math.isfinite(float(value)) else f"{float(value):.4f}"


def fmt_lr(value: Any) -> str:
    return "" if _missing(value) else f"{float(value):.2e}"


def fmt_float(value: Any, digits: int = 3) -> str:
    return "" if _missing(value) else f"{float(value):.{digits}g}"


def fmt_fixed(value: Any, digits: int = 3) -> str:
    return "" if _missing(value) else f"{float(value):.{digits}f}"


def fmt_int(value: Any) -> str:
    return "" if _missing(value) else str(int(value))


def fmt_share(value: Any) -> str:
    return "" if _missing(value) else f"{float(value):.0%}"


def _missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))
