"""Retry policy of the flow's tasks: only I/O is retried, and only for errors waiting can cure.

A rate limit, a network failure or a busy database is retried with back-off; an unknown ticker, a
corrupt file or a full disk is not.
"""

from __future__ import annotations

import errno

from prefect import task
from prefect.cache_policies import NO_CACHE

from db.errors import DatabaseUnavailableError
from forecasting.errors import RateLimitedError, SourceUnavailableError

TRANSIENT_ERRORS = (RateLimitedError, SourceUnavailableError, DatabaseUnavailableError, OSError)
# OS errors that waiting does not cure: a full disk or quota, a read-only file system, a
# missing permission, a path that cannot be a file (a folder or a file in its way, a symlink
# loop, a name too long). Retrying them only delays the one-line error by a minute.
PERMANENT_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.ENOENT,
        errno.EISDIR,
        errno.ENOTDIR,
        errno.ELOOP,
        errno.ENAMETOOLONG,
    }
)


def is_transient(error: BaseException) -> bool:
    """Whether waiting and trying again may cure ``error``."""
    if isinstance(error, OSError) and error.errno in PERMANENT_ERRNOS:
        return False
    return isinstance(error, TRANSIENT_ERRORS)


def _transient(task, task_run, state) -> bool:
    """Retry only when the failure is one that waiting can cure."""
    try:
        state.result()
    except Exception as error:
        return is_transient(error)
    return False


# Back-off of 2 s, 10 s, then 30 s; Yahoo's rate limit usually clears within a minute.
IO_OPTIONS = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_jitter_factor": 0.2,
    "retry_condition_fn": _transient,
    "cache_policy": NO_CACHE,
}
io_task = task(**IO_OPTIONS)
