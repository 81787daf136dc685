"""Read daily price CSV files: Yahoo's website export, yfinance's ``to_csv`` and close relatives.

The reader parses and names columns; ``forecasting.prices.validation.validate_prices`` judges the
values. It keeps each row's line in the file, in ``frame.attrs[LINE_NUMBERS]``, so that messages
can name it. docs/data.md lists the accepted variants.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import PriceFileError
from forecasting.prices.validation import INDEX_NAME, PRICE_COLUMNS

logger = logging.getLogger(__name__)

LINE_NUMBERS = "line_numbers"
SPLITS = "splits"
"""``attrs`` key of a file's split column (ratio on a split day, else 0), when it has one."""
REQUIRED = ("open", "high", "low", "close", "volume")
_NULLS = frozenset({"", "null", "nan", "na", "n/a", "#n/a", "none", "-"})
_ALIASES = {
    **dict.fromkeys(("date", "time", "timestamp", "datetime", "day"), "date"),
    **{name: name for name in ("open", "high", "low", "close")},
    "close_last": "close",
    **dict.fromkeys(("adj_close", "adjclose", "adjusted_close", "adj_close_price"), "adj_close"),
    **dict.fromkeys(("volume", "vol"), "volume"),
    **dict.fromkeys(("ticker", "symbol"), "ticker"),
    **dict.fromkeys(("splits", "stock_splits"), "splits"),
}
# yfinance writes the header rows of its (Price, Ticker) MultiIndex columns, in either order.
_HEADER_LEVELS = ("price", "ticker")
_ISO = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d*)?)?))?(Z|[+-]\d{2}:?\d{2})?"
)
_Row = tuple[int, list[str]]


def canonical_column(name: str) -> str | None:
    """The contract's name for a column header (``"Adj Close**"`` -> ``"adj_close"``), or None."""
    key = re.sub(r"[^a-z0-9]+", "_", str(name).strip().lower()).strip("_")
    return _ALIASES.get(key)


@dataclass(frozen=True)
class _Layout:
    columns: dict[str, int]  # canonical name -> position in a row; always has "date"
    body: list[_Row]


def read_price_csv(path: str | os.PathLike[str], *, ticker: str | None = None) -> pd.DataFrame:
    """Read a CSV file of daily bars into an unvalidated price frame.

    Parameters
    ----------
    path
        The file (``.csv``, or ``.csv.gz``).
    ticker
        The ticker wanted. Required only for a file holding several (yfinance's multi-row header
        or a ticker column); then it picks those columns or rows.

    Returns
    -------
    pandas.DataFrame
        Index ``date`` (tz-naive midnight, in file order, or reversed if the file is newest
        first), columns ``PRICE_COLUMNS`` as float64; ``adj_close`` is ``close`` where the file
        has no adjusted close. ``attrs[LINE_NUMBERS]`` holds each row's line in the file, and
        ``attrs[SPLITS]`` the file's ``Splits`` / ``Stock Splits`` column where it has one.

    Raises
    ------
    PriceFileError
        Missing or unreadable file, not CSV, no date column, a required column missing, a
        ticker not in the file, a value that is not a number or a date.
    """
    path = Path(path).expanduser()
    name = path.name
    layout = _layout(_read_rows(path), name, ticker)
    lines = [line for line, _ in layout.body]
    if not lines:
        raise PriceFileError(f"{name}: the file has a header but no rows; export it again")
    index = _dates([_cell(row, layout.columns["date"]) for _, row in layout.body], lines, name)
    data = {
        column: _numbers(layout, column, lines, index, name)
        for column in PRICE_COLUMNS
        if column in layout.columns
    }
    if "adj_close" not in data:
        logger.warning(
            "%s has no adjusted close column; using close as adj_close (no dividend adjustment)",
            name,
        )
        data["adj_close"] = data["close"].copy()
    frame = pd.DataFrame({column: data[column] for column in PRICE_COLUMNS}, index=index)
    splits = _numbers(layout, SPLITS, lines, index, name) if SPLITS in layout.columns else None
    if len(frame) > 1 and (np.diff(frame.index.asi8) < 0).all():
        logger.info("%s lists the newest day first; reading it oldest first", name)
        frame, lines = frame.iloc[::-1], lines[::-1]
        splits = None if splits is None else splits[::-1]
    frame.attrs[LINE_NUMBERS] = tuple(lines)
    if splits is not None:
        frame.attrs[SPLITS] = tuple(np.nan_to_num(splits, nan=0.0).tolist())
    return frame


