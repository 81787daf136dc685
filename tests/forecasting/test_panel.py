"""The panel network: one distributional LSTM fitted on the pooled windows of many tickers."""

from __future__ import annotations

import datetime as dt
import math
import zipfile

import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import trading_days
from forecasting.config import FeatureConfig, TrainingConfig
from forecasting.errors import InsufficientDataError, ModelArtifactError
from forecasting.features import FEATURE_NAMES
from forecasting.model import SavedModel, save_model
from forecasting.model.panel import (
    METADATA_ENTRY,
    build_panel_model,
    fit_panel,
    load_panel,
    load_saved_panel,
    panel_forecast,
    save_panel,
    saved_panel,
)
from forecasting.model.panel_data import (
    UNKNOWN_TICKER_ID,
    PanelConfig,
    next_window,
    prepare_panel,
)
from forecasting.prices.validation import PRICE_COLUMNS

DAYS = 300
SESSIONS = pd.DatetimeIndex(trading_days("2023-01-03", "2024-08-30")[-DAYS:], name="date")
AS_OF = SESSIONS[-40].date()  # 39 sessions after it, to poison
# Three tickers of one kind at three volatilities, and one the fit never sees.
VOLATILITIES = {"LOW": 0.01, "MID": 0.02, "HIGH": 0.04}
TINY = PanelConfig(
    features=FeatureConfig(sequence_length=5, validation_windows=20),
    training=TrainingConfig(
        layers=1,
        units=4,
        max_epochs=3,
        batch_size=64,
        learning_rate=1e-2,
        finetune_epochs=1,
        # The fit's rate: the walk forward then needs no second trace.
        finetune_learning_rate=1e-2,
    ),
    embedding_dim=2,
)
SEED = 5


def random_walk(volatility: float, seed: int) -> pd.DataFrame:
    """A seeded random walk of consistent daily bars, shaped like ``load_prices``'s frames."""
    generator = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(generator.normal(0.0, volatility, DAYS)))
    open_ = close * np.exp(generator.normal(0.0, volatility / 4, DAYS))
    high = np.maximum(open_, close) * np.exp(np.abs(generator.normal(0.0, volatility / 2, DAYS)))
    low = np.minimum(open_, close) * np.exp(-np.abs(generator.normal(0.0, volatility / 2, DAYS)))
    volume = np.round(1e6 * np.exp(generator.normal(0.0, 0.3, DAYS)))
    values = [open_, high, low, close, close, volume]
    return pd.DataFrame(dict(zip(PRICE_COLUMNS, values, strict=True)), index=SESSIONS)


PRICES = {ticker: random_walk(vol, seed) for seed, (ticker, vol) in enumerate(VOLATILITIES.items())}
WITHHELD = random_walk(0.02, 9)


def poisoned(prices: pd.DataFrame, after: dt.date = AS_OF) -> pd.DataFrame:
    """Every bar after ``after`` times 10 plus finite garbage: after as-of, what no fit may read."""
    later = prices.index > pd.Timestamp(after)
    garbage = np.random.default_rng(0).uniform(1.0, 1000.0, size=(later.sum(), 6))
    changed = prices.copy()
    changed.loc[later] = prices.loc[later].to_numpy() * 10.0 + garbage
    return changed


@pytest.fixture(scope="module")
def panel():
    return fit_panel(PRICES, AS_OF, TINY, seed=SEED)


def _assert_same_weights(first, second) -> None:
    assert len(first.model.weights) == len(second.model.weights)
    for mine, theirs in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


# The windows (numpy and pandas only)


