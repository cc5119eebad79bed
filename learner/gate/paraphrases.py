"""Paraphrases of a prompt template: the wordings a prompt-stability check asks under.

A :class:`ParaphraseSet` belongs to one template version (``sentiment@1``) and has a version
of its own (``sentiment@1/paraphrases@1``); like templates, a published set never changes:
other wordings are a new version. Each paraphrase rewrites the template's instruction and/or
its input wrapper and keeps the template's answer choices, so the same reader scores every
wording.

How the shipped sets were chosen: each variant keeps what the task asks (the same closed answer
words, the same length limit) and changes one surface an operator changes when "just
rewording" a prompt: the instruction's words, the wrapper around the input, or both at once.
A model whose answer moves under such edits answers the wording, not the question. Two or three
variants keep the check affordable (each probe is generated once per wording).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import PromptTemplateError
from ..models.prompts import PromptTemplate, get_template

__all__ = ["PARAPHRASE_SETS", "Paraphrase", "ParaphraseError", "ParaphraseSet",
           "paraphrases_for", "register_paraphrases"]


class ParaphraseError(PromptTemplateError):
    """A paraphrase set is empty, repeats a wording, names an unknown template, or clashes
    with a published set of the same version."""


@dataclass(frozen=True, slots=True)
class Paraphrase:
    """One other wording of a template: its instruction and input wrapper."""

    instruction: str
    input_format: str = "{input}"


@dataclass(frozen=True, slots=True)
class ParaphraseSet:
    """The versioned paraphrases of one template version.

    Parameters
    ----------
    template_ref
        The template version paraphrased (``id@version``).
    version
        The set's own version (>= 1).
    variants
        At least one wording, each distinct from the others and from the template's own.

    Examples
    --------
    >>> paraphrases = ParaphraseSet("qa@1", 1, (Paraphrase("Reply briefly."),))
    >>> paraphrases.ref
    'qa@1/paraphrases@1'
    >>> [t.user_message("2+2?") for t in paraphrases.templates()]
    ['Answer the question in as few words as possible.\\n\\n2+2?', 'Reply briefly.\\n\\n2+2?']
    >>> ParaphraseSet("qa@1", 1, ())
    Traceback (most recent call last):
    ...
    driftloop.learner.gate.paraphrases.ParaphraseError: paraphrases of qa@1: the list is empty
    """

    template_ref: str
    version: int
    variants: tuple[Paraphrase, ...]

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ParaphraseError(f"paraphrases of {self.template_ref}: version must be >= 1")
        if not self.variants:
            raise ParaphraseError(f"paraphrases of {self.template_ref}: the list is empty")
        if len(set(self.variants)) != len(self.variants):
            raise ParaphraseError(f"paraphrases of {self.template_ref}: a wording is repeated")
        self.templates()  # an unknown template, a wrapper without {input}, its own wording

    @property
    def ref(self) -> str:
        return f"{self.template_ref}/paraphrases@{self.version}"

    def templates(self) -> list[PromptTemplate]:
        """The template itself, then one template per paraphrase (same id, choices)."""
        if "@" not in self.template_ref:
            raise ParaphraseError(f"paraphrases need a template version (id@version), "
                                  f"got {self.template_ref!r}")
        base = get_template(self.template_ref)
        out = [base]
        for variant in self.variants:
            # PromptTemplate validates the wrapper (it must hold {input}).
            wording = replace(base, instruction=variant.instruction,
                              input_format=variant.input_format)
            if wording.user_message("{x}") == base.user_message("{x}"):
                raise ParaphraseError(f"paraphrases of {self.template_ref}: a variant is the "
                                      "template's own wording")
            out.append(wording)
        return out


PARAPHRASE_SETS: dict[str, ParaphraseSet] = {}


def register_paraphrases(paraphrases: ParaphraseSet) -> ParaphraseSet:
    """Publish a set; the same ref with other wordings is refused (publish a new version).

    >>> register_paraphrases(ParaphraseSet("qa@1", 1, (Paraphrase("Reply briefly."),)))
    Traceback (most recent call last):
    ...
    driftloop.learner.gate.paraphrases.ParaphraseError: qa@1/paraphrases@1 already exists with ...
    """
    known = PARAPHRASE_SETS.get(paraphrases.ref)
    if known is not None and known != paraphrases:
        raise ParaphraseError(f"{paraphrases.ref} already exists with other wordings; "
                              "publish a new version instead")
    PARAPHRASE_SETS[paraphrases.ref] = paraphrases
    return paraphrases


def paraphrases_for(template: PromptTemplate) -> ParaphraseSet | None:
    """The latest paraphrase set of a template version (None: it has none).

    >>> paraphrases_for(get_template("sentiment@1")).ref
    'sentiment@1/paraphrases@1'
    >>> paraphrases_for(get_template("plain")) is None
    True
    """
    sets = [s for s in PARAPHRASE_SETS.values() if s.template_ref == template.ref]
    return max(sets, key=lambda s: s.version) if sets else None


register_paraphrases(ParaphraseSet("sentiment@1", 1, (
    # The instruction's words changed; answer words and the one-word limit kept.
    Paraphrase("Classify the sentiment of the text below as positive or negative. "
               "Reply with a single word.", "Text: {input}"),
    # The input wrapper changed; the instruction kept.
    Paraphrase("Is the sentiment of this text positive or negative? Answer with one word.",
               'Review: "{input}"'),
    # Both changed: the question asked after the constraint, the input bare.
    Paraphrase("Answer with one word, positive or negative: what is the sentiment of "
               "this text?", "{input}"),
)))
register_paraphrases(ParaphraseSet("qa@1", 1, (
    Paraphrase("Give a short answer to the question."),
    Paraphrase("Answer the question in as few words as possible.", "Question: {input}"),
)))
