"""Building a Label Studio project from outside it: what ``labelqueue quickstart`` does once.

The backend itself never creates projects; this is the admin's side of the gateway (create a
project, import tasks, connect the ML backend, press "Start training"), kept here so that no
module outside ``backend/labelstudio/`` speaks the SDK. Errors are the gateway's own.
"""
from __future__ import annotations

import json
from typing import Any

from label_studio_sdk import LabelStudio

from backend.labelstudio.errors import translated
from backend.labelstudio.gateway import TIMEOUT, Connection, LabelStudioGateway

__all__ = ["LabelStudioAdmin"]


class LabelStudioAdmin:
    """A Label Studio reached with an admin's token."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self._client = LabelStudio(base_url=connection.url, api_key=connection.api_key, timeout=TIMEOUT)

    def create_project(self, title: str, label_config: str, description: str) -> LabelStudioGateway:
        """A new project; its gateway."""
        with translated(f"creating project {title!r}"):
            project = self._client.projects.create(title=title, label_config=label_config, description=description)
        return LabelStudioGateway(self.connection, int(project.id))

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> None:
        """Import ``tasks`` (each with ``data`` and optionally ``annotations``) into the project."""
        with translated(f"importing {len(tasks)} tasks into project {project_id}"):
            self._client.projects.import_tasks(id=project_id, request=tasks)

    def connect_backend(self, project_id: int, url: str, title: str, extra_params: dict[str, Any]) -> int:
        """Connect an ML backend at ``url`` to the project; the connection's id.

        ``extra_params`` are stored as JSON text, as the connection form writes them: the form
        shows a stored object as "[object Object]", and saving it unchanged would send that."""
        with translated(f"connecting the ML backend {url} to project {project_id}"):
            return int(self._client.ml.create(url=url, project=project_id, title=title, is_interactive=False,
                                              extra_params=json.dumps(extra_params, indent=1)).id)

    def show_predictions(self, project_id: int, model_version: str) -> None:
        """Show annotators ``model_version``'s predictions (asked fresh whenever a task opens)."""
        with translated(f"showing predictions in project {project_id}"):
            self._client.projects.update(id=project_id, show_collab_predictions=True, model_version=model_version)

    def train(self, ml_id: int) -> None:
        """Press "Start training" on an ML backend connection."""
        with translated(f"starting training on ML backend {ml_id}"):
            self._client.ml.train(id=ml_id)
