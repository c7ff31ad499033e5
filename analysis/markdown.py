"""Markdown tables and number formats shared by the written reports, so every table reads the same way."""
from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"^[-+—]?[\d.,]|^—$")


def table(headers, rows) -> str:
    """A pipe table; a column whose cells all read as numbers is right-aligned, any other left-aligned."""
    rows = [[str(cell) for cell in row] for row in rows]
    numeric = [bool(rows) and all(_NUMBER.match(row[i]) for row in rows if row[i]) for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if right else ":---" for right in numeric) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def us(seconds: float) -> str:
    """Seconds shown as microseconds with one decimal."""
    return "—" if not math.isfinite(seconds) else f"{seconds * 1e6:,.1f}"


def count(value) -> str:
    return f"{int(value):,}"


def ratio(value: float, digits: int = 2, suffix: str = "") -> str:
    return "—" if not math.isfinite(value) else f"{value:.{digits}f}{suffix}"


def image(alt: str, filename: str) -> str:
    return f"![{alt}]({filename})\n"
