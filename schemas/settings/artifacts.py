"""Where adapters are stored: shared by the learner that writes them and every reader.

Examples
--------
>>> ArtifactSettings(store_url="s3://bucket/adapters").allowed_schemes[:2]
('file', 's3')
"""

from __future__ import annotations

from pydantic import Field

from .section import Section, data_home

__all__ = ["ArtifactSettings"]


class ArtifactSettings(Section):
    """Where adapters are stored: a local folder or any fsspec URL (``s3://bucket/prefix``)."""

    store_url: str = Field(default_factory=lambda: str(data_home() / "artifacts"))
    allowed_schemes: tuple[str, ...] = ("file", "s3", "gs", "az", "memory")
    max_artifact_bytes: int = Field(512 * 1024 * 1024, gt=0)