def test_windows_pool_every_ticker_up_to_as_of_with_its_id():
    data = prepare_panel(PRICES, AS_OF, TINY, seed=SEED)
    assert data.ticker_ids == {"HIGH": 1, "LOW": 2, "MID": 3}
    assert data.feature_names[: len(FEATURE_NAMES)] == FEATURE_NAMES
    assert {"log_garman_klass", "log_har_5", "log_har_22", "negative_return"} <= set(
        data.feature_names
    )
    assert data.fit.x.shape[1:] == (5, len(data.feature_names))
    assert np.isfinite(data.fit.x).all() and np.isfinite(data.validation.x).all()
    # No window reads a bar after as-of, and every target is at most as-of.
    assert data.validation.target_dates.max() == pd.Timestamp(AS_OF)
    assert data.fit.target_dates.max() < data.validation.target_dates.min()
    for ticker, ticker_id in data.ticker_ids.items():
        mine = data.validation_ids == ticker_id
        assert mine.sum() == 20  # validation_windows of each
        assert data.spans[ticker] == (SESSIONS[0].date(), AS_OF)
        # The target is the next session's log return of that ticker's close.
        close = PRICES[ticker]["close"]
        day = data.validation.as_of_dates[mine][0]
        following = close.index[close.index.get_loc(day) + 1]
        expected = math.log(close[following] / close[day])
        assert data.validation.y[mine][0] == pytest.approx(expected, rel=1e-6)
    # A tenth of each ticker's fit windows train the unknown ticker's id; the draw is seeded.
    per_ticker = data.fit_ids.size // 3
    assert (data.fit_ids == UNKNOWN_TICKER_ID).sum() == 3 * round(0.1 * per_ticker)
    again = prepare_panel(PRICES, AS_OF, TINY, seed=SEED)
    np.testing.assert_array_equal(again.fit_ids, data.fit_ids)


def test_statistics_are_pooled_over_the_fit_windows_only():
    data = prepare_panel(PRICES, AS_OF, TINY, seed=SEED)
    assert data.scaling.target_mean == pytest.approx(float(data.fit.y.mean()), abs=1e-7)
    # The last fit window's target is 20 sessions before as-of: the validation windows' own
    # bars after it do not move the statistics, that bar does.
    last_fit_target = SESSIONS[SESSIONS.get_loc(pd.Timestamp(AS_OF)) - 20].date()
    assert data.fit.target_dates.max().date() == last_fit_target
    for after, same in ((last_fit_target, True), (SESSIONS[-62].date(), False)):
        changed = {ticker: poisoned(prices, after) for ticker, prices in PRICES.items()}
        scaling = prepare_panel(changed, AS_OF, TINY, seed=SEED).scaling
        assert np.array_equal(scaling.feature_std, data.scaling.feature_std) is same
        assert (scaling.target_std == data.scaling.target_std) is same


def test_a_ticker_with_too_little_history_is_skipped_and_none_at_all_is_an_error():
    short = PRICES["MID"].iloc[-80:]
    data = prepare_panel({**PRICES, "NEW": short}, AS_OF, TINY, seed=SEED)
    assert data.skipped == ("NEW",) and "NEW" not in data.ticker_ids
    with pytest.raises(InsufficientDataError, match="no ticker"):
        prepare_panel({"NEW": short}, AS_OF, TINY, seed=SEED)
    with pytest.raises(InsufficientDataError, match="too few for a window"):
        next_window(short, short.index[3].date(), TINY.features)


# The network


def test_each_ticker_gets_a_student_t_forecast(panel):
    assert panel.tickers == ("HIGH", "LOW", "MID")
    assert panel.as_of == AS_OF and 1 <= panel.epochs_run <= 3 and panel.seconds > 0
    assert panel.validation_windows == 60 and panel.fit_windows > 500
    assert panel.model.input_shape == [(None, 5, len(panel.feature_names)), (None,)]
    for ticker, prices in PRICES.items():
        location, scale, df = panel_forecast(panel, prices, ticker, AS_OF)
        assert math.isfinite(location) and 0 < scale < 1 and df > 2


def test_a_more_volatile_ticker_gets_a_larger_scale(panel):
    scales = {t: panel_forecast(panel, p, t, AS_OF).scale for t, p in PRICES.items()}
    assert scales["LOW"] < scales["MID"] < scales["HIGH"]
    assert scales["HIGH"] > 2 * scales["LOW"]


def test_a_ticker_the_fit_never_saw_is_forecast_as_the_unknown_ticker(panel):
    location, scale, df = panel_forecast(panel, WITHHELD, "NEW", AS_OF)
    assert math.isfinite(location) and 0 < scale < 1 and df > 2
    # Its id is 0, not one of the fit's: the same bars as "MID" forecast otherwise.
    assert panel_forecast(panel, WITHHELD, "MID", AS_OF) != (location, scale, df)


def test_a_forecast_before_the_panel_s_as_of_is_refused(panel):
    with pytest.raises(ValueError, match="would use later data"):
        panel_forecast(panel, PRICES["LOW"], "LOW", SESSIONS[-41].date())


