"""A deliberately slow classifier, plugged in by dotted path (``LABELQUEUE_CLASSIFIER``) so a
test can kill the backend while a retrain is certainly in progress.

Each fit first touches the file named by ``SLOW_FIT_STARTED`` (when set), so the test waits
for that file instead of guessing how long the settle pause and the label read take.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from sklearn.pipeline import Pipeline

from backend.model.classifier import default_estimator

FIT_SECONDS = 4.0
#: Environment variable naming the file a fit touches when it starts.
STARTED_MARKER = "SLOW_FIT_STARTED"


class SlowPipeline(Pipeline):
    def fit(self, X, y=None, **params):
        if os.environ.get(STARTED_MARKER):
            Path(os.environ[STARTED_MARKER]).write_text(str(len(X)))
        time.sleep(FIT_SECONDS)
        return super().fit(X, y, **params)


def make() -> SlowPipeline:
    return SlowPipeline(default_estimator().steps)
