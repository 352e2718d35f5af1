"""Excel workbooks (.xlsx) read as rows of text, as their CSV would hold them: streamed
through openpyxl's read-only mode, formulas as their cached values, never evaluated."""

import datetime as dt
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, NamedTuple

from productsync.exceptions import SourceError
from productsync.feeds.bounds import PREVIEW, item_bound, too_long
from productsync.feeds.stream import ZIP_MAGIC
from productsync.records import Unparsed


class Row(NamedTuple):
    """One non-blank row of a sheet, as a CSV reader gives it: its number and its cells."""

    line: int
    cells: list[str] | Unparsed


# A fixed number format ("0.00", "#,##0.000"): its decimals are the places a number shows.
_FIXED = re.compile(r"^[#,0]*0(?:\.(0+))?$")


def number_text(value: float | int, number_format: str = "General") -> str:
    """A number as its cell shows it, without float noise: 19.99 -> "19.99", 5.0 -> "5",
    29 under "0.00" -> "29.00"."""
    if isinstance(value, int):
        exact = Decimal(value)
    elif value != value or value in (float("inf"), float("-inf")):
        return str(value)
    else:
        exact = Decimal(repr(value))  # the shortest text that reads back as this float
    fixed = _FIXED.match(number_format or "")
    if fixed is not None:
        places = len(fixed.group(1) or "")
        return f"{exact:.{places}f}"
    if exact == exact.to_integral_value():
        return str(int(exact))
    return format(exact.normalize(), "f")


def cell_text(value: Any, number_format: str = "General") -> str:
    """A cell's value as CSV text: numbers as shown, dates in ISO 8601, TRUE/FALSE."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return number_text(value, number_format)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _row_cells(row) -> list[str]:
    cells = [cell_text(cell.value, getattr(cell, "number_format", "General")) for cell in row]
    while cells and cells[-1] == "":
        cells.pop()
    return cells


def _workbook(path: str):
    # openpyxl is imported only when a workbook is read.
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise SourceError(f"not an Excel workbook (.xlsx): {exc}") from None


def _sheet(workbook, name: str | None):
    if name is None:
        return workbook.worksheets[0]
    if name not in workbook.sheetnames:
        raise SourceError(
            f"the workbook has no sheet {name!r} (it has {', '.join(workbook.sheetnames)})"
        )
    return workbook[name]


def xlsx_rows(stream: io.BufferedReader, sheet: str | None = None) -> Iterator[Row]:
    """The non-blank rows of the first sheet (or the one named), cells as text, numbered as
    the sheet numbers them; a row longer than PRODUCTSYNC['MAX_ITEM_BYTES'] characters is
    Unparsed. The stream is copied to a temporary file first: a workbook is a ZIP archive,
    read from its end."""
    if stream.peek(4)[:4] != ZIP_MAGIC:
        raise SourceError("not an Excel workbook (.xlsx): an .xls or other file; save it as .xlsx")
    with tempfile.NamedTemporaryFile(prefix="productsync-", suffix=".xlsx") as copy:
        shutil.copyfileobj(stream, copy, 1024 * 1024)
        copy.flush()
        workbook = _workbook(copy.name)
        try:
            yield from _rows(_sheet(workbook, sheet), item_bound())
        finally:
            workbook.close()


def _rows(worksheet, bound: int) -> Iterator[Row]:
    width = None
    for line, row in enumerate(worksheet.iter_rows(), start=1):
        cells = _row_cells(row)
        if not cells:
            continue
        if width is None:
            width = len(cells)
        size = sum(map(len, cells))
        if size > bound:
            text = "\t".join(cells)[:PREVIEW] + "..."
            message = f"line {line}: {too_long('the row', size, bound, 'characters')}"
            yield Row(line, Unparsed(text, message))
            continue
        # A sheet leaves trailing empty cells out; a CSV has them.
        yield Row(line, cells + [""] * (width - len(cells)))