def test_the_seed_sets_the_initial_weights():
    data = prepare_panel(PRICES, AS_OF, TINY, seed=SEED)
    args = (len(data.feature_names), 5, 3)
    built = [
        build_panel_model(*args, config=TINY, scaling=data.scaling, seed=seed).get_weights()
        for seed in (1, 1, 2)
    ]
    for same, other in zip(built[0], built[1], strict=True):
        np.testing.assert_array_equal(same, other)
    assert any(not np.array_equal(a, b) for a, b in zip(built[0], built[2], strict=True))


@pytest.mark.slow
def test_the_same_seed_gives_identical_weights(panel):
    _assert_same_weights(fit_panel(PRICES, AS_OF, TINY, seed=SEED), panel)


@pytest.mark.slow
@pytest.mark.parametrize("ticker", ["HIGH", "LOW"], ids=["another-ticker", "its-own"])
def test_no_bar_after_as_of_of_any_ticker_enters_the_fit_or_the_forecast(panel, ticker):
    changed = {**PRICES, ticker: poisoned(PRICES[ticker])}
    refitted = fit_panel(changed, AS_OF, TINY, seed=SEED)
    _assert_same_weights(refitted, panel)
    assert refitted.spans == panel.spans and refitted.fit_windows == panel.fit_windows
    today = panel_forecast(panel, PRICES["LOW"], "LOW", AS_OF)
    assert panel_forecast(refitted, changed["LOW"], "LOW", AS_OF) == today


@pytest.mark.slow
def test_the_walk_forward_s_own_rate_needs_no_recompile(monkeypatch):
    import forecasting.model.panel as panel_module

    training = TINY.training.model_copy(update={"finetune_learning_rate": 1e-3})
    config = TINY.model_copy(update={"training": training})
    reset = fit_panel(PRICES, AS_OF, config, seed=SEED)
    # Without the reset, the fit recompiles for the new rate (and traces again).
    monkeypatch.setattr(panel_module, "reset_optimizer", lambda optimizer, rate: None)
    _assert_same_weights(fit_panel(PRICES, AS_OF, config, seed=SEED), reset)


@pytest.mark.slow
def test_without_an_embedding_every_ticker_is_pooled():
    pooled = fit_panel(PRICES, AS_OF, TINY.model_copy(update={"embedding_dim": 0}), seed=SEED)
    assert len(pooled.model.inputs) == 1
    known = panel_forecast(pooled, PRICES["MID"], "MID", AS_OF)
    assert panel_forecast(pooled, PRICES["MID"], "NEW", AS_OF) == known
    assert known.scale > 0 and math.isfinite(known.location)


# The file


def test_a_saved_panel_loads_with_its_metadata_and_forecasts_the_same(panel, tmp_path):
    path = tmp_path / "panel.keras"
    sha256 = save_panel(panel, path)
    loaded = load_panel(path, sha256=sha256)
    handed = load_saved_panel(saved_panel(panel))
    for other in (loaded, handed):
        for name in ("ticker_ids", "spans", "feature_names", "config", "as_of", "seed"):
            assert getattr(other, name) == getattr(panel, name), name
        assert other.epochs_run == panel.epochs_run and other.seconds == panel.seconds
        np.testing.assert_array_equal(other.scaling.feature_std, panel.scaling.feature_std)
        _assert_same_weights(other, panel)
        for ticker, prices in {**PRICES, "NEW": WITHHELD}.items():
            expected = panel_forecast(panel, prices, ticker, AS_OF)
            assert panel_forecast(other, prices, ticker, AS_OF) == expected


def test_a_changed_or_foreign_file_is_refused(panel, tmp_path):
    saved = saved_panel(panel)
    with pytest.raises(ModelArtifactError, match="changed or corrupted"):
        load_saved_panel(SavedModel(saved.content + b"x", saved.sha256))
    # A per-ticker model's file: Keras reads it, but it holds no panel.
    plain = tmp_path / "plain.keras"
    save_model(panel.model, plain)
    with zipfile.ZipFile(plain) as archive:
        assert METADATA_ENTRY not in archive.namelist()
    with pytest.raises(ModelArtifactError, match="no readable panel metadata"):
        load_panel(plain)
