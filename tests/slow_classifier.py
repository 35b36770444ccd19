"""A deliberately slow classifier, plugged in by dotted path (``LABELQUEUE_CLASSIFIER``) so a
test can kill the backend while a retrain is certainly in progress."""
from __future__ import annotations

import time

from sklearn.pipeline import Pipeline

from backend.model.classifier import default_estimator

FIT_SECONDS = 4.0


class SlowPipeline(Pipeline):
    def fit(self, X, y=None, **params):
        time.sleep(FIT_SECONDS)
        return super().fit(X, y, **params)


def make() -> SlowPipeline:
    return SlowPipeline(default_estimator().steps)
