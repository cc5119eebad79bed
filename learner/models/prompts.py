"""Prompt templates for generation tasks: instruction + input -> prompt, then the target.

A template is named ``<id>@<version>``; a version never changes once published, so a model
version that records its template can be replayed exactly. Examples are rendered through the
tokenizer's chat template when it has one (instruct models answer better in their own
format), and only the target tokens carry loss.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any

from ..errors import PromptTemplateError

__all__ = ["BUILTIN_TEMPLATES", "IGNORE_INDEX", "PromptTemplate", "chat_prompt", "get_template",
           "normalize_answer", "register", "variant_key", "versions"]

# Label value PyTorch's cross-entropy skips: prompt tokens carry no loss.
IGNORE_INDEX = -100


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """How one example becomes a prompt and a target.

    Examples
    --------
    >>> t = PromptTemplate("sentiment", 1, "Answer with one word.", "Text: {input}")
    >>> t.ref
    'sentiment@1'
    >>> t.user_message("so good")
    'Answer with one word.\\n\\nText: so good'
    >>> PromptTemplate("bad", 1, "", "no placeholder")
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.PromptTemplateError: template bad@1: input_format needs {input}
    """

    id: str
    version: int
    instruction: str = ""
    input_format: str = "{input}"
    # The answers the instruction asks for (a closed question); empty for free text.
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id or "@" in self.id:
            raise PromptTemplateError(f"template id must be non-empty without '@', got {self.id!r}")
        if self.version < 1:
            raise PromptTemplateError(f"template {self.id}: version must be >= 1")
        if "{input}" not in self.input_format:
            raise PromptTemplateError(f"template {self.ref}: input_format needs {{input}}")

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def sha256(self) -> str:
        """Digest of the whole content: a model version records it beside :attr:`ref`, so a
        template changed without a new version is caught where the two disagree.

        >>> a = PromptTemplate("s", 1, "Say yes.")
        >>> a.sha256 == PromptTemplate("s", 1, "Say yes.").sha256 != PromptTemplate("s", 1).sha256
        True
        """
        return hashlib.sha256(json.dumps(astuple(self)).encode()).hexdigest()

    def read_answer(self, text: str) -> str | None:
        """The choice a generated answer names first, or None (free text, or none named).

        >>> t = PromptTemplate("s", 1, "Positive or negative?", choices=("positive", "negative"))
        >>> t.read_answer("Negative."), t.read_answer("It is positive, mostly"), t.read_answer("?")
        ('negative', 'positive', None)
        """
        words = [normalize_answer(word) for word in text.split()]
        return next((word for word in words if word in self.choices), None)

    def user_message(self, text: str, shots: Sequence[tuple[str, str]] = ()) -> str:
        """The user's turn: the instruction, then worked examples (``shots``: ``(input,
        answer)`` pairs shown before the text), then the text.

        >>> t = PromptTemplate("s", 1, "One word.", "Text: {input}")
        >>> print(t.user_message("so bad", shots=[("so good", "positive")]))
        One word.
        <BLANKLINE>
        Text: so good
        Answer: positive
        <BLANKLINE>
        Text: so bad
        """
        parts = [self.instruction] if self.instruction else []
        parts += [f"{self.input_format.replace('{input}', shot)}\nAnswer: {answer}"
                  for shot, answer in shots]
        parts.append(self.input_format.replace("{input}", text))
        return "\n\n".join(parts)

    def prompt(self, tokenizer: Any, text: str, shots: Sequence[tuple[str, str]] = ()) -> str:
        """The full prompt text, ending where the model's answer starts."""
        message = self.user_message(text, shots)
        return chat_prompt(tokenizer, message) or f"{message}\nAnswer: "

    def encode(self, tokenizer: Any, text: str, target: str,
               max_length: int) -> tuple[list[int], list[int]]:
        """``(input_ids, labels)`` with labels masked to :data:`IGNORE_INDEX` on the prompt.

        The target ends with the end-of-sequence token so the model learns to stop. A prompt
        too long for ``max_length`` loses its start, never the target.
        """
        prompt_ids = tokenizer(self.prompt(tokenizer, text), add_special_tokens=False)["input_ids"]
        target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            target_ids = [*target_ids, tokenizer.eos_token_id]
        room = max_length - len(target_ids)
        if room < 1:
            raise PromptTemplateError(
                f"target of {len(target_ids)} tokens does not fit max_length={max_length}")
        prompt_ids = prompt_ids[-room:]
        return prompt_ids + target_ids, [IGNORE_INDEX] * len(prompt_ids) + target_ids


BUILTIN_TEMPLATES: dict[str, PromptTemplate] = {}


def chat_prompt(tokenizer: Any, message: str) -> str | None:
    """``message`` as the user's turn in the tokenizer's chat template, ending where the
    model's answer starts; None when the tokenizer has no chat template."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    return tokenizer.apply_chat_template([{"role": "user", "content": message}],
                                         add_generation_prompt=True, tokenize=False)


def register(template: PromptTemplate) -> PromptTemplate:
    """Add a template; re-registering a ref with different content is refused."""
    known = BUILTIN_TEMPLATES.get(template.ref)
    if known is not None and known != template:
        raise PromptTemplateError(f"template {template.ref} already exists with other content; "
                                  "publish a new version instead")
    BUILTIN_TEMPLATES[template.ref] = template
    return template


def normalize_answer(text: str) -> str:
    """The form exact match compares.

    >>> normalize_answer("  Paris.\\n")
    'paris'
    """
    return text.strip().strip(string.punctuation + " ").casefold()


def variant_key(text: str) -> str:
    """What two texts must differ in to count as different: case, spaces and punctuation
    do not count.

    >>> variant_key("The  Film, was DULL!") == variant_key("the film was dull")
    True
    """
    kept = text.casefold().translate(str.maketrans("", "", string.punctuation))
    return " ".join(kept.split())


def versions(template_id: str) -> list[PromptTemplate]:
    """Every registered version of a template, oldest first.

    >>> [t.ref for t in versions("sentiment")]
    ['sentiment@1']
    """
    return sorted((t for t in BUILTIN_TEMPLATES.values() if t.id == template_id),
                  key=lambda t: t.version)


def get_template(ref: str | None) -> PromptTemplate:
    """A template by ``id@version``, or by ``id`` alone (its latest version).

    >>> get_template("sentiment").ref
    'sentiment@1'
    >>> get_template(None).ref
    'plain@1'
    >>> get_template("sentiment@7")
    Traceback (most recent call last):
    ...
    driftloop.learner.errors.PromptTemplateError: prompt template sentiment has no version 7; ...
    """
    if ref is None:
        ref = "plain"
    if ref in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[ref]
    template_id, at, version = ref.partition("@")
    known = versions(template_id)
    if known and at:
        raise PromptTemplateError(f"prompt template {template_id} has no version {version}; "
                                  f"versions: {[t.version for t in known]}")
    if not known:
        raise PromptTemplateError(
            f"unknown prompt template {ref!r}; known: {sorted(BUILTIN_TEMPLATES)}")
    return known[-1]


register(PromptTemplate("plain", 1))
register(PromptTemplate(
    "sentiment", 1,
    "Is the sentiment of this text positive or negative? Answer with one word.",
    "Text: {input}", choices=("positive", "negative")))
register(PromptTemplate("qa", 1, "Answer the question in as few words as possible.", "{input}"))
