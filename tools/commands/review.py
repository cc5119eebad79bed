"""``driftloop review``: people answer the worker's label requests.

``serve`` runs the built-in review page; ``label-studio`` bridges the requests to a Label
Studio server. Both publish the answers as ``Feedback`` (source ``reviewer``).
"""

from __future__ import annotations

import click

__all__ = ["review"]


@click.group()
def review() -> None:
    """Send label requests to people; their answers come back as feedback."""


# -- driftloop review serve (the built-in page) ---------------------------------------------


# -- driftloop review label-studio (the bridge) ---------------------------------------------
