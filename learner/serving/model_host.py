"""Resident PEFT models that hold several adapter versions by name, one model per task.

PEFT keeps named adapters side by side in one model (``load_adapter``) and switches between
them with ``set_adapter``; only the active one runs. A task keeps one spare slot ready (an
evicted version's adapter, or one made after the first load or an eviction, while no swap
waits for it), and the next version with the same LoRA layout is copied straight into its
tensors instead of being injected anew (a MiniLM adapter: 0.03 ms, against 3 ms through
PEFT's ``set_peft_model_state_dict`` and 15 ms for its ``load_adapter``). Loading,
switching, evicting and every forward pass happen on one dedicated thread, so a version
change can only fall *between* two requests: a request never sees half an adapter, and the
event loop never blocks on torch.

Requests that arrive while a forward pass runs wait together and go through the next one as
a single batch (per task and version, :mod:`.forward_passes`): on a CPU, one pass over 16
short texts costs little more than a pass over one, so throughput grows with concurrency
instead of queueing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...schemas.enums import TaskKind
from ..errors import AdapterFormatError, UnservableAdapterError, VersionNotServedError
from ..models.adapters import (
    check_filled,
    check_safetensors_only,
    load_peft_model,
    read_metadata,
)
from ..models.classification import HEAD_MODULE, MeanPoolClassifier
from ..models.portable import internal_adapter, internal_layout, is_portable_classifier
from ..models.prompt_policy import PromptPolicy, ShotIndex
from ..models.resident import BaseModel, ResidentModels
from ..models.retrieval import RetrievalBank
from ..models.token_means import input_embeddings, token_embedding_means
from .forward_passes import Follow, ForwardPassQueue

__all__ = ["ModelHost", "Prediction", "PreparedAdapter", "input_embeddings",
           "token_embedding_means", "zero_shot_version"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Prediction:
    """One answer: the label (or generated text), its probability, all probabilities and the
    pooled embedding; a generation answer has no probabilities and no pooled embedding
    (``embedding`` is empty), only the version-free ``input_embedding``.

    A generation answer keeps the generated text in ``output``; when its prompt template has
    choices, ``label`` is the choice read from the text and ``classified`` says one was found.
    """

    label: str
    confidence: float | None
    probabilities: dict[str, float]
    embedding: list[float]
    version_id: str
    output: str | None = None
    classified: bool = True
    input_embedding: list[float] | None = None
    """The mean of the base model's input-token embeddings of the text's words (special
    tokens left out), which no adapter changes (:func:`token_embedding_means`): the worker's
    input-drift signal, the same whatever version answered (either task kind)."""


@dataclass(frozen=True, slots=True)
class PreparedAdapter:
    """An adapter folder as :meth:`ModelHost.prepare` read it, ready to load."""

    folder: Path
    kind: TaskKind
    labels: tuple[str, ...]
    prompt_template_id: str | None
    bank: RetrievalBank | None
    config: Any
    """PEFT's ``LoraConfig`` of the adapter (its in-memory layout)."""
    state: dict[str, Any]
    """Its weights, keyed as PEFT saves them."""
    policy: PromptPolicy | None = None
    """A generation version's prompt policy (:mod:`driftloop.learner.models.prompt_policy`)."""


def zero_shot_version(task: str) -> str:
    """The ``model_version`` of answers a task's base model gives before any version exists.

    >>> zero_shot_version("reviews")
    'reviews-zero-shot'
    """
    return f"{task}-zero-shot"


# Evicted adapters kept per task, weights and all, for the next version to be copied into.
SPARE_SLOTS = 1


