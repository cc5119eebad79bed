"""Data from prompts: labelled variants of a request's real examples, written by a model.

When a domain brings fewer labelled examples than an update needs (``learner.synthetic_below``
new training examples in the request), a generation model (the default generation base
model, or ``learner.synthetic_generator``) is asked, with prompt templates, to write variants
of the request's *training* examples of that domain:

* a **paraphrase** keeps the example's target (:data:`PARAPHRASE`);
* a **contrast** rewrite asks for another label of a classification task, so the pair
  differs in what matters (:data:`CONTRAST`).

A variant joins the update's training part only when it passes every check, and the counts
of each reason it did not are recorded: a cleaned, non-empty single text
(``unusable``), of a plausible length beside its source (``length``), not the same text as
any real input of the request, of the gate's slices or of the challenge suite, nor as
another variant, after normalising case, spaces and punctuation (``duplicate``); and the
current model (the version the update starts from) gives it the label the writer was asked
for (``disagree``: the writer and the current model must agree, so a rewrite that did not
flip, or drifted off its meaning, is dropped); with a teacher (the task's
``synthetic_teacher``) it must give that label too (``teacher_disagree``).

With the task's ``synthetic_probes`` the challenge probes the current model fails are
sources too, ahead of the examples; the current model's label is no check of their variants
(it fails their source), so the teacher's alone is, and the gate's challenge check leaves
out the probes whose variants train (it stays a regression check on the others).

Variants are at most ``learner.synthetic_share`` of the training part (the rest:
``over_share``), carry ``origin="synthetic"``, the source's domain, regime and weight, and
are never held out, used for early stop or pooled for later gates
(:func:`~driftloop.learner.gate.split.split_request`).

Sampling is seeded (``learner.seed``): the same request and settings write the same
variants on the same hardware.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ...schemas.enums import ExampleOrigin
from ...schemas.events import TrainingExample
from ..errors import TrainingRequestError
from ..gate.challenges import ChallengeCase
from ..models.prompts import chat_prompt, variant_key

__all__ = [
    "CONTRAST",
    "PARAPHRASE",
    "SynthesisPlan",
    "SynthesisReport",
    "TextWriter",
    "Writer",
    "clean_variant",
    "failed_probes",
    "paraphraser",
    "synthesize",
    "variant_key",
]

PARAPHRASE = "Paraphrase this text. Keep its meaning.\nText: {text}\nParaphrase:"
"""The prompt of a variant that keeps its source's target."""
CONTRAST = ("Rewrite this text so that its label is \"{label}\" instead of \"{target}\". "
            "Change as few words as you can.\nText: {text}\nRewritten:")
"""The prompt of a variant that should take another label (classification only)."""

