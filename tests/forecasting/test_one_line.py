"""Errors as people read them: one line."""

from __future__ import annotations

from forecasting.errors import DataSourceError, one_line


def test_an_unexpected_error_is_its_type_and_first_line() -> None:
    error = RuntimeError("connection reset\n  at frame 3\n")
    assert one_line(error) == "RuntimeError: connection reset"
    assert one_line(KeyError()) == "KeyError"


def test_a_long_message_is_cut_to_the_limit() -> None:
    text = one_line(ValueError("x" * 500), limit=40)
    assert len(text) == 40 and text.endswith("...") and text.startswith("ValueError: xxx")


def test_ours_keep_their_type_here_too() -> None:
    # The CLI prints ours as they are; one_line is for the others.
    assert one_line(DataSourceError("no rows")) == "DataSourceError: no rows"
