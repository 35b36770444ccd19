"""Pool scoring as the loop asks for it: class probabilities for many texts with one model.

The loop depends on this small protocol only; where the work runs (this thread, or chunks on
RQ workers, ``backend/jobs/pool_scoring.py``) is the job backend's choice.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from backend.model.classifier import TrainedModel


class PoolScorer(Protocol):
    """Class probabilities for a project's unlabelled pool, shape ``(len(texts), len(labels))``."""

    def score(self, project_id: int, model: TrainedModel, texts: Sequence[str]) -> np.ndarray: ...


class LocalScorer:
    """Scores in the calling thread (a background job of this process, never a request)."""

    def score(self, project_id: int, model: TrainedModel, texts: Sequence[str]) -> np.ndarray:
        return model.predict_proba(texts)