_PREAMBLE = re.compile(r"^(?:paraphrase|rewritten|text|answer|output)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019"


def clean_variant(raw: str) -> str | None:
    """The variant a writer's raw answer holds, or None when it holds none.

    The first line that is not a preamble ("Here is a paraphrase:"), without a leading
    ``Paraphrase:``-style label and surrounding quotes.

    >>> clean_variant('Paraphrase: "The film was dull."')
    'The film was dull.'
    >>> clean_variant("Here's a revised version:\\n\\nThe blender broke quickly.")
    'The blender broke quickly.'
    >>> clean_variant("  \\n ") is None
    True
    """
    for line in raw.splitlines():
        text = _PREAMBLE.sub("", line.strip()).strip().strip(_QUOTES).strip()
        if text and not text.endswith(":"):
            return text
    return None


def paraphraser(writer: Writer, *, seed: int = 0) -> Callable[[list[str]], list[str | None]]:
    """Texts to their paraphrases by ``writer`` (None where its answer holds no text): the
    robustness checks' ``paraphrase`` kind (:mod:`driftloop.learner.gate.perturb`).

    >>> class Echo:
    ...     def write(self, prompts, seed):
    ...         return [p.rsplit("Text: ", 1)[1].split("\\n")[0] + " indeed" for p in prompts]
    >>> paraphraser(Echo())(["good film"])
    ['good film indeed']
    """
    def rewrite(texts: list[str]) -> list[str | None]:
        answers = writer.write([PARAPHRASE.format(text=text) for text in texts], seed)
        return [clean_variant(answer) for answer in answers]

    return rewrite


@dataclass(frozen=True, slots=True)
class SynthesisPlan:
    """How many variants of which examples to ask for.

    Examples
    --------
    >>> plan = SynthesisPlan(share=0.25, below=64, per_example=2)
    >>> plan.limit(90)  # a quarter of the training part once they are in: 30 of 120
    30
    >>> SynthesisPlan(share=0.0, below=64).limit(90)
    0
    """

    share: float
    """Most of the training part variants may be, once they are in it (0: off)."""
    below: int
    """A domain with fewer new training examples than this gets variants."""
    per_example: int = 2
    """Variants asked of each source example (alternately paraphrase and contrast)."""
    contrast: bool = True
    """Ask for contrast rewrites (classification tasks with two labels or more)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.share < 1.0:
            raise ValueError(f"share must be in [0, 1), got {self.share}")
        if self.below < 0 or self.per_example < 1:
            raise ValueError("below must be >= 0 and per_example >= 1")

    def limit(self, real: int) -> int:
        """Most variants beside ``real`` training examples."""
        return math.floor(self.share * real / (1.0 - self.share) + 1e-9)

    def sources(self, train: Sequence[TrainingExample]) -> list[TrainingExample]:
        """The new training examples of the domains short of :attr:`below`, newest first
        (the request's order is oldest first), as many as the limit can use."""
        new = [e for e in train if e.origin is ExampleOrigin.NEW]
        counts: dict[str, int] = {}
        for example in new:
            counts[example.domain] = counts.get(example.domain, 0) + 1
        short = [e for e in reversed(new) if counts[e.domain] < self.below]
        return short[:math.ceil(self.limit(len(train)) / self.per_example)]


@dataclass(slots=True)
class SynthesisReport:
    """What one update's synthesis asked for, kept, and why the rest was dropped."""

    examples: list[TrainingExample] = field(default_factory=list)
    asked: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    generator: str | None = None
    teacher: str | None = None
    probes: int = 0
    """Failed challenge probes that were sources."""
    trained_probes: frozenset[str] = frozenset()
    """The inputs of the probes with a variant in :attr:`examples`."""

    def metadata(self) -> dict[str, Any]:
        """The version's ``metadata.synthetic`` entry."""
        entry = {"generator": self.generator, "asked": self.asked, "kept": len(self.examples),
                 "dropped": dict(sorted(self.dropped.items())),
                 "seconds": round(self.seconds, 3)}
        if self.teacher is not None:
            entry["teacher"] = self.teacher
        if self.probes:
            entry["probes"] = {"failed": self.probes, "trained": len(self.trained_probes)}
        return entry

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


class TextWriter:
    """Sampled continuations of chat prompts from a causal LM (the variants' writer).

    Parameters
    ----------
    model, tokenizer
        A causal LM and its tokenizer (a chat template is used when the tokenizer has one).
    device
        Where the model's weights are.
    max_new_tokens
        Longest variant, in tokens.
    batch_size
        Prompts per forward pass.

    Examples
    --------
    >>> class Echo:  # a stand-in: the real writer is any transformers causal LM
    ...     def write(self, prompts, seed):
    ...         return [p.rsplit("Text: ", 1)[1].split("\\n")[0] + " indeed" for p in prompts]
    >>> Echo().write([PARAPHRASE.format(text="good film")], seed=0)
    ['good film indeed']
    """

    def __init__(self, model: Any, tokenizer: Any, device: torch.device | str = "cpu", *,
                 max_new_tokens: int = 48, batch_size: int = 16) -> None:
        self.model, self.tokenizer, self.device = model, tokenizer, torch.device(device)
        self.max_new_tokens, self.batch_size = max_new_tokens, batch_size

    @torch.no_grad()
    def write(self, prompts: Sequence[str], seed: int) -> list[str]:
        """One sampled answer per prompt (nucleus sampling, seeded), in the prompts' order."""
        tokenizer = self.tokenizer
        side, tokenizer.padding_side = tokenizer.padding_side, "left"  # answers start aligned
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else tokenizer.eos_token_id
        was_training = self.model.training
        self.model.eval()
        torch.manual_seed(seed)
        answers: list[str] = []
        try:
            for start in range(0, len(prompts), self.batch_size):
                chats = [chat_prompt(tokenizer, p) or p
                         for p in prompts[start:start + self.batch_size]]
                encoded = tokenizer(chats, return_tensors="pt", padding=True,
                                    add_special_tokens=False).to(self.device)
                out = self.model.generate(**encoded, max_new_tokens=self.max_new_tokens,
                                          do_sample=True, top_p=0.9, temperature=0.7,
                                          pad_token_id=pad)
                answers += tokenizer.batch_decode(out[:, encoded["input_ids"].shape[1]:],
                                                  skip_special_tokens=True,
                                                  clean_up_tokenization_spaces=False)
        finally:
            tokenizer.padding_side = side
            self.model.train(was_training)
        return answers


class Writer(Protocol):
    """What :func:`synthesize` needs of a writer (a :class:`TextWriter`)."""

    def write(self, prompts: Sequence[str], seed: int) -> list[str]: ...


def _requests(sources: Sequence[TrainingExample], plan: SynthesisPlan,
              labels: Sequence[str]) -> list[tuple[TrainingExample, str, str]]:
    """``(source, prompt, target asked for)`` per variant: paraphrases and contrasts taking
    turns, the contrasts of successive sources asking for each other label in turn."""
    contrast = plan.contrast and len(labels) >= 2
    asked = []
    for n, source in enumerate(sources):
        for k in range(plan.per_example):
            if contrast and (n + k) % 2 == 1 and source.target in labels:
                others = [label for label in labels if label != source.target]
                other = others[n % len(others)]
                asked.append((source, CONTRAST.format(text=source.input, label=other,
                                                      target=source.target), other))
            else:
                asked.append((source, PARAPHRASE.format(text=source.input), source.target))
    return asked


def failed_probes(suite: Iterable[ChallengeCase], answers: Sequence[str], *,
                  labels: Sequence[str], domain: str) -> list[TrainingExample]:
    """The probes of ``suite`` whose answer (``answers``, in suite order) is not the expected
    label, as examples (their source's domain, else ``domain``); probes whose expected answer
    is not one of ``labels`` are left out.

    >>> suite = [ChallengeCase("not bad", "positive", source={"domain": "movies"}),
    ...          ChallengeCase("awful", "negative"), ChallengeCase("meh", "neutral")]
    >>> [(e.input, e.target, e.domain) for e in failed_probes(
    ...     suite, ["negative", "negative", "positive"], labels=("negative", "positive"),
    ...     domain="live")]
    [('not bad', 'positive', 'movies')]
    """
    failed = []
    for case, given in zip(suite, answers, strict=True):
        if case.expected in labels and given != case.expected:
            source = case.source or {}
            failed.append(TrainingExample(input=case.input, target=case.expected,
                                          domain=source.get("domain") or domain))
    return failed


def synthesize(train: Sequence[TrainingExample], *, plan: SynthesisPlan, writer: Writer,
               answer: Callable[[list[str]], list[str]], labels: Sequence[str] = (),
               same: Callable[[str, str], bool] = str.__eq__, known: Iterable[str] = (),
               seed: int = 0, teacher: Callable[[list[str]], list[str]] | None = None,
               probes: Sequence[TrainingExample] = ()) -> SynthesisReport:
    """Variants of ``train``'s examples of short domains that pass every check.

    ``answer`` is the current model (texts to answers); ``same`` says whether an answer is
    the target asked for; ``known`` are the other real texts no variant may repeat (the
    request's held-out ones, the gate's pooled ones). ``teacher`` (texts to answers) is a
    second check every variant must pass; ``probes`` are challenge probes the current model
    fails, as examples: sources ahead of ``train``'s, checked by ``teacher`` alone (which
    they need).

    Examples
    --------
    >>> class Writer:
    ...     def write(self, prompts, seed):
    ...         return ["Paraphrase: " + p.split("Text: ")[1].split("\\n")[0].upper() + "!"
    ...                 if p.startswith("Paraphrase") else "" for p in prompts]
    >>> train = [TrainingExample(input=f"text {i} was fine", target="pos") for i in range(4)]
    >>> report = synthesize(train, plan=SynthesisPlan(share=0.5, below=8, per_example=1,
    ...                     contrast=False), writer=Writer(), answer=lambda t: ["pos"] * len(t))
    >>> [e.input for e in report.examples], report.dropped  # upper case: a duplicate
    ([], {'duplicate': 4})
    """
    if probes and teacher is None:
        raise ValueError("variants of failed probes need a teacher to check their labels")
    started = time.perf_counter()
    report = SynthesisReport(probes=len(probes))
    limit = plan.limit(len(train))
    sources = [*probes, *plan.sources(train)][:math.ceil(limit / plan.per_example)]
    if not sources or limit == 0:
        return report
    asked = _requests(sources, plan, labels)
    report.asked = len(asked)
    raw = writer.write([prompt for _, prompt, _ in asked], seed)
    if len(raw) != len(asked):
        raise TrainingRequestError(f"the variants' writer answered {len(raw)} of "
                                   f"{len(asked)} prompts")
    seen = {variant_key(e.input) for e in (*train, *probes)} | {variant_key(t) for t in known}
    kept: list[tuple[TrainingExample, str, str]] = []
    for (source, _, target), text in zip(asked, raw, strict=True):
        variant = clean_variant(text)
        if variant is None:
            report.drop("unusable")
            continue
        words, source_words = len(variant.split()), len(source.input.split())
        if not max(2, source_words // 3) <= words <= 3 * source_words + 5:
            report.drop("length")
            continue
        key = variant_key(variant)
        if key in seen:
            report.drop("duplicate")
            continue
        seen.add(key)
        kept.append((source, variant, target))
    probe_ids = {id(p) for p in probes}
    kept = _agreed(kept, answer, same, report, "disagree",
                   skip=lambda source: id(source) in probe_ids)
    if teacher is not None:
        kept = _agreed(kept, teacher, same, report, "teacher_disagree")
    for _ in kept[limit:]:
        report.drop("over_share")
    kept = kept[:limit]
    report.examples = [TrainingExample(
        input=variant, target=target, weight=source.weight, origin=ExampleOrigin.SYNTHETIC,
        domain=source.domain, regime=source.regime, slices=source.slices)
        for source, variant, target in kept]
    report.trained_probes = frozenset(source.input for source, _, _ in kept
                                      if id(source) in probe_ids)
    report.seconds = time.perf_counter() - started
    return report


def _agreed(kept: list[tuple[TrainingExample, str, str]],
            answer: Callable[[list[str]], list[str]], same: Callable[[str, str], bool],
            report: SynthesisReport, reason: str,
            skip: Callable[[TrainingExample], bool] = lambda source: False,
            ) -> list[tuple[TrainingExample, str, str]]:
    """The variants ``answer`` gives the target asked for (or whose source ``skip`` names);
    each other one counts under ``reason``."""
    asked = [variant for source, variant, _ in kept if not skip(source)]
    answers = answer(asked) if asked else []
    if len(answers) != len(asked):
        raise TrainingRequestError(f"a label check answered {len(answers)} of {len(asked)} "
                                   "variants")
    given = iter(answers)
    agreed = []
    for source, variant, target in kept:
        if skip(source) or same(next(given), target):
            agreed.append((source, variant, target))
        else:
            report.drop(reason)
    return agreed
