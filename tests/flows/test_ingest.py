"""Step 1 against a database holding the bundled history: nothing stored is lost or rewritten
by a file the rule does not trust, and every attempt is a row in ``ingestions``.

On SQLite and PostgreSQL (the ``database_url`` fixture); no training, but each test stores the
whole bundled history first (a few seconds), hence ``slow``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect import flow
from sqlalchemy import func, select

from db.engine import get_engine, unit_of_work
from db.models import Ingestion, Price
from db.repository import read_prices
from flows.ingest import Ingested, ingest
from flows.job import job_for
from flows.tasks import open_store
from forecasting.errors import PriceValidationError, RestatementError
from forecasting.prices.sources import load_prices

pytestmark = pytest.mark.slow

SAMPLE_ROWS = 6_555
AS_OF = dt.date(2024, 8, 8)
ROWS_TO_AS_OF = 6_428  # sample bars up to AS_OF


@flow
def run_ingest(
    database_url: str, source: str, as_of: dt.date | None = None, adjust_splits: bool = False
) -> Ingested:
    job = job_for(
        "NVDA", source, open_store(database_url), as_of=as_of, adjust_splits=adjust_splits
    )
    return ingest(job, flow_run_id=None)


@pytest.fixture
def sample() -> pd.DataFrame:
    return load_prices("sample")


@pytest.fixture
def stored(flow_settings, sample) -> str:
    """A database holding the whole bundled history, 1999-01-22 to 2025-02-11."""
    run_ingest(flow_settings, "sample")
    assert price_count(flow_settings) == SAMPLE_ROWS
    return flow_settings


def price_count(url: str) -> int:
    with unit_of_work(get_engine(url)) as session:
        return session.scalar(select(func.count()).select_from(Price))


def stored_prices(url: str) -> pd.DataFrame:
    with unit_of_work(get_engine(url)) as session:
        return read_prices(session=session, ticker="NVDA")


def ingestions(url: str) -> list[Ingestion]:
    with unit_of_work(get_engine(url)) as session:
        return list(session.scalars(select(Ingestion).order_by(Ingestion.id)))


def write_yfinance_csv(frame: pd.DataFrame, path: Path) -> str:
    """``yf.download(...).to_csv()``: the three-line ``Price`` / ``Ticker`` / ``Date`` header."""
    order = ["adj_close", "close", "high", "low", "open", "volume"]
    lines = [
        "Price,Adj Close,Close,High,Low,Open,Volume",
        "Ticker" + ",NVDA" * len(order),
        "Date" + "," * len(order),
    ]
    lines += [
        f"{day:%Y-%m-%d}," + ",".join(repr(float(value)) for value in row)
        for day, row in zip(frame.index, frame[order].to_numpy(), strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return f"csv:{path}"


def test_a_readjusted_file_with_an_earlier_as_of_keeps_the_later_bars(
    write_yahoo_export, stored, sample, tmp_path
):
    readjusted = sample.loc[: pd.Timestamp(AS_OF)].copy()
    readjusted["adj_close"] *= 0.999  # what a dividend re-adjustment looks like
    source = write_yahoo_export(readjusted, tmp_path / "NVDA.csv")

    ingested = run_ingest(stored, source, as_of=AS_OF)

    assert price_count(stored) == SAMPLE_ROWS  # was 6,555 -> 6,428 before the fix
    after = stored_prices(stored)
    later = after.index > pd.Timestamp(AS_OF)
    pd.testing.assert_frame_equal(after[later], sample[later], check_freq=False)
    np.testing.assert_allclose(after["adj_close"][~later], sample["adj_close"][~later] * 0.999)
    np.testing.assert_array_equal(after["close"], sample["close"])
    text = f"adj_close x0.999 on {ROWS_TO_AS_OF:,} stored bars from 1999-01-22 to {AS_OF}"
    assert str(ingested.restatement) == text
    record = ingestions(stored)[-1]
    assert (record.status, record.restated, record.adjustment) == (
        "succeeded",
        True,
        f"restated: {text}",
    )


def test_a_yfinance_file_starting_later_keeps_the_earlier_bars(stored, sample, tmp_path):
    later = sample.loc["2000-01-03":].copy()
    later["adj_close"] *= 0.999
    source = write_yfinance_csv(later, tmp_path / "NVDA.csv")

    run_ingest(stored, source)

    assert price_count(stored) == SAMPLE_ROWS  # was 6,555 -> 6,432 before the fix
    after = stored_prices(stored)
    pd.testing.assert_frame_equal(after[:"1999-12-31"], sample[:"1999-12-31"], check_freq=False)
    np.testing.assert_allclose(after["adj_close"]["2000-01-03":], later["adj_close"])


def test_a_raw_file_ending_before_a_split_does_not_rewrite_the_stored_bars(
    write_yahoo_export, stored, sample, tmp_path
):
    raw = unadjusted(sample, {"2021-07-20": 4, "2024-06-10": 10})
    source = write_yahoo_export(raw, tmp_path / "raw.csv")

    with pytest.raises(RestatementError, match=r"end on 2021-07-16, restated by x40 in close"):
        run_ingest(stored, source, as_of=dt.date(2021, 7, 16))

    # Before the fix: 6,555 -> 5,658 bars, and the 2021-07-16 close 726.44 instead of 18.16.
    pd.testing.assert_frame_equal(stored_prices(stored), sample, check_freq=False)
    assert ingestions(stored)[-1].status == "failed"


def test_a_restatement_with_two_factors_is_refused_and_nothing_changes(
    write_yahoo_export, stored, sample, tmp_path
):
    mixed = sample.copy()
    mixed.loc[:"2009-12-31", "adj_close"] *= 0.999
    mixed.loc["2010-01-04":, "adj_close"] *= 0.998
    source = write_yahoo_export(mixed, tmp_path / "NVDA.csv")

    with pytest.raises(RestatementError) as raised:
        run_ingest(stored, source)

    message = str(raised.value)
    assert "\n" not in message
    assert (
        "adj_close differs from the stored bars by x0.999 on 1999-01-22 but by x0.998 on 2010-01-04"
        in message
    )
    assert "not one adjustment factor" in message and "--source yahoo" in message
    pd.testing.assert_frame_equal(stored_prices(stored), sample, check_freq=False)
    record = ingestions(stored)[-1]
    assert (record.status, record.error, record.rows_upserted) == ("failed", message, 0)


def test_a_failed_file_with_a_partial_last_bar_is_recorded(
    write_yahoo_export, stored, sample, tmp_path
):
    partial = sample.copy()
    partial.loc[partial.index[-1], "volume"] = 41_234_567.0  # a snapshot during the session
    source = write_yahoo_export(partial, tmp_path / "NVDA.csv")

    with pytest.raises(PriceValidationError, match="looks like a partial bar") as raised:
        run_ingest(stored, source)

    assert price_count(stored) == SAMPLE_ROWS
    record = ingestions(stored)[-1]  # no row at all before the fix
    assert (record.status, record.error) == ("failed", str(raised.value))
    assert record.source == source and "\n" not in record.error


def unadjusted(frame: pd.DataFrame, splits: dict[str, float]) -> pd.DataFrame:
    """The raw prices a split-adjusted history hides: earlier bars on the old share count."""
    raw = frame.copy()
    for day, ratio in splits.items():
        before = raw.index < pd.Timestamp(day)
        raw.loc[before, ["open", "high", "low", "close", "adj_close"]] *= ratio
        raw.loc[before, "volume"] /= ratio
    return raw


def test_an_unadjusted_file_is_refused_or_adjusted_when_asked(
    write_yahoo_export, flow_settings, sample, tmp_path
):
    source = write_yahoo_export(
        unadjusted(sample, {"2021-07-20": 4, "2024-06-10": 10}), tmp_path / "raw.csv"
    )

    with pytest.raises(PriceValidationError, match=r"\(2021-07-20\): close 751\.19 -> 186\.12"):
        run_ingest(flow_settings, source)
    assert price_count(flow_settings) == 0
    assert ingestions(flow_settings)[-1].status == "failed"

    run_ingest(flow_settings, source, adjust_splits=True)

    after = stored_prices(flow_settings)
    np.testing.assert_allclose(after.to_numpy(), sample.to_numpy(), rtol=1e-12)
    assert ingestions(flow_settings)[-1].adjustment == (
        "4:1 split on 2021-07-20 adjusted for (5,659 earlier bars); "
        "10:1 split on 2024-06-10 adjusted for (6,386 earlier bars)"
    )
