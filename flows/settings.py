"""Settings of a deployment: one pydantic-settings object, read from the environment and ``.env``.

Where the database and the model files are, which tickers, how alerts are delivered, which task
runner, and one of each pure configuration of ``forecasting.config`` (features, training, drift,
serving), which the flows pass to the computation. Per-run knobs (ticker, source, as-of date,
training mode) are flow parameters, not settings. Everything has a default that works offline
on a laptop.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from flows.webhook_url import mask_url, webhook_url_problem
from forecasting.config import DriftConfig, FeatureConfig, ServingConfig, TrainingConfig
from forecasting.errors import ConfigurationError
from forecasting.tickers import normalize_ticker


def default_data_dir() -> Path:
    """The local data folder: ``$XDG_DATA_HOME/nvda-forecast``, else ``~/.local/share/...``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "nvda-forecast"


class Settings(BaseSettings):
    """Everything configurable about a deployment of nvda-forecast.

    Environment variables use the ``NVDA_FORECAST_`` prefix (nested fields with ``__``, e.g.
    ``NVDA_FORECAST_TRAINING__UNITS=64``); the database URL is also read from ``DATABASE_URL``.
    """

    model_config = SettingsConfigDict(
        env_prefix="NVDA_FORECAST_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = Field(
        "",
        validation_alias=AliasChoices("DATABASE_URL", "NVDA_FORECAST_DATABASE_URL"),
        description="any SQLAlchemy URL; empty means a SQLite file in data_dir",
    )
    artifact_root: str = Field(
        "", description="folder for .keras files; empty means data_dir/models"
    )

    features: FeatureConfig = FeatureConfig()
    training: TrainingConfig = TrainingConfig()

    retrain_every: int = Field(
        20, ge=1, description="trading days after which the champion is retrained, not fine-tuned"
    )
    drift: DriftConfig = DriftConfig()
    serving: ServingConfig = ServingConfig()
    alert_webhook_url: SecretStr = Field(
        SecretStr(""),
        description="POST each new alert as JSON to this URL (Slack-style or your own); a "
        "secret: its token never reaches a repr, a log line or the run's parameters",
    )
    alert_notification_block: str = Field(
        "", description="a Prefect notification block, 'block-type/name', to notify of new alerts"
    )

    promotion_tolerance: float = Field(
        0.02,
        ge=0,
        description="a candidate may be this much worse in skill than the champion, and the "
        "LSTM this much worse than naive, and still serve",
    )

    tickers: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="tickers of a many-ticker run or deployment, comma-separated "
        "(NVDA_FORECAST_TICKERS=NVDA,AMD,AVGO); empty means the single --ticker",
    )
    task_runner: Literal["local", "dask"] = Field(
        "local",
        description="where the tickers of a many-ticker run go: 'local' runs them one after "
        "another in this process, 'dask' on a Dask cluster (the 'dask' extra)",
    )
    dask_address: str = Field(
        "",
        description="an existing Dask scheduler, tcp://host:8786; empty starts a "
        "distributed.LocalCluster sized to this machine",
    )
    ticker_wait_seconds: float = Field(
        3000,
        gt=0,
        description="how long a run waits for its ticker's slot (another run of the ticker) "
        "before failing with one line; under the daily flow's one-hour timeout",
    )
    dask_workers: int = Field(
        0, ge=0, description="worker processes of the LocalCluster; 0 means one per core"
    )

    @field_validator("tickers", mode="before")
    @classmethod
    def _split_tickers(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        tickers = tuple(part.strip() for part in value.split(",") if part.strip())
        if value.strip() and not tickers:  # ' , ' silently meant the single --ticker (NVDA)
            raise PydanticCustomError(
                "no_ticker",
                "it names no ticker; give comma-separated symbols (NVDA,AMD) or leave it empty "
                "for the single --ticker",
            )
        return tickers

    @field_validator("tickers", mode="after")
    @classmethod
    def _check_tickers(cls, tickers: tuple[str, ...]) -> tuple[str, ...]:
        # Checked here so that a bad symbol names the setting; spelled as given (the run
        # normalizes them with --tickers' rules: upper case, duplicates dropped).
        try:
            for ticker in tickers:
                normalize_ticker(ticker)
        except ConfigurationError as error:
            raise PydanticCustomError("ticker", "{reason}", {"reason": str(error)}) from None
        return tickers

    @field_validator("alert_webhook_url", mode="after")
    @classmethod
    def _check_webhook_url(cls, url: SecretStr) -> SecretStr:
        # A secret read from a file (Docker, Kubernetes) ends with a newline: the blanks around
        # the URL go; anything else that httpx would refuse at the first alert fails here.
        text = url.get_secret_value().strip()
        if text and (problem := webhook_url_problem(text)):
            raise PydanticCustomError("webhook_url", "{problem}", {"problem": problem})
        return SecretStr(text)

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        self.data_dir = self.data_dir.expanduser()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'nvda-forecast.db'}"
        if not self.artifact_root:
            self.artifact_root = str(self.data_dir / "models")
        return self


SECRET_URLS = ("alert_webhook_url",)
"""Settings whose value is a URL with a secret in it: an error shows them masked."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; an invalid one fails in one line naming it."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(describe_invalid(error)) from None


def describe_invalid(error: ValidationError) -> str:
    """The first invalid setting as its environment variable, its value and what is wrong."""
    problems = error.errors()
    first = problems[0]
    location = [str(part) for part in first["loc"]]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    if not location:  # a check across settings
        return (
            f"the settings are invalid: {first['msg']}{more}; fix them in the environment or .env"
        )
    if location[0].isupper():  # an alias, e.g. DATABASE_URL: already its name
        name = "__".join(location)
    else:
        name = Settings.model_config["env_prefix"] + "__".join(location).upper()
    shown = first["input"]
    if isinstance(shown, str) and location[0] in SECRET_URLS:
        shown = mask_url(shown.strip())  # the value names the setting, never its secret
    value = f"={shown!r}" if not isinstance(shown, dict) else ""
    return (
        f"setting {name}{value} is invalid: {first['msg']}{more}; fix it in the environment or .env"
    )
