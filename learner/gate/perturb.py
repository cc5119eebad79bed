"""Robustness testing: the gate's held-out texts, slightly changed, asked of both versions.

A candidate that learnt the new regime's surface (its casing, its punctuation, a typo-free
register) can gain on held-out texts and lose on the same texts written a little
differently. Each perturbation below changes a text the way real traffic varies, keeps its
label (or, for ``negation``, changes it as the task says a negation does), and is a
function of the text, the kind and the seed only: parent and candidate, and a replay of the
update, see the same perturbed texts. A perturbation that cannot apply to a text (a text of
one word has no words to swap) gives None, and the text is left out of that kind.

Kinds
-----
``typo``
    One letter of a word of four or more letters dropped or doubled.
``char_swap``
    Two neighbouring letters inside such a word swapped.
``case``
    The text lower-cased (or upper-cased when it has no capitals).
``punctuation``
    Every punctuation mark removed (or an ellipsis added when it has none).
``word_swap``
    Two neighbouring words swapped.
``negation``
    "not" added after the first auxiliary verb ("is", "was", "can", ...) or the first "not"
    or "n't" removed; the expected label becomes ``negation[label]`` (a sentiment task maps
    positive to negative and back). Texts whose label the map does not name are left out.
    Rule-written negations are crude (sarcasm, double negatives): the kind reports how
    often a version follows a negation, which both versions face alike.
``paraphrase``
    The text rewritten by a generation model (``paraphrase``: a function from texts to
    their rewrites, the learner's :func:`driftloop.learner.training.synthesis.paraphraser`),
    the label kept; a rewrite that is empty or says the same words (case, spaces and
    punctuation aside) is left out. Written once per update, so parent and candidate see
    the same ones; at most ``paraphrase_limit`` texts (a generation each). The only kind
    that reads a model: it catches a version that learnt the wording of its texts rather
    than what they say.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping, Sequence

from ...schemas.events import TrainingExample
from ..models.prompts import variant_key

__all__ = ["MODEL_WRITTEN", "PERTURBATIONS", "perturb", "robustness_suite"]

_WORD = re.compile(r"[^\W\d_]{4,}")
_AUXILIARY = re.compile(r"\b(is|was|are|were|do|does|did|can|could|will|would|should|has|"
                        r"have|had|must)\b", re.IGNORECASE)
_NEGATED = re.compile(r"\s+not\b|n't\b", re.IGNORECASE)
_PUNCTUATION = re.compile(r"[^\w\s]")


def _typo(text: str, rng: random.Random) -> str | None:
    words = list(_WORD.finditer(text))
    if not words:
        return None
    word = rng.choice(words)
    at = rng.randrange(word.start() + 1, word.end() - 1)  # never the first or last letter
    if rng.random() < 0.5:
        return text[:at] + text[at + 1:]
    return text[:at] + text[at] + text[at:]


def _char_swap(text: str, rng: random.Random) -> str | None:
    words = [w for w in _WORD.finditer(text) if len(set(w.group()[1:-1])) > 1]
    if not words:
        return None
    word = rng.choice(words)
    inner = [i for i in range(word.start() + 1, word.end() - 2) if text[i] != text[i + 1]]
    if not inner:
        return None
    at = rng.choice(inner)
    return text[:at] + text[at + 1] + text[at] + text[at + 2:]


def _case(text: str, rng: random.Random) -> str | None:
    changed = text.lower() if text != text.lower() else text.upper()
    return changed if changed != text else None


def _punctuation(text: str, rng: random.Random) -> str | None:
    if _PUNCTUATION.search(text):
        return " ".join(_PUNCTUATION.sub("", text).split()) or None
    return text.rstrip() + "..."


def _word_swap(text: str, rng: random.Random) -> str | None:
    words = text.split()
    if len(words) < 3:
        return None
    at = rng.randrange(len(words) - 1)
    words[at], words[at + 1] = words[at + 1], words[at]
    return " ".join(words)


def _negate(text: str, rng: random.Random) -> str | None:
    negated = _NEGATED.search(text)
    if negated is not None:
        return text[:negated.start()] + text[negated.end():]
    auxiliary = _AUXILIARY.search(text)
    if auxiliary is None:
        return None
    return text[:auxiliary.end()] + " not" + text[auxiliary.end():]


_KINDS: dict[str, Callable[[str, random.Random], str | None]] = {
    "typo": _typo, "char_swap": _char_swap, "case": _case, "punctuation": _punctuation,
    "word_swap": _word_swap, "negation": _negate}
MODEL_WRITTEN = ("paraphrase",)
"""The kinds a model writes (not a rule of :data:`PERTURBATIONS`)."""

PERTURBATIONS: tuple[str, ...] = tuple(_KINDS)


def perturb(text: str, kind: str, seed: int = 0) -> str | None:
    """The text changed by one perturbation of ``kind``; None when it cannot apply.

    >>> perturb("The film was great.", "negation")
    'The film was not great.'
    >>> perturb("The film wasn't great.", "negation")
    'The film was great.'
    >>> perturb("The film was great.", "case"), perturb("The film was great.", "punctuation")
    ('the film was great.', 'The film was great')
    >>> perturb("ok", "typo") is None, perturb("great", "typo") == perturb("great", "typo")
    (True, True)
    """
    change = _KINDS.get(kind)
    if change is None:
        raise ValueError(f"unknown perturbation {kind!r}; known: {', '.join(PERTURBATIONS)}")
    digest = hashlib.sha256(f"{seed}\0{kind}\0{text}".encode()).digest()
    changed = change(text, random.Random(int.from_bytes(digest[:8], "big")))
    return changed if changed is not None and changed != text else None


def robustness_suite(examples: Sequence[TrainingExample], kinds: Sequence[str], *,
                     negation: Mapping[str, str] | None = None, limit: int = 200,
                     seed: int = 0,
                     paraphrase: Callable[[list[str]], list[str | None]] | None = None,
                     paraphrase_limit: int = 32) -> list[tuple[str, TrainingExample]]:
    """``(kind, perturbed example)`` for each kind and up to ``limit`` of ``examples``.

    Which texts each kind takes is a hash of the text and the seed (the same texts for the
    parent and the candidate, whatever order the gate holds them in); duplicates count once.

    Examples
    --------
    >>> held = [TrainingExample(input="The plot is thin.", target="negative"),
    ...         TrainingExample(input="Loved it", target="positive")]
    >>> for kind, e in robustness_suite(held, ["negation", "word_swap"],
    ...                                 negation={"negative": "positive"}):
    ...     print(kind, repr(e.input), e.target)
    negation 'The plot is not thin.' positive
    word_swap 'plot The is thin.' negative
    """
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    unique = list({e.input: e for e in examples}.values())
    suite: list[tuple[str, TrainingExample]] = []
    for kind in kinds:
        if kind == "negation" and not negation:
            raise ValueError("the negation perturbation needs the task's negation labels "
                             "(which label a negated text takes)")
        ranked = sorted(unique, key=lambda e: hashlib.sha256(
            f"{seed}\0{kind}\0{e.input}".encode()).digest())
        if kind == "paraphrase":
            if paraphrase is None:
                raise ValueError("the paraphrase perturbation needs a paraphraser (a model "
                                 "that rewrites texts)")
            suite += _paraphrased(ranked[:min(limit, paraphrase_limit)], paraphrase)
            continue
        taken = 0
        for example in ranked:
            if taken >= limit:
                break
            target = example.target
            if kind == "negation":
                target = (negation or {}).get(example.target, "")
                if not target:
                    continue
            changed = perturb(example.input, kind, seed)
            if changed is None:
                continue
            suite.append((kind, example.model_copy(update={"input": changed,
                                                            "target": target})))
            taken += 1
    return suite


def _paraphrased(examples: Sequence[TrainingExample],
                 paraphrase: Callable[[list[str]], list[str | None]]
                 ) -> list[tuple[str, TrainingExample]]:
    """The examples rewritten by ``paraphrase``, label kept; rewrites that are empty or the
    same words left out.

    >>> held = [TrainingExample(input="Loved it.", target="positive"),
    ...         TrainingExample(input="Dull.", target="negative")]
    >>> _paraphrased(held, lambda texts: ["I adored it.", "dull"])
    [('paraphrase', TrainingExample(input='I adored it.', target='positive', ...))]
    """
    if not examples:
        return []
    written = paraphrase([e.input for e in examples])
    if len(written) != len(examples):
        raise ValueError(f"{len(written)} paraphrases for {len(examples)} texts")
    return [("paraphrase", e.model_copy(update={"input": text}))
            for e, text in zip(examples, written, strict=True)
            if text and variant_key(text) != variant_key(e.input)]
