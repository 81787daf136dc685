import pytest

from forecasting.errors import ConfigurationError
from forecasting.tickers import normalize_ticker


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
