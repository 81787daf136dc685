"""Settings that cannot work fail at start-up in one line naming the setting (issue 26, 5).

A malformed webhook URL used to pass start-up and fail every run that opened an alert, after its
forecast was stored; a tickers setting of only commas used to run NVDA without a word.
"""

from __future__ import annotations

import pytest

from flows.presentation.cli import main
from flows.settings import get_settings
from forecasting.errors import ConfigurationError

WEBHOOK = "NVDA_FORECAST_ALERT_WEBHOOK_URL"


def _settings_error(monkeypatch, variable: str, value: str) -> str:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    with pytest.raises(ConfigurationError) as raised:
        get_settings()
    return str(raised.value)


@pytest.mark.parametrize(
    ("url", "shown", "problem"),
    [
        # A port typo: httpx took it, then the masking of its error raised "Port out of range".
        (
            "https://hooks.example.com:99999/services/T000/SECRETTOKEN",
            "'https://hooks.example.com:99999/***'",
            "port 99999 is out of range (1-65535)",
        ),
        (
            "https://hooks.example.com:8o43/services/T000/SECRETTOKEN",
            "'https://hooks.example.com:8o43/***'",
            "port '8o43' is not a number",
        ),
        # A stray newline inside (a pasted secret): httpx raised InvalidURL at delivery.
        (
            "https://hooks.example.com/services/T000/\nSECRETTOKEN",
            "'https://hooks.example.com/***'",
            "it contains a line break, a tab or another control character",
        ),
        (
            "https://hooks.example.com/services/T000/SECRET TOKEN",
            "'https://hooks.example.com/***'",
            "it contains a space",
        ),
        (
            "hooks.example.com/services/SECRETTOKEN",
            "'***'",
            "it must start with https:// or http://",
        ),
        (
            "ftp://hooks.example.com/SECRETTOKEN",
            "'ftp://hooks.example.com/***'",
            "it must start with https:// or http://",
        ),
        ("https:///services/SECRETTOKEN", "'***'", "it names no host"),
    ],
)
def test_a_malformed_webhook_url_is_one_line_naming_the_setting_without_the_secret(
    monkeypatch, url, shown, problem
):
    message = _settings_error(monkeypatch, WEBHOOK, url)
    assert message == (
        f"setting {WEBHOOK}={shown} is invalid: {problem}; fix it in the environment or .env"
    )
    assert "SECRET" not in message and "\n" not in message


def test_the_command_line_refuses_a_malformed_webhook_url_before_it_runs(monkeypatch, capsys):
    monkeypatch.setenv(WEBHOOK, "http://127.0.0.1:99999/T000/SECRETTOKEN")
    get_settings.cache_clear()
    assert main(["db", "current"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: setting {WEBHOOK}='http://127.0.0.1:99999/***' is invalid: port 99999 is out of "
        "range (1-65535); fix it in the environment or .env\n"
    )


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ("", ""),
        ("https://hooks.slack.com/services/T000/B000/XXXX", None),
        ("http://127.0.0.1:8080/hook?sig=abc", None),
        ("http://[::1]:9000/hook", None),
        # A secret read from a file ends with a newline: the blanks around a URL go.
        ("  https://hooks.example.com/x/y\n", "https://hooks.example.com/x/y"),
    ],
)
def test_a_well_formed_webhook_url_is_kept(monkeypatch, value, kept):
    monkeypatch.setenv(WEBHOOK, value)
    get_settings.cache_clear()
    assert get_settings().alert_webhook_url.get_secret_value() == (value if kept is None else kept)


@pytest.mark.parametrize("value", [" , ", ",", ",,, ,"])
def test_tickers_of_only_commas_are_refused_instead_of_running_nvda(monkeypatch, value):
    message = _settings_error(monkeypatch, "NVDA_FORECAST_TICKERS", value)
    assert message == (
        f"setting NVDA_FORECAST_TICKERS={value!r} is invalid: it names no ticker; give "
        "comma-separated symbols (NVDA,AMD) or leave it empty for the single --ticker; fix it in "
        "the environment or .env"
    )


def test_a_bad_symbol_in_the_tickers_setting_names_the_setting(monkeypatch):
    message = _settings_error(monkeypatch, "NVDA_FORECAST_TICKERS", "nvda, AM D")
    assert message.startswith(
        "setting NVDA_FORECAST_TICKERS='nvda, AM D' is invalid: 'AM D' is not a ticker symbol"
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("value", "tickers"),
    [("", ()), ("  ", ()), ("nvda, amd,,AVGO ", ("nvda", "amd", "AVGO"))],
)
def test_the_tickers_setting_is_split_on_commas(monkeypatch, value, tickers):
    monkeypatch.setenv("NVDA_FORECAST_TICKERS", value)
    get_settings.cache_clear()
    assert get_settings().tickers == tickers
