"""Error types. Every message names the place (shard, sample key, recipe key) and what was expected.

The CLI turns any :class:`MMDataError` into a one-line red message and exit code 2, no traceback.
"""

from __future__ import annotations


class MMDataError(Exception):
    """Base class for errors a user can fix (bad input, bad recipe, bad options).

    Every str argument is redacted where the error is made (:func:`mmdata.urls.redact_text`): a user and
    password written into a URL, and a signature or token in its query, never reach a message, a log or a
    traceback, whichever code built it.

    Example:
        >>> str(MMDataError("http://al:pw@host/ds/train-000000.tar: truncated"))
        'http://***@host/ds/train-000000.tar: truncated'
    """

    def __init__(self, *args: object) -> None:
        from mmdata.urls import redact_text  # here, not at the top: mmdata.urls imports this module

        super().__init__(*(redact_text(a) if isinstance(a, str) else a for a in args))


class ShardError(MMDataError):
    """A shard or one of its samples is unreadable, corrupt, unsafe or inconsistent."""


class SourceError(MMDataError):
    """The raw data given to ``mmdata shard`` is malformed (manifest columns, paths, labels)."""


class BusyError(SourceError):
    """The output folder is being written by another job now (it holds the folder's lock): the same command may
    succeed later, unlike bad input. The CLI exits 75 (``EX_TEMPFAIL``) for it, not 2."""


class RecipeError(MMDataError):
    """A recipe names an unknown op or key, or a value out of range."""



def install_hint(extra: str) -> str:
    """How to install mmdata's optional ``extra`` (``ray``, ``s3``, ``hf``, ...), the one wording of every error
    and help text that names one. mmdata is not on PyPI (README: Install): the PyPI form of an extra there
    installs another project's package, so the hint gives the two forms that install this one.

    Example:
        >>> print(install_hint("ray"))
        pip install -e '.[ray]' in a clone of mmdata, or pip install "<wheel>[ray]" (README: Install; `pip install mmdata` is another project)
    """
    return (f"pip install -e '.[{extra}]' in a clone of mmdata, or pip install \"<wheel>[{extra}]\" "
            "(README: Install; `pip install mmdata` is another project)")


class CacheWarning(UserWarning):
    """mmdata's cache cannot be used (no home directory, a full or read-only cache): the job goes on, but
    a rerun cannot tell that it is up to date. The CLI puts these in its ``--json`` result's warnings too."""
