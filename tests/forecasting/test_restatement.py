import datetime as dt
from unittest.mock import ANY

import numpy as np
import pytest

from forecasting.errors import RestatementError
from forecasting.prices.restatement import (
    RESTATED_COLUMNS,
    Restatement,
    Resync,
    find_restatement,
    judge_restatement,
)


def test_no_restatement_when_the_overlap_agrees(make_bars):
    stored = make_bars("2025-01-02", "2025-02-05")
    fetched = make_bars("2025-01-02", "2025-02-12")
    assert find_restatement(stored, fetched) is None
    assert find_restatement(stored, make_bars("2024-01-02", "2024-02-01")) is None  # no overlap


def test_a_split_is_a_restatement(make_bars):
    stored = make_bars("2025-01-02", "2025-02-12")
    fetched = stored.copy()
    fetched[["close", "adj_close"]] /= 10  # a 10:1 split restates all history
    fetched.index = fetched.index.as_unit("us")  # what the database returns may differ in unit

    found = find_restatement(stored, fetched)

    assert found == Restatement(
        first_date=dt.date(2025, 1, 2),
        rows=len(stored),
        overlap=len(stored),
        max_relative_difference=pytest.approx(0.9),
    )
    rows = len(stored)
    assert str(found) == (
        f"{rows} of {rows} overlapping rows differ from 2025-01-02 on "
        "(largest relative difference 0.9)"
    )


def test_a_dividend_readjustment_is_found_above_the_tolerance(make_bars):
    stored = make_bars("2025-01-02", "2025-02-12")
    fetched = stored.copy()
    fetched.loc[:"2025-02-05", "adj_close"] *= 1 - 7.5e-5  # NVDA's $0.01 dividend at $133
    assert find_restatement(stored, fetched) is None  # below the default rtol=1e-4
    found = find_restatement(stored, fetched, rtol=1e-5)
    assert found is not None
    assert (found.first_date, found.rows) == (dt.date(2025, 1, 2), len(stored[:"2025-02-05"]))
    assert found.max_relative_difference == pytest.approx(7.5e-5)


def test_a_value_missing_on_one_side_is_a_change(make_bars):
    stored = make_bars("2025-01-02", "2025-01-10")
    fetched = stored.copy()
    fetched.loc["2025-01-08", "close"] = np.nan
    found = find_restatement(stored, fetched)
    assert found is not None and found.first_date == dt.date(2025, 1, 8) and found.rows == 1


def test_find_restatement_needs_close_and_adj_close(make_bars):
    with pytest.raises(ValueError, match=r"stored prices lack the column\(s\) \['adj_close'\]"):
        find_restatement(make_bars().drop(columns="adj_close"), make_bars())


def test_one_dividend_factor_on_the_older_bars_is_accepted_with_the_factor(make_bars):
    stored = make_bars("2025-01-02", "2025-02-12")
    fetched = stored.copy()
    fetched.loc[:"2025-02-05", "adj_close"] *= 0.999  # ex-date 2025-02-06: earlier bars move

    resync = judge_restatement(stored, fetched, origin="csv:NVDA.csv", live=False)

    rows = len(stored[:"2025-02-05"])
    assert resync == Resync(
        dt.date(2025, 1, 2), dt.date(2025, 2, 5), rows, (("adj_close", ANY, ANY),)
    )
    assert str(resync) == f"adj_close x0.999 on {rows} stored bars from 2025-01-02 to 2025-02-05"
    assert judge_restatement(stored, stored.copy(), origin="x", live=False) is None


def test_a_split_factor_groups_the_columns_it_moves(make_bars):
    stored = make_bars("2025-01-02", "2025-01-31")
    fetched = stored.copy()
    fetched[list(RESTATED_COLUMNS)] /= 4
    resync = judge_restatement(stored, fetched.iloc[5:], origin="x", live=False)
    assert str(resync).startswith("open, high, low, close, adj_close x0.25 on 15 stored bars")


def test_two_factors_from_a_file_are_refused_naming_both_dates(make_bars):
    stored = make_bars("2025-01-02", "2025-02-12")
    fetched = stored.copy()
    fetched.loc[:"2025-01-15", "close"] *= 40  # a raw history: two splits' worth of factors
    fetched.loc["2025-01-16":, "close"] *= 10

    with pytest.raises(RestatementError) as raised:
        judge_restatement(stored, fetched, origin="csv:raw.csv", live=False)

    assert str(raised.value) == (
        "csv:raw.csv: close differs from the stored bars by x40 on 2025-01-02 but by x10 on "
        "2025-01-16, not one adjustment factor; check that the file is adjusted like the stored "
        "history (--adjust-splits for a raw one), or re-sync from the live source with "
        "--source yahoo"
    )
    # The live source is the reference: what it restates is taken, its factors reported.
    resync = judge_restatement(stored, fetched, origin="yahoo", live=True)
    assert resync is not None and str(resync).startswith("close x10 to x40 on 28 stored bars")


def test_a_change_after_unchanged_bars_is_no_adjustment(make_bars):
    stored = make_bars("2025-01-02", "2025-01-31")
    fetched = stored.copy()
    fetched.loc["2025-01-22", "close"] *= 1.01  # one edited day, not a restated past
    with pytest.raises(RestatementError, match=r"on 2025-01-22 but agree on the earlier 2025-01"):
        judge_restatement(stored, fetched, origin="csv:NVDA.csv", live=False)


def test_a_split_sized_step_before_kept_bars_is_refused_a_dividend_s_is_not(make_bars):
    stored = make_bars("2025-01-02", "2025-02-12")
    raw = stored.loc[:"2025-01-31"].copy()
    raw[list(RESTATED_COLUMNS)] *= 4  # a raw file ending before a 4:1 split
    kept = dt.date(2025, 2, 12)
    assert judge_restatement(stored, raw, origin="csv:raw.csv", live=False) is not None

    with pytest.raises(RestatementError) as raised:
        judge_restatement(stored, raw, origin="csv:raw.csv", live=True, stored_until=kept)

    assert str(raised.value) == (
        "csv:raw.csv: its bars end on 2025-01-31, restated by x4 in close, but bars are stored to "
        "2025-02-12: replacing only its bars would leave that step after 2025-01-31; read up to "
        "2025-02-12 (no --as-of, a file that reaches it) and check that it is adjusted like the "
        "stored history (--adjust-splits for a raw one)"
    )
    dividend = stored.loc[:"2025-01-31"].copy()
    dividend["adj_close"] *= 0.999
    resync = judge_restatement(stored, dividend, origin="x", live=False, stored_until=kept)
    assert resync is not None and resync.last_date == dt.date(2025, 1, 31)
