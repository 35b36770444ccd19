"""The labelling configs labelqueue supports, each with a sample task, and the quickstart demo data.

Installed as ``backend.label_config`` (see pyproject.toml), so the files travel with the package.
"""
