"""The bridge: label requests go to Label Studio as tasks, annotations come back as feedback.

Two named steps, run in turn (:meth:`LabelStudioBridge.step`):

1. :meth:`~LabelStudioBridge.import_requests`: the label requests of the bridged tasks,
   read in the bridge's consumer group, become Label Studio tasks (one project per task);
   the offsets are committed after the import. A request already in its project (the
   task data name it) is never imported again, so a crash between import and commit costs
   nothing.
2. :meth:`~LabelStudioBridge.collect_answers`: the tasks whose annotations changed since
   the last look are read back; their :mod:`verdict <.verdict>` becomes a ``Feedback``
   through :func:`~driftloop.review.review_feedback` when it differs from what was
   published for the request (:mod:`.ledger`, read back from the feedback topic at start):
   a first answer is revision 0, a changed one the next revision (``metadata.revises``), an
   unchanged one nothing.

Skipped annotations, disagreements and answers the task does not accept publish nothing;
each is logged and counted once (:attr:`LabelStudioBridge.counts`).

One bridge per set of projects: two bridges on the same projects would each publish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from ...client.kafka import new_consumer
from ...client.publisher import Publisher
from ...schemas.codec import decode
from ...schemas.errors import ValidationError
from ...schemas.events import Feedback, LabelRequest
from ...schemas.settings import Settings
from ...schemas.topics import Topic
from ..answers import InvalidAnswer, review_feedback
from .client import LabelStudioClient
from .errors import LabelStudioError, LabelStudioRequestError
from .ledger import ANNOTATION_KEY, PublishedAnswers
from .project import project_fields, request_of, task_payload
from .verdict import annotation_value, decide

__all__ = ["LabelStudioBridge"]

log = logging.getLogger(__name__)

# Label Studio stamps a task's updated_at when its annotation is saved, before the commit: a
# slow transaction can become visible with a stamp older than the newest one already read.
# Re-reading a few seconds is harmless (an unchanged answer publishes nothing).
_RESCAN = timedelta(seconds=10)
_MAX_RECORDS = 500


class LabelStudioBridge:
    """Label requests of ``tasks`` to a Label Studio server, annotations back as feedback.

    Parameters
    ----------
    settings
        The broker and topics, the tasks' labels (``[tasks.<name>]``) and the
        ``[label_studio]`` section (server, token, poll interval, project titles).
    tasks
        The driftloop tasks bridged (default: ``label_studio.tasks``).
    client
        A :class:`LabelStudioClient` of your own; one is made from the settings otherwise.

    Attributes
    ----------
    counts
        Since start: ``imported``, ``already_imported`` (requests met again),
        ``unreadable_requests``, ``published`` (first answers), ``revisions``, ``skipped``,
        ``conflicts``, ``invalid`` (answers the task does not accept), ``foreign_tasks``
        (Label Studio tasks the bridge did not import); each skip, conflict or invalid
        answer once, however often it is read.
    looks
        How many times :meth:`collect_answers` has looked at Label Studio.

    Examples
    --------
    >>> settings = Settings(label_studio={"token": "0123456789abcdef"})
    >>> bridge = LabelStudioBridge(settings, tasks=["sentiment"])
    >>> bridge.project_title("sentiment"), dict(bridge.counts)
    ('driftloop: sentiment', {})
    >>> async def main():  # doctest: +SKIP
    ...     async with LabelStudioBridge(settings, tasks=["sentiment"]) as bridge:
    ...         await bridge.run(stop=asyncio.Event())
    """

    def __init__(self, settings: Settings, *, tasks: list[str] | tuple[str, ...] | None = None,
                 client: LabelStudioClient | None = None) -> None:
        studio = settings.label_studio
        self.settings = settings
        self.tasks = tuple(dict.fromkeys(tasks or studio.tasks))
        if not self.tasks:
            raise ValueError("no task to bridge: name at least one (--task, label_studio.tasks)")
        if client is None:
            token = studio.token.get_secret_value() if studio.token is not None else ""
            client = LabelStudioClient(studio.url, token, timeout=studio.request_timeout_s,
                                       deadline=studio.unreachable_deadline_s)
        self.client = client
        self.poll_interval = studio.poll_interval_s
        self.counts: Counter[str] = Counter()
        self.looks = 0  # passes of collect_answers done
        self.ledger = PublishedAnswers()
        self.projects: dict[str, int] = {}
        self._imported: dict[str, set[str]] = defaultdict(set)
        self._requests: dict[int, LabelRequest] = {}
        self._since: dict[str, datetime] = {}
        self._noted: set[Any] = set()  # skips, invalid answers and conflicts already counted
        self._users: dict[int, str] = {}
        self._next_poll = 0.0
        self._consumer: Any = None
        self._publisher: Publisher | None = None

    def project_title(self, task: str) -> str:
        """The title of ``task``'s project (how a restarted bridge finds it again)."""
        return f"{self.settings.label_studio.project_prefix}{task}"

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the token, find or make the projects, read back what was imported and
        published, then join the consumer group on label-requests."""
        await self.client.start()
        await self.open_projects()
        await self.read_imported()
        self.ledger = await PublishedAnswers.read(self.settings, self.tasks)
        self._publisher = Publisher(self.settings)
        await self._publisher.__aenter__()
        group = f"{self.settings.kafka.topic_prefix}{self.settings.label_studio.group_id}"
        self._consumer = new_consumer(self.settings,
                                      self.settings.kafka.topic(Topic.LABEL_REQUESTS),
                                      group_id=group, auto_offset_reset="earliest")
        await self._consumer.start()

    async def stop(self) -> None:
        """Leave the group and close the clients; idempotent. Nothing half done is
        committed: an import not committed is found in Label Studio next time."""
        consumer, self._consumer = self._consumer, None
        publisher, self._publisher = self._publisher, None
        if consumer is not None:
            await consumer.stop()
        if publisher is not None:
            await publisher.__aexit__(None, None, None)
        await self.client.stop()

    async def __aenter__(self) -> LabelStudioBridge:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Import and collect until ``stop`` is set."""
        while not stop.is_set():
            await self.step(wait=min(self.poll_interval, 1.0))

    async def step(self, *, wait: float = 0.0) -> None:
        """Import the requests that came in (waiting up to ``wait`` seconds for some), then
        collect the answers if the poll interval has passed."""
        await self.import_requests(wait=wait)
        if time.monotonic() >= self._next_poll:
            await self.collect_answers()
            self._next_poll = time.monotonic() + self.poll_interval

    # -- start: projects and what they hold --------------------------------------------------
    async def open_projects(self) -> None:
        """Find each task's project by title, or create it."""
        existing = {p["title"]: p for p in await self.client.projects()}
        for task in self.tasks:
            title = self.project_title(task)
            wanted = project_fields(self.settings, task, title)
            project = existing.get(title)
            if project is None:
                project = await self.client.create_project(**wanted)
                log.info("created Label Studio project %r (id %s)", title, project["id"])
            elif project.get("label_config") != wanted["label_config"]:
                try:  # the task's labels changed: offer the new ones
                    await self.client.update_project(project["id"],
                                                     label_config=wanted["label_config"])
                except LabelStudioRequestError as exc:
                    log.warning("project %r keeps its labeling config: %s", title, exc)
            self.projects[task] = int(project["id"])

    async def read_imported(self) -> None:
        """The request ids already imported, read from the projects' task data."""
        for task, project in self.projects.items():
            async for item in self.client.tasks(project, fields="task_only"):
                request_id = (item.get("data") or {}).get("request_id")
                if isinstance(request_id, str):
                    self._imported[task].add(request_id)
        log.info("Label Studio holds %s", ", ".join(
            f"{len(self._imported[t])} requests of {t!r}" for t in self.tasks))

    # -- step 1: label requests in -----------------------------------------------------------
    async def import_requests(self, *, wait: float = 0.0) -> int:
        """Import the label requests that came in; return how many were imported."""
        if self._consumer is None:
            raise LabelStudioError("the bridge is not started: use 'async with'")
        batches = await self._consumer.getmany(timeout_ms=int(wait * 1000),
                                               max_records=_MAX_RECORDS)
        if not batches:
            return 0
        fresh: dict[str, dict[str, LabelRequest]] = defaultdict(dict)
        for tp, records in batches.items():
            for record in records:
                request = self._decode(record, tp)
                if request is None:
                    continue
                if request.task not in self.tasks:
                    continue
                if request.id in self._imported[request.task]:
                    self.counts["already_imported"] += 1
                    continue
                fresh[request.task][request.id] = request
        imported = 0
        for task, requests in fresh.items():
            # Arrival order: Label Studio's uncertainty sampling serves by priority.
            ids = await self.client.import_tasks(
                self.projects[task], [task_payload(self.settings, r) for r in requests.values()])
            self._imported[task].update(requests)
            imported += len(ids)
            log.info("imported %d label requests of %r into Label Studio", len(ids), task)
        self.counts["imported"] += imported
        await self._consumer.commit()  # after the import: at least once, deduplicated above
        return imported

    def _decode(self, record: Any, tp: Any) -> LabelRequest | None:
        try:
            return decode(record.value, LabelRequest)
        except ValidationError as exc:
            self.counts["unreadable_requests"] += 1
            log.warning("%s[%d]@%d is not a label request, left out: %s", tp.topic,
                        tp.partition, record.offset, exc)
            return None

    # -- step 2: annotations out -------------------------------------------------------------
    async def collect_answers(self) -> int:
        """Publish the answers that are new or changed; return how many were published."""
        if self._publisher is None:
            raise LabelStudioError("the bridge is not started: use 'async with'")
        published = 0
        for task in self.tasks:
            answers, stamps = [], []
            async for item in self.client.tasks(self.projects[task],
                                                **self._changed_filter(task)):
                stamps.append(item.get("updated_at"))
                answer = await self.answer(task, item)
                if answer is not None:
                    answers.append(answer)
            if answers:
                await self._publisher.send(answers)
                for answer in answers:
                    self.ledger.record(answer)
                published += len(answers)
            for stamp in stamps:  # only once their answers are out: none is passed over
                self._advance(task, stamp)
        self.looks += 1
        return published

    def _changed_filter(self, task: str) -> dict[str, Any]:
        since = self._since.get(task)
        if since is None:  # first look: every task with an annotation, skipped ones too
            return {"conjunction": "or", "filters": [
                {"filter": f"filter:tasks:{field}", "operator": "greater", "type": "Number",
                 "value": 0} for field in ("total_annotations", "cancelled_annotations")]}
        stamp = (since - _RESCAN).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"filters": [{"filter": "filter:tasks:updated_at", "operator": "greater",
                             "type": "Datetime", "value": stamp}]}

    def _advance(self, task: str, stamp: str | None) -> None:
        if not stamp:
            return
        when = datetime.fromisoformat(stamp)
        if task not in self._since or when > self._since[task]:
            self._since[task] = when

    async def answer(self, task: str, item: dict[str, Any]) -> Feedback | None:
        """The feedback a Label Studio task's annotations call for now, if any."""
        annotations = item.get("annotations") or []
        if not annotations:
            return None
        request = self._request(item)
        if request is None:
            return None
        for skipped in (a for a in annotations if a.get("was_cancelled")):
            if self._first(("skip", skipped["id"])):
                self.counts["skipped"] += 1
                log.info("request %s: annotation %s skipped, nothing published", request.id,
                         skipped["id"])
        valid = [a["id"] for a in annotations
                 if not a.get("was_cancelled") and self._valid(request, a)]
        verdict = decide(annotations, valid)
        if verdict.conflict:
            state = ("conflict", frozenset((a["id"], a.get("updated_at")) for a in annotations
                                           if a["id"] in valid))
            if self._first(state):
                self.counts["conflicts"] += 1
                log.warning("request %s (Label Studio task %s): annotators disagree (%s); "
                            "nothing published until they agree or one is marked ground truth",
                            request.id, item["id"], ", ".join(verdict.conflict))
            return None
        if verdict.value is None:
            return None
        before = self.ledger.get(request.id)
        if before is not None and before.value == verdict.value:
            return None  # read again, unchanged
        revision = 0 if before is None else before.revision + 1
        deciding = verdict.deciding
        reviewers = list(dict.fromkeys([await self._user(a.get("completed_by"))
                                        for a in verdict.annotations]))
        feedback = review_feedback(
            self.settings, request, verdict.value, reviewer=", ".join(reviewers),
            revision=revision,
            metadata={ANNOTATION_KEY: deciding["id"],
                      "ls_updated_at": deciding.get("updated_at"), "ls_task_id": item["id"],
                      "ls_project_id": self.projects[task],
                      "ls_annotations": len(verdict.annotations)})
        self.counts["revisions" if revision else "published"] += 1
        log.info("request %s: %s %r from Label Studio annotation %s", request.id,
                 f"revision {revision}" if revision else "answer", verdict.value, deciding["id"])
        return feedback

    def _request(self, item: dict[str, Any]) -> LabelRequest | None:
        request = self._requests.get(item["id"])
        if request is not None:
            return request
        try:
            request = request_of(item.get("data") or {})
        except (KeyError, ValidationError) as exc:
            if self._first(("foreign", item["id"])):
                self.counts["foreign_tasks"] += 1
                log.warning("Label Studio task %s was not imported by the bridge (no label "
                            "request in its data), left out: %s", item["id"], exc)
            return None
        self._requests[item["id"]] = request
        return request

    def _valid(self, request: LabelRequest, annotation: dict[str, Any]) -> bool:
        value = annotation_value(annotation)
        try:
            if value is None:
                raise InvalidAnswer("the annotation holds no answer")
            review_feedback(self.settings, request, value, reviewer="-", ts=0.0)
        except InvalidAnswer as exc:
            if self._first(("invalid", annotation["id"], annotation.get("updated_at"))):
                self.counts["invalid"] += 1
                log.warning("request %s: Label Studio annotation %s left out, nothing "
                            "published: %s", request.id, annotation["id"], exc)
            return False
        return True

    def _first(self, key: Any) -> bool:
        if key in self._noted:
            return False
        self._noted.add(key)
        return True

    async def _user(self, user_id: Any) -> str:
        if not isinstance(user_id, int):
            return "label-studio"
        if user_id not in self._users:
            for user in await self.client.users():
                self._users[int(user["id"])] = user.get("email") or f"user {user['id']}"
        return self._users.get(user_id, f"label-studio-user-{user_id}")
