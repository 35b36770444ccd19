"""The job layer's two kinds of trouble: a job queue that cannot be reached, and the failures
of the outside world that a job retries with backoff instead of calling them bugs."""
from __future__ import annotations

from backend.labelstudio.errors import LabelStudioRefused, LabelStudioUnavailable


class JobQueueUnavailable(RuntimeError):
    """The job queue (Redis) cannot be reached, so a job cannot be requested; the HTTP edge
    answers 503. Retrains requested meanwhile are not lost: their pending marker survives."""


#: Failures of the environment (Label Studio down, timing out or failing on its side, a queue
#: write cut short, no address for it yet), not of our code: logged in one line and retried with
#: backoff. Anything else is a failure: the job is marked ``failed``, including Label Studio
#: refusing a request (``LabelStudioRefused``: a wrong token or a deleted project), which a retry
#: would not fix. The job layer owns this list; the gateway raises its own errors.
RETRYABLE_FAILURES: tuple[type[BaseException], ...] = (LabelStudioUnavailable,)


#: How much of an error's own message a summary keeps.
MAX_SUMMARY = 200


def describe_failure(exc: BaseException) -> str:
    """A one-line summary of a failed job for ``/metrics`` and the log.

    The gateway's errors already say which step failed and the status code, never a response's
    headers or body (they may hold a session cookie or the page of whatever host answered).
    Every message is cut to one line of at most ``MAX_SUMMARY`` characters.
    """
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = "Label Studio refused" if isinstance(exc, LabelStudioRefused) else type(exc).__name__
    return f"{name}: {first_line[:MAX_SUMMARY]}"
