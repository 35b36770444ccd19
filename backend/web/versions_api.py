"""``GET /versions``: the model versions kept on disk, newest first, as Label Studio 1.23 asks.

Label Studio's ``MLApi.get_versions`` (``label_studio/ml/api_connector.py``) sends a bare GET:
the ``project`` it builds is used for its own log only, neither a query nor a body is sent.
``/api/ml/<id>/versions`` then passes our ``versions`` list through to its model settings (a
404 makes it show "Upgrade your ML backend version to latest"). So one backend that serves
several projects cannot tell which project asks:

* ``?project=<id>`` (or ``<id>.<timestamp>``) answers for that project, for admins and scripts;
* without it, the versions of every project this backend keeps, newest first; with a single
  project (the common connection) that is exactly its versions.
"""
from __future__ import annotations

from flask import Blueprint, request
from pydantic import TypeAdapter

from backend.store import KeptVersion
from backend.web.errors import UnknownProjectError
from backend.web.ids import project_id_of
from backend.web.ml_api import runtime
from backend.web.openapi import documented, query_parameter
from backend.web.request_bodies import ProjectKeyInput
from backend.web.response_bodies import Versions, reply

versions_routes = Blueprint("labelqueue_versions", __name__)


PROJECT_QUERY = query_parameter("project", TypeAdapter(ProjectKeyInput).json_schema(),
                                "one project's versions; without it, those of every project kept here")


@versions_routes.get("/versions")
@documented({200: Versions}, query=(PROJECT_QUERY,), errors=(404,))
def versions():
    """Model versions kept on disk, newest first (``MLApi.get_versions``, a bare GET)."""
    rt = runtime()
    raw = request.args.get("project")
    projects = sorted(rt.known_projects())
    if raw is not None:
        project_id = project_id_of(raw)
        if project_id not in projects:
            raise UnknownProjectError(f"project {project_id} is not connected to this backend")
        projects = [project_id]
    kept: list[KeptVersion] = [v for pid in projects for v in rt.store.kept_versions(pid)]
    newest_first = sorted(kept, key=lambda v: v.saved_at, reverse=True)
    return reply(Versions, {"versions": list(dict.fromkeys(v.version for v in newest_first))})
