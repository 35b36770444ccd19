"""Reading Label Studio's webhook calls: which project, and what to do about it.

The payload is treated as a hint only: we take the action and the project id, nothing else.
Training re-reads annotations from Label Studio, so a forged or stale payload cannot inject
labels; at worst it requests a retrain, and requests are coalesced by the scheduler.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backend.web.request_bodies import WebhookRequest

#: Actions after which the labelled set may have changed.
ANNOTATION_ACTIONS = frozenset({
    "ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED",
})
#: Label Studio's "Start training" button (Model settings); retrains even with few new labels.
FORCE_ACTIONS = frozenset({"START_TRAINING"})
#: Actions after which the pool cache must add or drop tasks.
POOL_ACTIONS = frozenset({"TASKS_CREATED", "TASKS_DELETED"})


@dataclass(frozen=True)
class WebhookEvent:
    action: str
    project_id: int

    @property
    def wants_retrain(self) -> bool:
        return self.action in ANNOTATION_ACTIONS or self.action in FORCE_ACTIONS

    @property
    def changes_pool(self) -> bool:
        return self.action in POOL_ACTIONS

    @property
    def forced(self) -> bool:
        return self.action in FORCE_ACTIONS


def parse_event(body: dict[str, Any]) -> WebhookEvent:
    request = WebhookRequest.parse(body)
    return WebhookEvent(action=request.action, project_id=request.project_id)
