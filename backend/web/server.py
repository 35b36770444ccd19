"""gunicorn embedded as a library, so ``labelqueue serve`` needs no separate config file.

``preload_app`` stays off: each worker builds its own app after the fork, so no training
thread or open file lock is ever shared across processes.
"""
from __future__ import annotations

from gunicorn.app.base import BaseApplication

from backend.settings import Settings


class GunicornServer(BaseApplication):
    def __init__(self, settings: Settings, *, bind: str, workers: int, threads: int, log_level: str):
        self.settings = settings
        self.options = {
            "bind": bind, "workers": workers, "threads": threads, "worker_class": "gthread",
            "timeout": 120, "graceful_timeout": 10, "loglevel": log_level.lower(),
            "accesslog": "-", "preload_app": False,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from backend.web.app import create_app

        return create_app(self.settings)
