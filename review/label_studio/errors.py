"""What can go wrong between the bridge and a Label Studio server, rooted in
:class:`~driftloop.schemas.errors.DriftloopError` (the command line prints them as one line).

Examples
--------
>>> err = LabelStudioUnreachable("Label Studio at http://ls:8080 did not answer for 120 s")
>>> err.retriable, isinstance(err, LabelStudioError)
(True, True)
>>> LabelStudioRequestError(400, "POST /api/projects/", "bad config").status
400
"""

from __future__ import annotations

from ...schemas.errors import DriftloopError

__all__ = ["LabelStudioAuthError", "LabelStudioError", "LabelStudioRequestError",
           "LabelStudioUnreachable"]


class LabelStudioError(DriftloopError):
    """Root of the Label Studio bridge's errors."""


class LabelStudioAuthError(LabelStudioError):
    """The server refused the token (401/403): a wrong or revoked token, or a legacy token
    in an organization that turned legacy tokens off. Retrying will not help."""


class LabelStudioUnreachable(LabelStudioError):
    """The server did not answer (connection refused, timeouts, 5xx) until the deadline."""

    retriable = True


class LabelStudioRequestError(LabelStudioError):
    """The server answered a request with a client error other than 401/403; ``status`` and
    ``detail`` are what it said."""

    def __init__(self, status: int, what: str, detail: str) -> None:
        self.status, self.what, self.detail = status, what, detail
        super().__init__(f"Label Studio answered {what} with {status}: {detail}")
