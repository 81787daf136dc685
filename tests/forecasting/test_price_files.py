import gzip
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yfinance as yf
from pandas.errors import Pandas4Warning

from forecasting.errors import PriceFileError
from forecasting.prices.price_files import LINE_NUMBERS, canonical_column, read_price_csv
from forecasting.prices.validation import PRICE_COLUMNS

DATA = Path(__file__).parent / "data"
# Real rows of the public NVDA export (see forecasting/data/README.md), bytes unchanged.
YAHOO_2001 = DATA / "nvda_yahoo_2001.csv"  # 2001-07-16 .. 2001-09-28, with the empty 2001-09-12
YAHOO_2025 = DATA / "nvda_yahoo_2025.csv"  # the last 25 rows, ending with the partial 2025-02-12
YAHOO_NAMES = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


def yahoo_rows(path: Path = YAHOO_2025) -> pd.DataFrame:
    return pd.read_csv(path, index_col="Date", parse_dates=True)


def expected(rows: pd.DataFrame) -> pd.DataFrame:
    frame = rows[YAHOO_NAMES].set_axis(list(PRICE_COLUMNS), axis=1).astype("float64")
    return frame.set_axis(pd.DatetimeIndex(rows.index, name="date").as_unit("ns"), axis=0)


def history_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """What yfinance 1.7's ``Ticker.history(auto_adjust=False, actions=False)`` returns."""
    frame = rows[YAHOO_NAMES].dropna().copy()
    index = pd.DatetimeIndex(frame.index).as_unit("s").tz_localize("America/New_York")
    frame.index = index.rename("Date")
    frame["Volume"] = frame["Volume"].astype("int64")
    return frame


def download(monkeypatch, frames: dict[str, pd.DataFrame], **options) -> pd.DataFrame:
    """Run the real ``yf.download``, each ticker's ``Ticker.history`` answering from ``frames``."""
    monkeypatch.setattr(yf.Ticker, "history", lambda self, **_: frames[self.ticker].copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)  # yfinance's own use of inplace=True
        return yf.download(
            list(frames),
            start="2025-01-01",
            end="2025-02-13",
            auto_adjust=False,
            actions=False,
            progress=False,
            threads=False,
            **options,
        )


