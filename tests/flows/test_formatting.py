"""The one money formatter of flows/presentation: precision at any price level."""

import math

import pandas as pd
import pytest

from flows.presentation.formatting import money, number, percent


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (132.8123, "$132.81"),
        (1234567.891, "$1,234,567.89"),
        (1.0, "$1.00"),
        (0.2012, "$0.2012"),
        (0.20, "$0.2000"),
        (0.0031, "$0.003100"),
        (-0.0031, "-$0.003100"),
        (-4.5, "-$4.50"),
        (0.0, "$0.00"),
    ],
)
def test_money_keeps_four_significant_digits_below_a_dollar(value, expected):
    assert money(value) == expected


def test_money_of_one_line_reads_alike_and_blanks_read_as_a_dash():
    assert money(1.0213, like=0.9987) == "$1.0213"
    assert money(-0.00001, like=130.0) == "$0.00"  # no "-$0.00"
    assert [money(v) for v in (None, math.nan, pd.NA)] == ["-", "-", "-"]
    assert money(None, missing="") == ""
    assert percent(0.948) == "94.8%" and percent(None) == "-"
    assert number(-2.1234, "{:.4g}") == "-2.123" and number(math.nan) == "-"