def _read_rows(path: Path) -> list[_Row]:
    """Non-blank rows with their line numbers; errors for anything that is not CSV text."""
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise PriceFileError(f"{path}: {problem}; check the path given after csv:")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PriceFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise PriceFileError(f"{path.name}: a damaged gzip file; copy it again") from None
    try:
        if b"\x00" in data[:4096]:
            raise UnicodeError
        text = data.decode("utf-8-sig")
    except UnicodeError:
        raise PriceFileError(
            f"{path.name}: not a CSV text file (binary content, an Excel workbook?); "
            "save or export it as CSV"
        ) from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not first:
        raise PriceFileError(f"{path.name}: the file is empty; export the prices again")
    # Some spreadsheet locales write ';' or tabs between fields.
    delimiter = next((d for d in ",;\t" if d in first), ",")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[_Row] = []
    read = 0  # lines read whole; the row that fails starts on the next one
    try:
        for row in reader:
            read = reader.line_num
            if any(row):
                rows.append((read, [cell.strip() for cell in row]))
    except csv.Error as error:
        raise PriceFileError(f"{path.name} line {read + 1}: {_csv_problem(error)}") from None
    return rows


def _csv_problem(error: csv.Error) -> str:
    """What a ``csv.Error`` means for a price file, and what to do."""
    if "field larger than field limit" in str(error):
        return (
            f"a value longer than {csv.field_size_limit()} characters (no line breaks or a "
            "quote never closed?); a price file has one bar a line: check it is the right "
            "file, or export it again"
        )
    return f"not readable as CSV ({error}); export the prices again as CSV"


def _layout(rows: list[_Row], name: str, ticker: str | None) -> _Layout:
    if rows[0][1][0].lower() in _HEADER_LEVELS:
        return _multi_row_layout(rows, name, ticker)
    header = rows[0][1]
    names = [canonical_column(cell) for cell in header]
    if header[0] == "" or header[0].lower().startswith("unnamed"):
        names[0] = "date"  # a DataFrame's unnamed index
    columns: dict[str, int] = {}
    for position, column in enumerate(names):
        if column is not None:
            columns.setdefault(column, position)
    _require(columns, header, name)
    body = rows[1:]
    if "ticker" in columns:
        position = columns["ticker"]
        found = sorted({row[position].upper() for _, row in body if len(row) > position})
        wanted = _pick_ticker(found, ticker, name)
        body = [(line, row) for line, row in body if _cell(row, position).upper() == wanted]
    return _Layout(columns, body)


def _multi_row_layout(rows: list[_Row], name: str, ticker: str | None) -> _Layout:
    """yfinance's header: ``Price,Adj Close,...`` / ``Ticker,NVDA,...`` / ``Date,,,...``."""
    levels: dict[str, list[str]] = {}
    start = 0
    while start < len(rows) and rows[start][1][0].lower() in _HEADER_LEVELS:
        levels[rows[start][1][0].lower()] = rows[start][1]
        start += 1
    index_name_row = start < len(rows) and canonical_column(rows[start][1][0]) == "date"
    if index_name_row and not any(rows[start][1][1:]):
        start += 1  # the row naming the index, "Date,,,,,,"
    fields = levels.get("price")
    if fields is None:
        raise PriceFileError(f"{name}: a 'Ticker' header row without a 'Price' row; re-export it")
    tickers = levels.get("ticker", [""] * len(fields))
    found = sorted({t.upper() for t in tickers[1:] if t})
    wanted = _pick_ticker(found, ticker, name) if found else ""
    columns = {"date": 0}
    for position in range(1, len(fields)):
        column = canonical_column(fields[position])
        if column and _cell(tickers, position).upper() == wanted:
            columns.setdefault(column, position)
    _require(columns, fields, name)
    return _Layout(columns, rows[start:])