def write(tmp_path: Path, text: str, name: str = "NVDA.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_yahoo_s_website_export():
    frame = read_price_csv(YAHOO_2025)
    pd.testing.assert_frame_equal(frame, expected(yahoo_rows()))
    assert frame.attrs[LINE_NUMBERS] == tuple(range(2, 27))


def test_an_empty_row_is_read_as_empty_values_on_its_line(tmp_path):
    frame = read_price_csv(YAHOO_2001)
    position = frame.index.get_loc(pd.Timestamp("2001-09-12"))
    assert frame.iloc[position].isna().all()
    assert frame.attrs[LINE_NUMBERS][position] == 42
    # Yahoo's older exports spell missing values "null".
    text = YAHOO_2001.read_text().replace(
        "2001-09-12,,,,,,", "2001-09-12," + ",".join(["null"] * 6)
    )
    again = read_price_csv(write(tmp_path, text))
    pd.testing.assert_frame_equal(again, frame)


def test_reads_yfinance_download_saved_with_its_multi_row_header(monkeypatch, tmp_path):
    rows = yahoo_rows().iloc[:-1]
    saved = download(monkeypatch, {"NVDA": history_frame(rows)})
    text = saved.to_csv()
    header = ["Price,Adj Close,Close,High,Low,Open,Volume", "Ticker" + ",NVDA" * 6, "Date,,,,,,"]
    assert text.startswith("\n".join(header) + "\n2025-01-07,")
    frame = read_price_csv(write(tmp_path, text), ticker="NVDA")
    pd.testing.assert_frame_equal(frame, expected(rows))
    assert frame.attrs[LINE_NUMBERS][:2] == (4, 5)


def test_reads_yfinance_grouped_by_ticker(monkeypatch, tmp_path):
    rows = yahoo_rows().iloc[:-1]
    saved = download(monkeypatch, {"NVDA": history_frame(rows)}, group_by="ticker")
    text = saved.to_csv()
    assert text.startswith("Ticker,NVDA,NVDA,NVDA,NVDA,NVDA,NVDA\nPrice,")
    pd.testing.assert_frame_equal(read_price_csv(write(tmp_path, text)), expected(rows))


def test_a_multi_ticker_file_gives_the_ticker_asked_for(monkeypatch, tmp_path):
    rows = yahoo_rows().iloc[:-1]
    other = history_frame(rows)
    other[["Open", "High", "Low", "Close", "Adj Close"]] *= 2
    saved = download(monkeypatch, {"NVDA": history_frame(rows), "AMD": other})
    path = write(tmp_path, saved.to_csv(), "both.csv")

    pd.testing.assert_frame_equal(read_price_csv(path, ticker="nvda"), expected(rows))
    assert read_price_csv(path, ticker="AMD")["close"].iloc[0] == 2 * rows["Close"].iloc[0]
    with pytest.raises(
        PriceFileError, match=r"^both\.csv: no MSFT prices in this file, only AMD, NVDA; "
    ):
        read_price_csv(path, ticker="MSFT")
    with pytest.raises(
        PriceFileError, match=r"^both\.csv: the file holds several tickers \(AMD, NVDA\); say which"
    ):
        read_price_csv(path)


def test_reads_yfinance_download_with_single_level_columns(monkeypatch, tmp_path):
    rows = yahoo_rows().iloc[:-1]
    saved = download(monkeypatch, {"NVDA": history_frame(rows)}, multi_level_index=False)
    text = saved.to_csv()
    assert text.startswith("Date,Adj Close,Close,High,Low,Open,Volume\n2025-01-07,140.1")
    pd.testing.assert_frame_equal(read_price_csv(write(tmp_path, text)), expected(rows))


def test_reads_ticker_history_saved_with_tz_aware_dates(tmp_path):
    # Across the start of daylight saving time: offsets -05:00 then -04:00.
    days = pd.DatetimeIndex(["2024-03-07", "2024-03-08", "2024-03-11", "2024-03-12"])
    rows = pd.DataFrame(
        {"Open": 1.0, "High": 2.0, "Low": 0.5, "Close": 1.5, "Adj Close": 1.4, "Volume": 100.0},
        index=days,
    )
    text = history_frame(rows).to_csv()
    assert "2024-03-08 00:00:00-05:00" in text and "2024-03-11 00:00:00-04:00" in text
    frame = read_price_csv(write(tmp_path, text))
    pd.testing.assert_index_equal(frame.index, pd.DatetimeIndex(days, name="date").as_unit("ns"))


@pytest.mark.parametrize(
    "header",
    [
        "date,open,high,low,close,adj_close,volume",
        "Timestamp,OPEN,High,Low,Close*,Adj Close**,Vol.",
        "datetime,open,high,low,close,adjclose,vol",
        "time,Open,High,Low,Close/Last,Adjusted Close,Volume",
        "Day,Open,High,Low,Close,Adj. Close,Volume,Dividends,Stock Splits",
    ],
)
def test_column_names_are_matched_loosely(header, tmp_path):
    body = YAHOO_2025.read_text().split("\n", 1)[1]
    if "Dividends" in header:
        body = "\n".join(line + ",0.0,0.0" for line in body.splitlines())
    frame = read_price_csv(write(tmp_path, f"{header}\n{body}"))
    pd.testing.assert_frame_equal(frame, expected(yahoo_rows()))


def test_canonical_column_names():
    assert canonical_column(" Adj Close** ") == "adj_close"
    assert canonical_column("VOL.") == "volume"
    assert canonical_column("Symbol") == "ticker"
    assert canonical_column("Dividends") is None


def test_a_file_without_adjusted_close_uses_close_and_says_so(tmp_path, caplog):
    text = "Date,Open,High,Low,Close,Volume\n2025-02-10,130.0,135.0,129.9,133.5,216989100\n"
    with caplog.at_level(logging.WARNING, logger="forecasting.prices.price_files"):
        frame = read_price_csv(write(tmp_path, text))
    assert frame["adj_close"].tolist() == [133.5]
    assert "NVDA.csv has no adjusted close column; using close as adj_close" in caplog.text


def test_a_newest_first_file_is_read_oldest_first(tmp_path):
    header, *lines = YAHOO_2025.read_text().splitlines()
    frame = read_price_csv(write(tmp_path, "\n".join([header, *reversed(lines)])))
    pd.testing.assert_frame_equal(frame, expected(yahoo_rows()))
    assert frame.attrs[LINE_NUMBERS][0] == 26 and frame.attrs[LINE_NUMBERS][-1] == 2


def test_reads_semicolons_gzip_and_an_unnamed_index_column(tmp_path):
    text = YAHOO_2025.read_text()
    semicolons = read_price_csv(write(tmp_path, text.replace(",", ";"), "semi.csv"))
    packed = tmp_path / "NVDA.csv.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    unnamed = read_price_csv(write(tmp_path, text.replace("Date,", ",", 1), "unnamed.csv"))
    for frame in (semicolons, read_price_csv(packed), unnamed):
        pd.testing.assert_frame_equal(frame, expected(yahoo_rows()))


ROW = "2025-02-10,130.0,135.0,129.9,133.5,133.5,216989100\n"
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", r"^NVDA\.csv: not a CSV text file"),
        (b"\xff\xfeD\x00a\x00", r"^NVDA\.csv: not a CSV text file"),
        (b"\n\n", r"^NVDA\.csv: the file is empty"),
        (HEADER.encode(), r"^NVDA\.csv: the file has a header but no rows"),
        (
            b"Open,High,Low,Close,Volume\n1,2,0.5,1.5,100\n",
            r"^NVDA\.csv: no date column in the first line \(found 'Open', 'High', 'Low', 'Close', "
            r"'Volume'\); the first line must name the columns, starting with Date$",
        ),
        (
            b"<!DOCTYPE html><html>\n",
            r"^NVDA\.csv: no date column in the first line \(found '<!DOCTYPE html><html>'\)",
        ),
        (
            b"Date,Open,Close\n2025-02-10,1,2\n",
            r"^NVDA\.csv: missing the column\(s\) high, low, volume "
            r"\(found 'Date', 'Open', 'Close'\); a price file needs Date, Open,",
        ),
        (
            (HEADER + ROW + ROW.replace("10,", "11,", 1).replace("133.5,", "abc,", 1)).encode(),
            r"^NVDA\.csv line 3 \(2025-02-11\): close 'abc' is not a number; write plain numbers",
        ),
        (
            (HEADER + ROW + "2025-13-45,1,2,0.5,1.5,1.5,100\n").encode(),
            r"^NVDA\.csv line 3: cannot read the date '2025-13-45'; write dates as YYYY-MM-DD$",
        ),
        (
            (HEADER + "02/10/2025,1,2,0.5,1.5,1.5,100\n" + "soon,1,2,0.5,1.5,1.5,100\n").encode(),
            r"^NVDA\.csv line 3: cannot read the date 'soon'",
        ),
        (
            (HEADER + ROW.replace("2025-02-10", "2025-02-10 09:30:00-05:00")).encode(),
            r"^NVDA\.csv line 2: '2025-02-10 09:30:00-05:00' is a time of day, not a date",
        ),
        (
            b"Ticker,NVDA,NVDA\nDate,,\n2025-02-10,1,2\n",
            r"^NVDA\.csv: a 'Ticker' header row without a 'Price' row",
        ),
        (b"\x1f\x8b\x08\x00broken", r"^NVDA\.csv: a damaged gzip file"),
        (
            b"x" * 200_000,
            r"^NVDA\.csv line 1: a value longer than 131072 characters \(no line breaks or "
            r"a quote never closed\?\); a price file has one bar a line",
        ),
        (
            (HEADER + ROW + '2025-02-11,"130.0,' + "1" * 140_000 + "\n" + ROW).encode(),
            r"^NVDA\.csv line 3: a value longer than 131072 characters",
        ),
    ],
)
def test_malformed_files_are_refused_with_one_line_messages(content, message, tmp_path):
    path = tmp_path / "NVDA.csv"
    path.write_bytes(content)
    with pytest.raises(PriceFileError, match=message) as caught:
        read_price_csv(path)
    assert "\n" not in str(caught.value)


def test_a_missing_file_or_a_folder_is_refused(tmp_path):
    with pytest.raises(
        PriceFileError, match=r"/nope\.csv: does not exist; check the path given after csv:$"
    ):
        read_price_csv(tmp_path / "nope.csv")
    with pytest.raises(PriceFileError, match="is a folder, not a file"):
        read_price_csv(tmp_path)


def test_non_iso_dates_are_read(tmp_path):
    text = (
        HEADER + ROW.replace("2025-02-10", "02/10/2025") + ROW.replace("2025-02-10", "02/11/2025")
    )
    frame = read_price_csv(write(tmp_path, text))
    assert frame.index.tolist() == [pd.Timestamp("2025-02-10"), pd.Timestamp("2025-02-11")]
    assert np.isclose(frame["close"], 133.5).all()
