"""The model confidence set wrapper over ``arch.bootstrap.MCS``."""

import sys

import numpy as np
import pandas as pd
import pytest

from forecasting.scoring import model_confidence_set

pytest.importorskip("arch")


def _losses(seed: int = 0) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    common = generator.normal(0.0, 1.0, 500)  # the same day is hard for everyone
    good = 1.0 + common + generator.normal(0.0, 0.3, 500)
    # "as_good" has good's losses in reverse order: the same mean loss, on other days.
    return pd.DataFrame(
        {"good": good, "as_good": good[::-1], "bad": 1.5 + common + generator.normal(0, 0.3, 500)}
    )


def test_the_set_drops_a_clearly_worse_forecaster_and_keeps_the_equal_ones():
    result = model_confidence_set(_losses(), size=0.10, reps=500)
    assert result.included == ("good", "as_good")
    assert result.excluded == ("bad",)
    assert result.p_values["bad"] < 0.10 <= min(result.p_values["good"], result.p_values["as_good"])
    assert max(result.p_values.values()) == 1.0  # the last one standing


def test_the_set_is_reproducible_and_names_an_arrays_columns_by_position():
    first = model_confidence_set(_losses().to_numpy(), reps=300, seed=5)
    again = model_confidence_set(_losses().to_numpy(), reps=300, seed=5)
    assert first == again
    assert first.included == ("0", "1") and first.excluded == ("2",)


def test_the_set_refuses_bad_losses():
    with pytest.raises(ValueError, match="finite"):
        model_confidence_set(pd.DataFrame({"a": [1.0, np.nan], "b": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="k >= 2"):
        model_confidence_set(pd.DataFrame({"a": [1.0, 2.0]}))


def test_without_arch_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "arch.bootstrap", None)  # import arch.bootstrap fails
    with pytest.raises(ImportError, match="nvda-forecast\\[bench\\]"):
        model_confidence_set(_losses())
