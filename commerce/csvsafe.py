"""CSV cells that spreadsheets will not run (docs/deploy.md): a text cell
starting with ``= + - @`` (or a tab / carriage return) is a formula to Excel,
LibreOffice and Google Sheets — CSV injection. Such cells get a leading
apostrophe, which spreadsheets show as text; numbers stay numbers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def row(values: Iterable[Any]) -> list[Any]:
    return [cell(v) for v in values]