@dataclass(slots=True)
class _TaskModel:
    """One task's PEFT model over one base model and label set; its adapters are slots
    (``slot-0``, ``slot-1``, ...) that hold one version each, or none (spare)."""

    base_model_id: str
    labels: tuple[str, ...]
    tokenizer: Any
    peft_model: Any
    versions: list[str] = field(default_factory=list)
    pooled: list[Any] = field(default_factory=list)
    kind: TaskKind = TaskKind.CLASSIFICATION
    templates: dict[str, str | None] = field(default_factory=dict)
    slots: dict[str, str] = field(default_factory=dict)
    """Version id -> the PEFT adapter name holding it."""
    spare: list[str] = field(default_factory=list)
    """Adapter names of evicted versions: the next compatible version is copied into one."""
    made: int = 1
    banks: dict[str, RetrievalBank] = field(default_factory=dict)
    """Version id -> its retrieval bank (:mod:`driftloop.learner.models.retrieval`), if any."""
    shots: dict[str, ShotIndex] = field(default_factory=dict)
    """Version id -> the worked examples its prompts show (a generation version's policy)."""
    special_ids: Any = None
    """The tokenizer's special token ids as a tensor (made on the first forward pass)."""
    tensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Spare slot -> its weights keyed as PEFT saves an adapter (the model's own tensors,
    so a copy into them is the load)."""

    def new_slot(self) -> str:
        self.made += 1
        return f"slot-{self.made - 1}"


class ModelHost:
    """Adapters of every served task, resident in memory, switched between requests.

    Parameters
    ----------
    models
        The resident base models; each task gets a private copy of its base (LoRA layers
        are injected in place).
    max_length
        Token budget of one input.

    Examples
    --------
    >>> host = ModelHost(ResidentModels(capacity=1))
    >>> host.versions("sentiment")
    []
    >>> host.predict("sentiment", "v1", ["great"])
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.VersionNotServedError: version 'v1' of task 'sentiment' is not loaded
    >>> host.close()
    """

    def __init__(self, models: ResidentModels, *, max_length: int = 128,
                 max_batch: int = 32, max_new_tokens: int = 8) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.models = models
        self.max_length = max_length
        self.max_batch = max_batch
        self.max_new_tokens = max_new_tokens
        self._tasks: dict[str, _TaskModel] = {}
        # One thread owns torch state: loads, switches and forward passes never interleave.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="driftloop-host")
        self._passes: ForwardPassQueue[Prediction] = ForwardPassQueue(
            lambda task, version_id, texts, follow=None: self._run(
                self.predict, task, version_id, texts, follow),
            max_batch=max_batch)

    @property
    def batches(self) -> int:
        """Forward passes run for :meth:`apredict` so far."""
        return self._passes.batches

    # -- on the host thread ------------------------------------------------------------

    def prepare(self, version_id: str, folder: Path) -> PreparedAdapter:
        """Read and check a verified adapter folder: what :meth:`load` needs of its files.

        Thread-safe and free of the host's state: :meth:`aload` runs it off the host thread,
        so the forward passes go on while the files are read. Raises
        :class:`AdapterFormatError` for a malformed folder and
        :class:`UnservableAdapterError` for one without a label set or unreadable weights.
        """
        from peft import LoraConfig
        from safetensors.torch import load_file

        from ..models.adapters import ADAPTER_WEIGHTS_FILE

        check_safetensors_only(folder)
        metadata = read_metadata(folder)
        kind = metadata.task_kind
        if kind is TaskKind.CLASSIFICATION and len(metadata.labels) < 2:
            raise UnservableAdapterError(f"{version_id}: the adapter names no label set")
        labels = metadata.labels if kind is TaskKind.CLASSIFICATION else ()
        bank = (RetrievalBank.load(folder, metadata.extra.get("retrieval"), len(labels))
                if kind is TaskKind.CLASSIFICATION else None)
        try:
            if is_portable_classifier(folder):  # its head joins the adapter, in memory
                state, fields = internal_adapter(folder)
                config = LoraConfig.from_peft_type(**LoraConfig.check_kwargs(**fields))
            else:
                config = LoraConfig.from_pretrained(str(folder))
                state = load_file(str(folder / ADAPTER_WEIGHTS_FILE))
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise UnservableAdapterError(f"{version_id}: PEFT could not load it: {exc}") from exc
        policy = PromptPolicy.load(folder) if kind is TaskKind.GENERATION else None
        return PreparedAdapter(folder, kind, labels, metadata.prompt_template_id, bank, config,
                               state, policy)

    def load(self, task: str, version_id: str, folder: Path, base_model_id: str, *,
             prepared: PreparedAdapter | None = None) -> float:
        """Load a verified adapter folder as ``version_id`` of ``task``; return the seconds.

        Classification adapters answer with a label, generation adapters (a causal LM under
        the version's prompt template) with text. Raises :class:`UnservableAdapterError` for
        a task kind, label set or base model that differs from the versions already loaded
        for the task, and :class:`AdapterFormatError` for a malformed folder. ``prepared``:
        the folder as :meth:`prepare` read it (read here when not given).
        """
        started = time.perf_counter()
        current = self._tasks.get(task)
        if current is not None and version_id in current.versions:
            return 0.0
        ready = prepared if prepared is not None else self.prepare(version_id, folder)
        kind, labels = ready.kind, ready.labels
        if current is not None and (current.kind, current.labels, current.base_model_id) != (
                kind, labels, base_model_id):
            raise UnservableAdapterError(
                f"{version_id}: a {kind} adapter with labels {list(labels)} on {base_model_id} "
                f"differs from the served versions' ({current.kind}, {list(current.labels)}, "
                f"{current.base_model_id})")
        try:
            if current is None:
                with internal_layout(folder) as inside:
                    current = self._first_model(version_id, inside, base_model_id, kind,
                                                labels)
                self._tasks[task] = current
                _keep_a_spare(current)  # the next version's load is a copy, not a new slot
            else:
                current.slots[version_id] = _load_into_slot(current, ready)
                current.versions.append(version_id)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise UnservableAdapterError(f"{version_id}: PEFT could not load it: {exc}") from exc
        current.templates[version_id] = ready.prompt_template_id
        if ready.bank is not None:  # its answers are mixed with its neighbours' votes
            current.banks[version_id] = ready.bank
        if ready.policy is not None:  # its prompts as the learner's gate rendered them
            current.templates[version_id] = ready.policy.template_ref
            if ready.policy.shots:
                current.shots[version_id] = ShotIndex.build(
                    ready.policy, current.peft_model, current.tokenizer,
                    max_length=self.max_length)
        seconds = time.perf_counter() - started
        log.info("loaded %s for %s in %.3f s", version_id, task, seconds)
        return seconds

    def _first_model(self, version_id: str, folder: Path, base_model_id: str, kind: TaskKind,
                     labels: tuple[str, ...]) -> _TaskModel:
        base: BaseModel = self.models.get(base_model_id, kind)
        slot = "slot-0"
        if kind is TaskKind.GENERATION:
            peft_model = load_peft_model(base.fresh_copy(), folder, adapter_name=slot)
            peft_model.eval()
            return _TaskModel(base_model_id, (), base.tokenizer, peft_model, [version_id],
                              kind=kind, slots={version_id: slot})
        classifier = MeanPoolClassifier(base.fresh_copy(), len(labels))
        peft_model = load_peft_model(classifier, folder, adapter_name=slot)
        peft_model.eval()
        hosted = _TaskModel(base_model_id, labels, base.tokenizer, peft_model, [version_id],
                            slots={version_id: slot})
        # The head's input is the pooled sentence embedding the interaction carries.
        head = getattr(peft_model.base_model.model, HEAD_MODULE)
        head.register_forward_pre_hook(lambda _module, args: hosted.pooled.append(args[0]))
        return hosted

    def predict(self, task: str, version_id: str, texts: Sequence[str],
                follow: Follow | None = None) -> list[Prediction]:
        """Classify ``texts`` with one version of ``task`` (made active if it is not); with
        ``follow``, with the version it names now when that one is loaded."""
        import torch

        hosted = self._tasks.get(task)
        if follow is not None and hosted is not None:
            now = follow()
            if now is not None and now in hosted.versions:
                version_id = now
        if hosted is None or version_id not in hosted.versions:
            raise VersionNotServedError(
                f"version {version_id!r} of task {task!r} is not loaded")
        slot = hosted.slots[version_id]
        if hosted.peft_model.active_adapter != slot:
            hosted.peft_model.set_adapter(slot)
        if hosted.kind is TaskKind.GENERATION:
            return self._generate(hosted, version_id, texts)
        encoded = hosted.tokenizer(list(texts), padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
        hosted.pooled.clear()
        with torch.inference_mode():
            logits = hosted.peft_model(input_ids=encoded["input_ids"],
                                       attention_mask=encoded["attention_mask"])
            probs = logits.float().softmax(dim=-1)
            bank = hosted.banks.get(version_id)
            if bank is not None:
                probs = bank.mix(probs, hosted.pooled[-1])
            probabilities = probs.tolist()
            embeddings = hosted.pooled[-1].float().tolist()
            table = hosted.peft_model.base_model.model.encoder.get_input_embeddings()
            if hosted.special_ids is None:  # [CLS], [SEP] say nothing
                hosted.special_ids = torch.tensor(hosted.tokenizer.all_special_ids)
            words = encoded["attention_mask"] * ~torch.isin(encoded["input_ids"],
                                                            hosted.special_ids)
            inputs = token_embedding_means(table, encoded["input_ids"], words).tolist()
        hosted.pooled.clear()
        answers = []
        for probs, embedding, input_embedding in zip(probabilities, embeddings, inputs,
                                                     strict=True):
            best = max(range(len(probs)), key=probs.__getitem__)
            answers.append(Prediction(hosted.labels[best], probs[best],
                                      dict(zip(hosted.labels, probs, strict=True)),
                                      embedding, version_id, input_embedding=input_embedding))
        return answers

    def _generate(self, hosted: _TaskModel, version_id: str,
                  texts: Sequence[str]) -> list[Prediction]:
        return self._answer_with(hosted.peft_model, hosted.tokenizer,
                                 hosted.templates[version_id], version_id, texts,
                                 shots=hosted.shots.get(version_id))

    def zero_shot(self, task: str, base_model_id: str, prompt_template_id: str | None,
                  texts: Sequence[str]) -> list[Prediction]:
        """Answer a generation task that has no version yet with its base model alone,
        under the task's prompt template; the answers name :func:`zero_shot_version`."""
        base: BaseModel = self.models.get(base_model_id, TaskKind.GENERATION)
        return self._answer_with(base.model, base.tokenizer, prompt_template_id,
                                 zero_shot_version(task), texts)

    def _answer_with(self, model: Any, tokenizer: Any, prompt_template_id: str | None,
                     version_id: str, texts: Sequence[str], *,
                     shots: ShotIndex | None = None) -> list[Prediction]:
        from ..models.device import select_device
        from ..models.generation import GenerationTask
        from ..models.prompts import get_template

        template = get_template(prompt_template_id)
        generator = GenerationTask(tokenizer, template,
                                   select_device("cpu"), max_length=self.max_length,
                                   max_new_tokens=self.max_new_tokens,
                                   batch_size=self.max_batch)
        generator.shots = shots
        answers = []
        # One lookup per pass: the answers carry them, and worked examples are chosen by them.
        embeddings = input_embeddings(model, tokenizer, texts, max_length=self.max_length)
        for answer, embedding in zip(generator.generate(model, list(texts), vectors=embeddings),
                                     embeddings, strict=True):
            text = answer.strip()
            choice = template.read_answer(text)
            # The vector no adapter changes is an input embedding, watched as such and
            # never re-learnt after a promotion; a causal LM has no pooled embedding.
            answers.append(Prediction(choice or text, None, {}, [], version_id,
                                      output=text, classified=choice is not None,
                                      input_embedding=embedding))
        return answers

    def evict(self, task: str, keep: set[str]) -> list[str]:
        """Unload every version of ``task`` outside ``keep``; return the ones unloaded.

        A replica evicts after every swap, so this is also where the task's spare slot is
        made again when the swap used it: the next version's load is then a copy."""
        hosted = self._tasks.get(task)
        if hosted is None:
            return []
        dropped = [v for v in hosted.versions if v not in keep]
        if len(dropped) == len(hosted.versions):
            del self._tasks[task]  # PEFT cannot delete its last adapter: drop the model
            return dropped
        for version_id in dropped:
            slot = hosted.slots.pop(version_id)
            if hosted.peft_model.active_adapter == slot:
                kept = next(v for v in hosted.versions if v in keep)
                hosted.peft_model.set_adapter(hosted.slots[kept])
            if len(hosted.spare) < SPARE_SLOTS:
                _add_spare(hosted, slot)  # its weights are overwritten by the next version
            else:
                hosted.peft_model.delete_adapter(slot)
            hosted.versions.remove(version_id)
            hosted.templates.pop(version_id, None)
            hosted.banks.pop(version_id, None)
            hosted.shots.pop(version_id, None)
        _keep_a_spare(hosted)
        return dropped

    def tasks(self) -> list[str]:
        """Tasks with a version loaded."""
        return [task for task, hosted in self._tasks.items() if hosted.versions]

    def versions(self, task: str) -> list[str]:
        """Versions of ``task`` loaded, oldest first."""
        hosted = self._tasks.get(task)
        return list(hosted.versions) if hosted else []

    # -- from the event loop -----------------------------------------------------------

    async def aload(self, task: str, version_id: str, folder: Path, base_model_id: str, *,
                    then: Callable[[], None] | None = None,
                    prepared: PreparedAdapter | None = None) -> float:
        """:meth:`load` on the host thread; ``then`` runs there right after a load that
        succeeded, before any forward pass queued behind it (the subscriber's swap).

        The files are read and checked first (:meth:`prepare`, on another thread, unless
        ``prepared`` is given) while forward passes go on; the host thread then only copies
        the weights into a slot and swaps. The seconds returned include both."""
        started = time.perf_counter()
        if prepared is None and version_id not in self.versions(task):  # else nothing to read
            prepared = await asyncio.to_thread(self.prepare, version_id, folder)
        read = time.perf_counter() - started

        def load_then() -> float:
            seconds = self.load(task, version_id, folder, base_model_id, prepared=prepared)
            if then is not None:
                then()
            return read + seconds

        return await self._run(load_then)

    async def apredict(self, task: str, version_id: str, texts: Sequence[str], *,
                       follow: Follow | None = None) -> list[Prediction]:
        """Classify on the host thread, batched with the requests waiting beside this one
        (``follow``: see :meth:`.ForwardPassQueue.submit`); the answers name their version."""
        return await self._passes.submit(task, version_id, texts, follow=follow)

    async def azero_shot(self, task: str, base_model_id: str, prompt_template_id: str | None,
                         texts: Sequence[str]) -> list[Prediction]:
        return await self._run(self.zero_shot, task, base_model_id, prompt_template_id, texts)

    async def aevict(self, task: str, keep: set[str]) -> list[str]:
        return await self._run(self.evict, task, keep)

    async def _run(self, func: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    def close(self) -> None:
        """Stop the host thread (idempotent); loaded models are released with the host."""
        self._thread.shutdown(wait=True)
        self._tasks.clear()


def _slot_tensors(model: Any, slot: str) -> dict[str, Any]:
    """The slot's weights keyed as PEFT saves an adapter: views of the model's parameters."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, adapter_name=slot, save_embedding_layers=False)


def _add_spare(hosted: _TaskModel, slot: str) -> None:
    hosted.spare.append(slot)
    hosted.tensors[slot] = _slot_tensors(hosted.peft_model, slot)


def _keep_a_spare(hosted: _TaskModel) -> None:
    """Give ``hosted`` a spare slot if it has none: a new adapter of the active one's layout
    (its weights are whatever PEFT initialises; the next version overwrites all of them).
    Runs on the host thread after a load or an eviction, between requests."""
    import copy

    if hosted.spare:
        return
    model = hosted.peft_model
    active = model.active_adapter
    slot = hosted.new_slot()
    try:
        model.add_adapter(slot, copy.deepcopy(model.peft_config[active]))
    except (ValueError, RuntimeError, KeyError, TypeError) as exc:  # a kind PEFT cannot add
        log.warning("no spare adapter slot made (%s): the next version loads anew", exc)
        return
    finally:
        model.set_adapter(active)
    model.eval()  # new layers start in training mode (dropout on)
    _add_spare(hosted, slot)


def _copy_into(tensors: dict[str, Any] | None, state: dict[str, Any]) -> bool:
    """Copy ``state`` into a slot's ``tensors`` when both hold the same keys and shapes."""
    import torch

    if tensors is None or tensors.keys() != state.keys() or any(
            tensors[key].shape != value.shape for key, value in state.items()):
        return False
    with torch.no_grad():
        for key, value in state.items():
            tensors[key].copy_(value)
    return True


def _load_into_slot(hosted: _TaskModel, adapter: PreparedAdapter) -> str:
    """Load a prepared adapter into a slot of ``hosted``; its name.

    A spare slot whose LoRA config matches takes the new weights by a copy into its tensors,
    where PEFT's ``load_adapter`` builds and injects new LoRA layers into every target module
    (a MiniLM adapter on the host thread: 15 ms; a copy of its 26 tensors: 0.03 ms, and
    3 ms through PEFT's ``set_peft_model_state_dict``, which a slot of unexpected keys
    still takes). Otherwise the adapter is loaded fresh into a new slot.
    """
    from peft import set_peft_model_state_dict

    model = hosted.peft_model
    for slot in hosted.spare:
        if _same_layout(model.peft_config[slot], adapter.config):
            if _copy_into(hosted.tensors.pop(slot, None), adapter.state):
                hosted.spare.remove(slot)
                return slot
            result = set_peft_model_state_dict(model, adapter.state, adapter_name=slot)
            missing = [k for k in result.missing_keys if f".{slot}." in k]
            if not missing and not result.unexpected_keys:
                hosted.spare.remove(slot)
                return slot
            log.warning("adapter at %s did not fill %s (%d missing, %d unexpected keys): "
                        "loading it fresh", adapter.folder, slot, len(missing),
                        len(result.unexpected_keys))
            hosted.spare.remove(slot)
            model.delete_adapter(slot)
            break
    slot = hosted.new_slot()
    with internal_layout(adapter.folder) as inside:
        model.load_adapter(str(inside), adapter_name=slot)
        try:
            check_filled(model, inside, slot)
        except AdapterFormatError:
            model.delete_adapter(slot)
            raise
    return slot


def _same_layout(a: Any, b: Any) -> bool:
    """Whether two LoRA configs give adapters of the same modules, shapes and scaling.

    >>> from peft import LoraConfig
    >>> _same_layout(LoraConfig(r=8, target_modules=["q"]), LoraConfig(r=8, target_modules=["q"]))
    True
    >>> _same_layout(LoraConfig(r=8, target_modules=["q"]), LoraConfig(r=4, target_modules=["q"]))
    False
    """
    def layout(c: Any) -> tuple[Any, ...]:
        targets = c.target_modules
        return (type(c).__name__, c.r, c.lora_alpha, c.use_rslora, c.use_dora, c.bias,
                c.fan_in_fan_out,
                frozenset(targets) if isinstance(targets, list | set | tuple) else targets,
                frozenset(c.modules_to_save or ()), tuple(sorted(c.rank_pattern.items())),
                tuple(sorted(c.alpha_pattern.items())))

    try:
        return layout(a) == layout(b)
    except AttributeError:  # another kind of adapter: never swapped into
        return False
