"""Ticker symbols as the project stores them: one spelling per instrument, upper case."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from forecasting.errors import ConfigurationError

# Yahoo's symbols: letters, digits and . - ^ = (BRK-B, ^GSPC, EURUSD=X), at most 32 characters.
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.\-^=]{0,31}|\^[A-Z0-9.\-=]{1,31}")


def normalize_ticker(text: str) -> str:
    """The stored spelling of a ticker: surrounding blanks removed, upper case.

    Parameters
    ----------
    text : str
        What a person typed (``nvda``, `` NVDA ``) or a setting held.

    Returns
    -------
    str
        ``NVDA``; every table keys on this spelling, so ``nvda`` and ``NVDA`` are one ticker.

    Raises
    ------
    ConfigurationError
        If the text is not a ticker symbol.
    """
    symbol = str(text).strip().upper()
    if not _SYMBOL.fullmatch(symbol):
        raise ConfigurationError(
            f"{text!r} is not a ticker symbol; use letters, digits and . - ^ = (e.g. NVDA, BRK-B)"
        )
    return symbol


def read_watchlist(path: Path) -> list[str]:
    """Tickers from a file: one a line, ``#`` starts a comment, blank lines ignored.

    A byte order mark (Notepad's "UTF-8 with BOM") is no part of the first ticker.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the watchlist {path}: {error.strerror or error}; give a text file "
            "with one ticker a line"
        ) from None
    except UnicodeDecodeError:  # e.g. UTF-16, what Windows PowerShell 5 writes with `>`
        raise ConfigurationError(
            f"the watchlist {path} is not UTF-8 text; save it as UTF-8 with one ticker a line"
        ) from None
    tickers = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    tickers = [ticker for ticker in tickers if ticker]
    if not tickers:
        raise ConfigurationError(f"the watchlist {path} names no ticker; put one ticker a line")
    return tickers


def resolve_tickers(tickers: Sequence[str]) -> list[str]:
    """Normalized tickers in the order given, duplicates dropped; one bad symbol fails all."""
    resolved = list(dict.fromkeys(normalize_ticker(ticker) for ticker in tickers))
    if not resolved:
        raise ConfigurationError("no tickers given; use --tickers NVDA,AMD or --watchlist FILE")
    return resolved
