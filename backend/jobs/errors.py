"""The job layer's two kinds of trouble: a job queue that cannot be reached, and the failures
of the outside world that a job retries with backoff instead of calling them bugs."""
from __future__ import annotations

import httpx
from label_studio_sdk.core.api_error import ApiError as LabelStudioApiError

from backend.labelstudio.gateway import LabelStudioUnreachable
from backend.labelstudio.queue_writer import QueueWriteError


class JobQueueUnavailable(RuntimeError):
    """The job queue (Redis) cannot be reached, so a job cannot be requested; the HTTP edge
    answers 503. Retrains requested meanwhile are not lost: their pending marker survives."""


#: Failures of the environment (Label Studio unreachable or refusing, a queue write cut short),
#: not of our code: logged in one line and retried with backoff. Anything else is a bug: the job
#: is marked ``failed``. The job layer owns this list; domain code raises its own errors.
RETRYABLE_FAILURES = (LabelStudioUnreachable, LabelStudioApiError, httpx.HTTPError, QueueWriteError)


#: How much of an error's own message a summary keeps.
MAX_SUMMARY = 200


def describe_failure(exc: BaseException) -> str:
    """A one-line summary of a failed job for ``/metrics`` and the log.

    A Label Studio answer is reduced to its status code: the SDK's message carries the response's
    headers and body, which may hold a session cookie or the page of whatever host answered.
    Other messages are cut to one line of at most ``MAX_SUMMARY`` characters.
    """
    if isinstance(exc, LabelStudioApiError):
        return f"Label Studio answered HTTP {exc.status_code}"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"Label Studio answered HTTP {exc.response.status_code}"
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first_line[:MAX_SUMMARY]}"
