"""The state of each (job, project) pair in Redis, and how RQ jobs are judged lost.

One hash per pair, ``labelqueue:job:<job>:<project>``, changed only by the Lua scripts below, so
every transition is atomic however many web processes and workers race: ``REQUEST`` (a webhook
or an after-step asks for a run), ``START`` (a worker begins, holding the lease), ``FINISH``,
``BACKOFF`` (Label Studio failed; retry later) and ``RECOVER`` (the sweep found the run's lease
lapsed). States: idle -> queued -> running -> idle | failed | backoff | queued (follow-up).
``backend/jobs/rq_jobs.py`` calls them; ``decode_state`` turns a hash into the ``/metrics`` entry.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from redis import Redis
from rq.job import Job, JobStatus
from rq.utils import str_to_date

from backend.jobs.scheduler import JobState

#: A ``queued`` state whose RQ job has vanished is re-enqueued only after this long, so the
#: sweep never races a request that is between its state change and its ``enqueue``.
LOST_QUEUED_AFTER = 30.0
#: A started RQ job with no heartbeat for this long lost its worker (``labelqueue worker``
#: heartbeats every 5 s; RQ's default is 30 s, which this also tolerates).
STALE_AFTER = 45.0


# Lua scripts: every state change of a (job, project) pair is one atomic script.
# KEYS[1] state hash; REQUEST: KEYS[2] index set. ARGV[1] is always the time (epoch seconds).
REQUEST = """
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[1], 'requests', 1)
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' or state == 'backoff' then
  if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'force', '1') end
  redis.call('HINCRBY', KEYS[1], 'coalesced', 1)
  return 'coalesced'
elseif state == 'running' then
  redis.call('HSET', KEYS[1], 'pending', '1')
  if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'pending_force', '1') end
  redis.call('HINCRBY', KEYS[1], 'coalesced', 1)
  return 'coalesced'
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'force', ARGV[3], 'queued_at', ARGV[1], 'job_id', '')
return 'scheduled'
"""
# START: ARGV[2] worker, ARGV[3] RQ job id. Returns the force flag, or false for a duplicate job
# (its work was done by an earlier run). A stale 'running' means the previous run died: the
# caller holds the lease, so its holder is gone.
START = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'backoff' and state ~= 'running' then return false end
if state == 'running' then redis.call('HINCRBY', KEYS[1], 'recovered', 1) end
local force = redis.call('HGET', KEYS[1], 'force') or '0'
if state == 'running' then force = redis.call('HGET', KEYS[1], 'run_force') or force end
local queued = tonumber(redis.call('HGET', KEYS[1], 'queued_at') or ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'running', 'force', '0', 'run_force', force, 'started_at', ARGV[1],
           'worker', ARGV[2], 'job_id', ARGV[3], 'last_wait_seconds', tostring(ARGV[1] - queued))
return force
"""
# FINISH: ARGV[2] '1' ok / '0' failed, ARGV[3] outcome JSON or error text, ARGV[4] run seconds.
FINISH = """
local pending = redis.call('HGET', KEYS[1], 'pending') == '1'
local pforce = redis.call('HGET', KEYS[1], 'pending_force') or '0'
redis.call('HSET', KEYS[1], 'finished_at', ARGV[1], 'last_run_seconds', ARGV[4], 'pending', '0',
           'pending_force', '0', 'attempts', '0', 'retry_in', '')
if ARGV[2] == '1' then
  redis.call('HINCRBY', KEYS[1], 'runs', 1)
  redis.call('HSET', KEYS[1], 'last_outcome', ARGV[3], 'last_error', '')
else
  redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('HSET', KEYS[1], 'last_error', ARGV[3])
end
if pending then
  redis.call('HSET', KEYS[1], 'state', 'queued', 'force', pforce, 'queued_at', ARGV[1], 'job_id', '')
  return 'again'
end
redis.call('HSET', KEYS[1], 'state', ARGV[2] == '1' and 'idle' or 'failed')
return 'done'
"""
# BACKOFF: ARGV[2] error text, ARGV[3] the failed run's force flag. Returns the attempt number;
# requests that arrived meanwhile fold into the retry.
BACKOFF = """
local force = ARGV[3]
if redis.call('HGET', KEYS[1], 'pending_force') == '1' then force = '1' end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'state', 'backoff', 'force', force, 'pending', '0', 'pending_force', '0',
           'last_error', ARGV[2], 'finished_at', ARGV[1], 'queued_at', ARGV[1], 'job_id', '')
return attempts
"""
# RECOVER (the sweep): KEYS[2] the run's lease. A 'running' state without a lease died with its
# worker; it goes back to 'queued' with its force flag. Returns 1 when the caller must enqueue.
RECOVER = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local force = redis.call('HGET', KEYS[1], 'run_force') or '0'
if redis.call('HGET', KEYS[1], 'pending_force') == '1' then force = '1' end
redis.call('HINCRBY', KEYS[1], 'recovered', 1)
redis.call('HSET', KEYS[1], 'state', 'queued', 'force', force, 'pending', '0', 'pending_force', '0',
           'queued_at', ARGV[1], 'job_id', '', 'last_error', 'the worker running it died; run again')
return 1
"""

def job_lost(redis: Redis, job_id: str) -> bool:
    """Whether an RQ job will never finish: failed, stopped, gone, or started by a worker that
    stopped sending heartbeats. Reads two fields of the job's hash, not the job (its payload
    may be large)."""
    return is_lost(*redis.hmget(Job.key_for(job_id), JOB_FIELDS)) if job_id else True


#: The fields of an RQ job's hash that :func:`is_lost` judges.
JOB_FIELDS = ("status", "last_heartbeat")


def is_lost(status: bytes | None, beat: bytes | None) -> bool:
    """:func:`job_lost` on fields already read (``JOB_FIELDS``, as stored in the job's hash)."""
    status_text = status.decode() if status else None
    if status_text in (None, JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value):
        return True
    return status_text == JobStatus.STARTED.value and stale_heartbeat(beat)


def stale_heartbeat(beat: bytes | None) -> bool:
    """A started job's last RQ heartbeat (as stored in its hash) is older than ``STALE_AFTER``."""
    if not beat:
        return False
    when = str_to_date(beat)
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - when).total_seconds() > STALE_AFTER


_INTS = ("requests", "runs", "coalesced", "failures", "attempts", "recovered")
_FLOATS = ("queued_at", "started_at", "finished_at", "last_wait_seconds", "last_run_seconds", "retry_in")


def decode_state(fields: dict[bytes, bytes]) -> dict[str, Any]:
    state: dict[str, Any] = {k.decode(): v.decode() for k, v in fields.items()}
    for name in _INTS:
        state[name] = int(state.get(name) or 0)
    for name in _FLOATS:
        state[name] = float(state[name]) if state.get(name) else None
    for name in ("pending", "pending_force", "force", "run_force"):
        state[name] = state.get(name) == "1"
    state["last_outcome"] = json.loads(state["last_outcome"]) if state.get("last_outcome") else None
    state["last_error"] = state.get("last_error") or None
    state["state"] = JobState(state.get("state") or JobState.IDLE)
    return state
