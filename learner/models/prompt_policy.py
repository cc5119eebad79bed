"""A generation version's prompt: its template, and the worked examples shown before an input.

The prompt arm of a generation update (:mod:`driftloop.learner.training.prompt_arm`) serves
the parent's adapter unchanged under a revised prompt: another version of the task's
template, and ``shots`` worked examples (labelled texts of the replay buffer) shown before
each input. The examples travel with the adapter (:data:`POLICY_FILE`, JSON, beside the
weights); for each input the ``shots`` nearest by the base model's input-token embedding
mean (:mod:`.token_means`: no adapter changes it, so the vectors hold for every version) are
shown, nearest last (closest to the question), never the input itself. The learner's gate
and the serving host render prompts through the same :class:`ShotIndex`, so what the gate
judged is what serves.

Examples
--------
>>> import torch
>>> policy = PromptPolicy("sentiment@1", shots=1, examples=(("so good", "positive"),
...                                                         ("so bad", "negative")))
>>> index = ShotIndex(policy, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
>>> index.shots_for(["quite good", "so bad"], torch.tensor([[0.9, 0.1], [0.0, 1.0]]))
[[('so good', 'positive')], [('so good', 'positive')]]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AdapterFormatError

__all__ = ["POLICY_FILE", "PromptPolicy", "ShotIndex"]

POLICY_FILE = "prompt_policy.json"
"""The file of an adapter folder that holds its prompt policy (absent: the template alone)."""


@dataclass(frozen=True, slots=True)
class PromptPolicy:
    """How a version's prompts are written: template and worked examples.

    Parameters
    ----------
    template_ref
        The prompt template (``id@version``).
    shots
        Worked examples shown before each input (0: the template alone).
    examples
        ``(input, answer)`` pairs the shots are chosen from.
    """

    template_ref: str
    shots: int = 0
    examples: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.shots < 0:
            raise ValueError(f"shots must be >= 0, got {self.shots}")
        if self.shots and not self.examples:
            raise ValueError("a policy with shots needs examples to choose them from")

    @property
    def digest(self) -> str:
        """What identifies the policy (its template, shots and examples).

        >>> PromptPolicy("a@1").digest == PromptPolicy("a@1").digest != PromptPolicy("a@2").digest
        True
        """
        body = json.dumps([self.template_ref, self.shots, self.examples])
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def describe(self) -> str:
        """One line for an operator.

        >>> PromptPolicy("qa@2", 4, (("q", "a"),) * 9).describe()
        'qa@2 with 4 nearest of 9 worked examples'
        >>> PromptPolicy("qa@1").describe()
        'qa@1 alone'
        """
        if not self.shots:
            return f"{self.template_ref} alone"
        return (f"{self.template_ref} with {self.shots} nearest of {len(self.examples)} "
                "worked examples")

    def metadata(self) -> dict[str, Any]:
        """What a version event says of it."""
        return {"template": self.template_ref, "shots": self.shots,
                "examples": len(self.examples), "digest": self.digest}

    def save(self, folder: Path) -> None:
        """Write the policy into an adapter folder."""
        body = {"template": self.template_ref, "shots": self.shots,
                "examples": [list(pair) for pair in self.examples]}
        (folder / POLICY_FILE).write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> PromptPolicy | None:
        """The policy an adapter folder carries, or None; :class:`AdapterFormatError` for a
        malformed one.

        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> PromptPolicy.load(folder) is None
        True
        >>> PromptPolicy("s@1", 1, (("a", "b"),)).save(folder)
        >>> PromptPolicy.load(folder)
        PromptPolicy(template_ref='s@1', shots=1, examples=(('a', 'b'),))
        """
        path = folder / POLICY_FILE
        if not path.is_file():
            return None
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            examples = tuple((str(text), str(answer)) for text, answer in body["examples"])
            return cls(str(body["template"]), int(body["shots"]), examples)
        except (ValueError, KeyError, TypeError) as exc:
            raise AdapterFormatError(f"{path}: not a prompt policy ({exc})") from exc


class ShotIndex:
    """A policy's examples with their vectors: the worked examples for each input.

    ``vectors``: one row per example of the policy (the base model's input-token embedding
    means, :func:`~driftloop.learner.models.token_means.input_embeddings`).
    """

    def __init__(self, policy: PromptPolicy, vectors: Any) -> None:
        import torch

        if len(vectors) != len(policy.examples):
            raise ValueError(f"{len(vectors)} vectors for {len(policy.examples)} examples")
        self.policy = policy
        self._vectors = torch.nn.functional.normalize(torch.as_tensor(vectors).float(), dim=-1)
        self._rows: dict[str, list[int]] = {}
        for row, (text, _) in enumerate(policy.examples):
            self._rows.setdefault(text, []).append(row)

    @classmethod
    def build(cls, policy: PromptPolicy, model: Any, tokenizer: Any, *,
              max_length: int) -> ShotIndex:
        """The index of ``policy`` under ``model``'s input embedding table."""
        from .token_means import input_embeddings

        texts = [text for text, _ in policy.examples]
        vectors = input_embeddings(model, tokenizer, texts, max_length=max_length) if texts else []
        return cls(policy, vectors)

    def shots_for(self, texts: Sequence[str], vectors: Any) -> list[list[tuple[str, str]]]:
        """For each text (its vector in ``vectors``), the ``shots`` nearest examples by
        cosine similarity, nearest last, never the text itself."""
        import torch

        k = self.policy.shots
        if not k or not len(texts):
            return [[] for _ in texts]
        queries = torch.nn.functional.normalize(torch.as_tensor(vectors).float(), dim=-1)
        similarity = queries @ self._vectors.T
        examples = self.policy.examples
        for row, text in enumerate(texts):  # an input is never its own worked example
            for column in self._rows.get(text, ()):
                similarity[row, column] = float("-inf")
        take = min(k, len(examples))
        order = similarity.topk(take, dim=1).indices.tolist()
        out = []
        for row, picks in enumerate(order):
            chosen = [examples[i] for i in picks if similarity[row, i] != float("-inf")]
            out.append(chosen[::-1])  # the nearest closest to the question
        return out
