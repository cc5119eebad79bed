"""The learner's topics: the ``model-versions`` log and the ``site-adapters`` offers.
"""

from __future__ import annotations

from .sites import publish_offer, read_offers
from .versions import publish_versions, read_version_log

__all__ = [
    "publish_offer",
    "publish_versions",
    "read_offers",
    "read_version_log",
]
