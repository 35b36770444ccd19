"""What can go wrong talking to Label Studio, in two kinds the rest of the backend can act on.

* :class:`LabelStudioUnavailable`: Label Studio cannot be reached, timed out or failed on its
  side (HTTP 5xx, 408, 429, a page that is not JSON). Nothing is wrong with our request; the job
  layer retries it with backoff and shows the project as ``degraded``. Its subclasses say which
  step was cut short (:class:`QueueWriteError`) or that we do not know where Label Studio is
  (:class:`LabelStudioUnreachable`).
* :class:`LabelStudioRefused`: Label Studio answered 4xx: a wrong token, missing permission, a
  deleted project or task, a request it cannot take. Retrying would not help, so a job that
  meets one is a failure, with a message saying what to check.

:func:`translated` is the one place the SDK's and httpx's exceptions are turned into these, so
no module outside ``backend/labelstudio/`` needs to know either library. Messages carry the step
and the status code, never the response's headers or body (they may hold a session cookie or
whatever page a proxy returned).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.core.parse_error import ParsingError

__all__ = ["LabelStudioRefused", "LabelStudioUnavailable", "LabelStudioUnreachable", "QueueWriteError",
           "translated"]

#: Statuses that say "try again later" rather than "this request is wrong".
RETRYABLE_STATUSES = frozenset({408, 425, 429})

_HINTS = {
    400: "Label Studio could not take the request; see its log for the reason",
    401: "check LABEL_STUDIO_API_KEY (a legacy token needs legacy tokens enabled in Label Studio)",
    403: "the token's user needs permission to read and edit this project's tasks and Data Manager tabs",
    404: "check that the project (or task) still exists and that LABEL_STUDIO_URL points at the right server",
}


class LabelStudioUnavailable(RuntimeError):
    """Label Studio cannot serve us now (down, timing out, failing on its side): retry later."""


class LabelStudioUnreachable(LabelStudioUnavailable):
    """We do not know how to reach Label Studio for this project (no URL and token yet)."""


class QueueWriteError(LabelStudioUnavailable):
    """A queue write was cut short by an outage; the tab serves the union of both batches until a
    rerun finishes it (tagging comes before clearing, so no queued task is left untagged)."""


class LabelStudioRefused(Exception):
    """Label Studio refused a request (HTTP 4xx); ``status`` is its code. Retrying will not help."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


@contextmanager
def translated(step: str, *, outage: type[LabelStudioUnavailable] = LabelStudioUnavailable) -> Iterator[None]:
    """Run one Label Studio call named ``step``, raising only this module's errors.

    ``outage`` is the :class:`LabelStudioUnavailable` subclass to raise when the call is cut short,
    so a caller can say which step an outage interrupted (:class:`QueueWriteError`).
    """
    try:
        yield
    except (ApiError, ParsingError) as error:
        retry = isinstance(error, ParsingError)  # a 2xx that is not what Label Studio sends: a proxy page
        raise _by_status(step, error.status_code, outage, retry) from error
    except httpx.HTTPStatusError as error:  # raised by plain httpx calls, not by the SDK
        raise _by_status(step, error.response.status_code, outage, False) from error
    except httpx.HTTPError as error:
        raise outage(f"{step} failed: could not reach Label Studio ({type(error).__name__}: {error}); "
                     "check LABEL_STUDIO_URL and that the server is running") from error


def _by_status(step: str, status: int | None, outage: type[LabelStudioUnavailable],
               retry: bool) -> Exception:
    if retry or status is None or status >= 500 or status in RETRYABLE_STATUSES:
        return outage(f"{step} failed: Label Studio answered HTTP {status}; see Label Studio's log")
    return LabelStudioRefused(f"{step} failed: Label Studio answered HTTP {status}; "
                              f"{_HINTS.get(status, _HINTS[400])}", status=status)
