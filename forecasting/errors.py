"""Errors a user can act on.

Every exception here carries a one-line message that says what is wrong and what to do;
the CLI prints ``str(error)`` and exits non-zero, without a traceback.
"""


class NvdaForecastError(Exception):
    """Base class: a problem with the input or the environment, not a bug."""


class ConfigurationError(NvdaForecastError):
    """A setting or argument is invalid."""


class DataSourceError(NvdaForecastError):
    """Prices could not be obtained from a source."""


class TickerNotFoundError(DataSourceError):
    """The source does not know the ticker (delisted, misspelt)."""


class RateLimitedError(DataSourceError):
    """The source refused the request because too many were made; retrying later helps."""


class SourceUnavailableError(DataSourceError):
    """The source could not be reached (network down, timeout, server error); retrying helps."""


class EmptyDataError(DataSourceError):
    """The source answered, but with no rows for the requested range."""


class PriceFileError(DataSourceError):
    """A price file cannot be read: missing, not CSV, or without the columns we need."""


class PriceValidationError(NvdaForecastError):
    """Prices were read but fail a check (order, duplicates, non-positive or missing values)."""


class RestatementError(PriceValidationError):
    """The source restates stored history in a way no split or dividend adjustment does."""


class ModelArtifactError(NvdaForecastError):
    """A model file is missing, corrupt, or does not match its recorded sha256."""


class InsufficientDataError(NvdaForecastError):
    """Too little history to build the train/validation/test windows."""


def one_line(error: BaseException, *, limit: int = 300) -> str:
    """An unexpected error as one line for a person: its type and the first line of its message,
    cut to ``limit`` characters. (Ours are printed as they are: they are already sentences.)"""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
