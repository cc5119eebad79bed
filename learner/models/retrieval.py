"""A retrieval head: a classifier's answer mixed with the votes of its nearest labelled texts.

After a shift a LoRA update needs a hundred or more labels of the new domain to move the
adapter, while the labelled texts themselves say a lot from the start: measured offline on
the first shifted domain of each live-loop stream (2026-12-05, ``tools/bench``-style script,
the bootstrap version as parent, 200 held-out texts), the parent's answers mixed half and
half with the votes of the 8 nearest of 32 labelled new-domain texts scored 0.69 on VADER
movie reviews (parent 0.52, a LoRA update on the same 32: 0.53) and 0.45 on TREC question
topics (parent 0.11, LoRA 0.23; three seeds).

A :class:`RetrievalBank` holds the pooled sentence embeddings (the classifier head's input)
of labelled texts, L2-normalised, and their label indices, in ``retrieval_bank.safetensors``
beside the adapter (a PEFT process that loads the adapter ignores the file and answers
without it). Its probabilities for a query are a softmax over the cosine similarities of the
``k`` nearest texts (temperature ``temperature``) summed per label; the answer is
``(1 - weight) * classifier + weight * neighbours``. The embeddings are only valid for the
encoder that made them: a bank travels with the adapter weights it was computed under.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import AdapterFormatError

__all__ = ["BANK_FILE", "WEIGHT_GRID", "RetrievalBank", "RetrievalClassifier"]

BANK_FILE = "retrieval_bank.safetensors"

WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75)
"""The neighbours' shares :meth:`RetrievalBank.fitted` chooses from (all votes and no
classifier is left out: one label's run of texts would outvote a model that knows better)."""


