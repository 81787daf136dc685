import pytest

from forecasting.errors import ConfigurationError
from forecasting.tickers import normalize_ticker, read_watchlist, resolve_tickers


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (" nvda ", "NVDA"),
        ("NVDA", "NVDA"),
        ("brk-b", "BRK-B"),
        ("BRK.B", "BRK.B"),
        ("^gspc", "^GSPC"),
        ("eurusd=x", "EURUSD=X"),
        ("7203.T", "7203.T"),
        ("A" * 32, "A" * 32),
    ],
)
def test_tickers_are_stored_upper_case_without_blanks(typed, stored):
    assert normalize_ticker(typed) == stored


@pytest.mark.parametrize("typed", ["NV DA", "", "   ", "x" * 40, "A" * 33, "-NVDA", "NVDA$", "^"])
def test_what_is_not_a_ticker_is_a_one_line_configuration_error(typed):
    with pytest.raises(ConfigurationError) as caught:
        normalize_ticker(typed)
    message = str(caught.value)
    assert message == (
        f"{typed!r} is not a ticker symbol; use letters, digits and . - ^ = (e.g. NVDA, BRK-B)"
    )
    assert "\n" not in message


def test_a_watchlist_saved_with_a_byte_order_mark_reads_its_first_ticker(tmp_path):
    # Notepad's "UTF-8 with BOM": the first line was '\ufeffnvda', "not a ticker symbol".
    path = tmp_path / "watchlist.txt"
    path.write_bytes("nvda\r\n# chips\r\namd  # a comment\r\n\r\n".encode("utf-8-sig"))
    assert resolve_tickers(read_watchlist(path)) == ["NVDA", "AMD"]


def test_a_watchlist_of_only_comments_is_one_line(tmp_path):
    path = tmp_path / "watchlist.txt"
    path.write_text("\ufeff# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="names no ticker"):
        read_watchlist(path)


def test_a_watchlist_in_utf16_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "watchlist.txt"
    path.write_text("NVDA\nAMD\n", encoding="utf-16")  # Windows PowerShell 5's `>`
    with pytest.raises(ConfigurationError) as raised:
        read_watchlist(path)
    assert str(raised.value) == (
        f"the watchlist {path} is not UTF-8 text; save it as UTF-8 with one ticker a line"
    )