def _pick_ticker(found: list[str], ticker: str | None, name: str) -> str:
    if ticker is not None:
        if ticker.upper() not in found:
            raise PriceFileError(
                f"{name}: no {ticker.upper()} prices in this file, only {', '.join(found)}; "
                "use a file with that ticker or ask for one of these"
            )
        return ticker.upper()
    if len(found) > 1:
        raise PriceFileError(
            f"{name}: the file holds several tickers ({', '.join(found)}); say which one to read"
        )
    return found[0] if found else ""


def _require(columns: dict[str, int], header: list[str], name: str) -> None:
    shown = ", ".join(repr(cell[:30]) for cell in header[:10]) + (
        ", ..." if len(header) > 10 else ""
    )
    if "date" not in columns:
        raise PriceFileError(
            f"{name}: no date column in the first line (found {shown}); "
            "the first line must name the columns, starting with Date"
        )
    if missing := [column for column in REQUIRED if column not in columns]:
        raise PriceFileError(
            f"{name}: missing the column(s) {', '.join(missing)} (found {shown}); a price file "
            "needs Date, Open, High, Low, Close and Volume (Adj Close optional)"
        )


def _cell(row: list[str], position: int) -> str:
    return row[position] if position < len(row) else ""


def _dates(texts: list[str], lines: list[int], name: str) -> pd.DatetimeIndex:
    """Session dates; a time of day must be midnight, whatever its UTC offset."""
    matches = [_ISO.fullmatch(text) for text in texts]
    if all(matches):
        days = [match[1] for match in matches]  # type: ignore[index]
        times = [match[2] or "00:00" for match in matches]  # type: ignore[index]
        parsed = pd.to_datetime(pd.Series(days), format="%Y-%m-%d", errors="coerce")
    else:
        parsed = pd.to_datetime(pd.Series(texts), errors="coerce")
        if getattr(parsed.dt, "tz", None) is not None:
            parsed = parsed.dt.tz_localize(None)
        times = [f"{stamp:%H:%M}" if pd.notna(stamp) else "00:00" for stamp in parsed]
    for position, stamp in enumerate(parsed):
        where = f"{name} line {lines[position]}"
        if pd.isna(stamp):
            raise PriceFileError(
                f"{where}: cannot read the date {texts[position]!r}; write dates as YYYY-MM-DD"
            )
        if not times[position].startswith("00:00"):
            raise PriceFileError(
                f"{where}: {texts[position]!r} is a time of day, not a date; "
                "this project reads daily bars, one row per session"
            )
    return pd.DatetimeIndex(parsed.dt.normalize()).as_unit("ns").rename(INDEX_NAME)


def _numbers(
    layout: _Layout, column: str, lines: list[int], index: pd.DatetimeIndex, name: str
) -> np.ndarray:
    position = layout.columns[column]
    texts = pd.Series([_cell(row, position) for _, row in layout.body], dtype="str")
    empty = texts.str.lower().isin(_NULLS)
    numbers = pd.to_numeric(texts.where(~empty), errors="coerce")
    bad = np.flatnonzero(numbers.isna() & ~empty)
    if bad.size:
        first = bad[0]
        raise PriceFileError(
            f"{name} line {lines[first]} ({index[first]:%Y-%m-%d}): {column} "
            f"{texts[first]!r} is not a number; write plain numbers (no $ or thousands commas)"
        )
    return numbers.to_numpy(dtype="float64")