@dataclass(frozen=True)
class RetrievalBank:
    """Labelled embeddings, and how their votes mix with the classifier's probabilities.

    Examples
    --------
    >>> bank = RetrievalBank(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]),
    ...                      num_labels=2, k=1, weight=1.0)
    >>> bank.mix(torch.tensor([[0.9, 0.1]]), torch.tensor([[0.1, 2.0]])).tolist()
    [[0.0, 1.0]]
    >>> len(bank.extend(torch.tensor([[3.0, 4.0]]), torch.tensor([1]), limit=2))  # newest kept
    2
    """

    embeddings: torch.Tensor
    """``[n, hidden]``, L2-normalised rows (normalised on construction)."""
    labels: torch.Tensor
    """``[n]`` label indices into the classifier's label order."""
    num_labels: int
    k: int = 8
    weight: float = 0.5
    temperature: float = 0.05

    def __post_init__(self) -> None:
        if self.embeddings.ndim != 2 or self.labels.shape != (self.embeddings.shape[0],):
            raise ValueError(f"need [n, hidden] embeddings and [n] labels, got "
                             f"{tuple(self.embeddings.shape)} and {tuple(self.labels.shape)}")
        if len(self) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_labels):
            raise ValueError(f"label indices must be in [0, {self.num_labels})")
        if self.k < 1 or not 0.0 <= self.weight <= 1.0 or self.temperature <= 0:
            raise ValueError(f"need k >= 1, weight in [0, 1], temperature > 0; got {self.k}, "
                             f"{self.weight}, {self.temperature}")
        object.__setattr__(self, "embeddings", torch.nn.functional.normalize(
            self.embeddings.detach().float().cpu(), dim=-1))
        object.__setattr__(self, "labels", self.labels.detach().long().cpu())

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def votes(self, queries: torch.Tensor, *, exclude: torch.Tensor | None = None) -> torch.Tensor:
        """``[q, num_labels]``: each query's neighbours' votes, summing to one.

        ``exclude``: ``[q]`` a row of the bank each query may not vote with (its own, when
        the query is one of the bank's texts; -1 for none)."""
        if not len(self):
            return torch.full((queries.shape[0], self.num_labels), 1.0 / self.num_labels)
        similar = torch.nn.functional.normalize(queries.float().cpu(), dim=-1) @ self.embeddings.T
        if exclude is not None:
            own = exclude.long().cpu()
            mine = own >= 0
            similar[mine.nonzero().squeeze(-1), own[mine]] = -math.inf
        top, index = similar.topk(min(self.k, len(self)), dim=-1)
        weights = torch.softmax(top / self.temperature, dim=-1)
        votes = torch.zeros(queries.shape[0], self.num_labels)
        return votes.scatter_add_(1, self.labels[index], weights)

    def mix(self, probabilities: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        """The classifier's ``probabilities`` mixed with the votes for ``queries``."""
        mixed = ((1.0 - self.weight) * probabilities.float().cpu()
                 + self.weight * self.votes(queries))
        return mixed.to(probabilities.device)

    def hits(self, probabilities: torch.Tensor, rows: torch.Tensor,
             weights: Sequence[float]) -> list[list[bool]]:
        """For each of ``weights``: whether the answer mixed at that weight is right for each
        of the bank's own texts at ``rows``, each voted on by its neighbours other than
        itself (leave one out; the votes are counted once for every weight) and mixed with
        ``probabilities`` (``[len(rows), num_labels]``, the classifier's on them)."""
        index = rows.long().cpu()
        votes = self.votes(self.embeddings[index], exclude=index)
        probabilities = probabilities.float().cpu()
        truth = self.labels[index]
        return [(((1.0 - w) * probabilities + w * votes).argmax(dim=-1) == truth).tolist()
                for w in weights]

    def fitted(self, probabilities: torch.Tensor, rows: torch.Tensor,
               grid: tuple[float, ...] = WEIGHT_GRID) -> RetrievalBank:
        """This bank with the weight from ``grid`` whose mixed answers get most of the bank's
        own texts at ``rows`` right (:meth:`hits`; ``probabilities`` must come from a
        classifier not trained on them); the smallest weight on a tie, 0 when ``rows`` is
        empty.

        >>> bank = RetrievalBank(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]),
        ...                      torch.tensor([0, 0, 1, 1]), num_labels=2, k=1)
        >>> bank.fitted(torch.tensor([[0.4, 0.6]] * 4), torch.arange(4)).weight  # a bad model
        0.25
        >>> bank.fitted(torch.tensor([[0.9, 0.1]] * 2 + [[0.1, 0.9]] * 2), torch.arange(4)).weight
        0.0
        """
        if not len(rows):
            return replace(self, weight=0.0)
        right = [sum(hits) for hits in self.hits(probabilities, rows, grid)]
        return replace(self, weight=grid[right.index(max(right))])

    def extend(self, embeddings: torch.Tensor, labels: torch.Tensor, *,
               limit: int) -> RetrievalBank:
        """This bank and ``embeddings`` (newest last), the newest ``limit`` kept."""
        both = torch.cat([self.embeddings, embeddings.detach().float().cpu()])[-limit:]
        return RetrievalBank(both, torch.cat([self.labels, labels.long().cpu()])[-limit:],
                             self.num_labels, self.k, self.weight, self.temperature)

    def settings(self) -> dict[str, Any]:
        """What ``driftloop.json`` records of the bank (its tensors are in :data:`BANK_FILE`)."""
        return {"size": len(self), "k": self.k, "weight": self.weight,
                "temperature": self.temperature}

    def save(self, folder: Path) -> Path:
        """Write the tensors into ``folder`` (safetensors); return the file."""
        from safetensors.torch import save_file

        path = folder / BANK_FILE
        # Float32, as the gate scored them: half precision rounds each coordinate by up to
        # 5e-4 of its value, which can reorder near neighbours, so a served answer could
        # differ from the gated one.
        save_file({"embeddings": self.embeddings.contiguous(),
                   "labels": self.labels.contiguous()}, str(path))
        return path

    @classmethod
    def load(cls, folder: Path, settings: dict[str, Any] | None,
             num_labels: int) -> RetrievalBank | None:
        """The bank an adapter folder carries (``settings``: its ``driftloop.json`` entry),
        or None when it carries none."""
        path = folder / BANK_FILE
        if settings is None and not path.is_file():
            return None
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
            return cls(tensors["embeddings"].float(), tensors["labels"], num_labels,
                       k=int(settings["k"]), weight=float(settings["weight"]),
                       temperature=float(settings["temperature"]))
        except (OSError, KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
            raise AdapterFormatError(f"{folder.name}: unreadable retrieval bank: {exc}") from exc


class RetrievalClassifier:
    """A classification PEFT model whose answers are mixed with a bank's votes; called like
    the model, it returns log-probabilities in place of logits (so a softmax, an argmax or a
    cross-entropy of them read the mixed answer), and :attr:`pooled` keeps the last batch's
    sentence embeddings.

    ``head`` is the module whose input is the pooled embedding (the classifier's head).
    """

    def __init__(self, model: Any, head: torch.nn.Module, bank: RetrievalBank | None) -> None:
        self.model = model
        self.bank = bank
        self.pooled: torch.Tensor | None = None
        self._hook = head.register_forward_pre_hook(self._keep)

    def _keep(self, _module: Any, args: tuple[Any, ...]) -> None:
        self.pooled = args[0].detach()

    def close(self) -> None:
        """Stop watching the head (the model is used without the bank again)."""
        self._hook.remove()

    def eval(self) -> RetrievalClassifier:
        self.model.eval()
        return self

    def __call__(self, **inputs: Any) -> torch.Tensor:
        logits = self.model(**inputs)
        if self.bank is None or self.pooled is None:
            return logits
        mixed = self.bank.mix(logits.float().softmax(dim=-1), self.pooled)
        return mixed.clamp_min(math.ldexp(1.0, -60)).log()

    @torch.no_grad()
    def embed(self, tokenizer: Any, texts: list[str], *, device: torch.device,
              max_length: int, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """``[len(texts), hidden]``, the pooled embeddings of ``texts`` (the head's input),
        and ``[len(texts), labels]``, the classifier's own probabilities (without the bank)."""
        self.model.eval()
        rows, probabilities = [], []
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                max_length=max_length, return_tensors="pt")
            logits = self.model(input_ids=encoded["input_ids"].to(device),
                                attention_mask=encoded["attention_mask"].to(device))
            assert self.pooled is not None
            rows.append(self.pooled.float().cpu())
            probabilities.append(logits.float().softmax(dim=-1).cpu())
        if not rows:
            return torch.zeros(0, 0), torch.zeros(0, 0)
        return torch.cat(rows), torch.cat(probabilities)
