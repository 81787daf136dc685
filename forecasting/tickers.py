"""Ticker symbols as the project stores them: one spelling per instrument, upper case."""

from __future__ import annotations

import re

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
