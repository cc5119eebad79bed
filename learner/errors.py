"""Errors of the learner, rooted in :class:`~driftloop.schemas.errors.DriftloopError`."""

from __future__ import annotations

from ..schemas.errors import DriftloopError

__all__ = [
    "BASE_MODEL_EXIT_STATUS",
    "AdapterFormatError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "ArtifactLocationError",
    "CentroidError",
    "FederationError",
    "LearnerError",
    "MixedDomainError",
    "ModelLoadError",
    "PromptTemplateError",
    "RegistryError",
    "ServingError",
    "TeacherError",
    "TrainingProcessError",
    "TrainingRequestError",
    "UnservableAdapterError",
    "UntrustedModelError",
    "UntrustedVersionError",
    "VersionNotServedError",
]


BASE_MODEL_EXIT_STATUS = 3
"""``driftloop learner`` exits with this when a base model cannot be loaded at all."""


class LearnerError(DriftloopError):
    """Root of the errors raised by ``driftloop.learner``."""


class ModelLoadError(LearnerError):
    """A base model (hub name, local path or packaged file) could not be found or loaded.

    An infrastructure fault, not the request's: the learner records the attempt and exits
    with :data:`BASE_MODEL_EXIT_STATUS` for its supervisor (a request that keeps meeting it
    becomes a dead letter after ``learner.max_attempts``).
    """

    exit_status = BASE_MODEL_EXIT_STATUS


class PartitionMovedError(LearnerError):
    """A rebalance gave the partition of the request in hand to another learner.

    The new owner reads the request again from the group's committed offset, so this learner
    publishes nothing for it and commits nothing: one version, from the owner.
    """


class TrainingRequestError(LearnerError):
    """A training request cannot be trained as asked (no usable examples, unknown labels...).

    Never retriable: the same request fails the same way, so the learner publishes nothing
    for it, dead-letters it and moves on.
    """


class TeacherError(TrainingRequestError):
    """A task's distillation teacher cannot be used: not in the registry and not a loadable
    model, another task kind, or other labels than the student's. Never retriable."""


class MixedDomainError(TrainingRequestError):
    """A task with one adapter per domain got a request whose new examples span domains."""


class CentroidError(TrainingRequestError):
    """Domain embedding centroids that cannot be compared (other dimensions, zero length)."""


class TrainingProcessError(DriftloopError, RuntimeError):
    """A process of a data-parallel update (``learner.data_parallel``) failed or died.

    The machine's fault more than the request's (a GPU out of memory, a killed process, a
    process group that could not form), so on purpose not a :class:`LearnerError` the
    learner dead-letters at once: it is retried like any other failure, with half the batch
    first when ``out_of_memory``, until ``learner.max_attempts``.

    >>> err = TrainingProcessError("rank 1: CUDA out of memory", out_of_memory=True)
    >>> err.out_of_memory, isinstance(err, DriftloopError)
    (True, True)
    """

    def __init__(self, message: str, *, out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.out_of_memory = out_of_memory


class UntrustedModelError(TrainingRequestError):
    """A base model outside the deployment's trust list (``[trust]``), or a listed local
    model whose weights no longer hash to their digest. Never loaded, never retried."""


class UntrustedVersionError(LearnerError):
    """A version event a process must not act on: unsigned or wrongly signed when the
    deployment signs, or naming an untrusted base model."""


class PromptTemplateError(LearnerError):
    """A prompt template id is unknown or a template is malformed."""


class ArtifactError(LearnerError):
    """Root of the artifact store's errors."""


class ArtifactIntegrityError(ArtifactError):
    """An adapter's bytes do not hash to the sha256 that names them: refused, never loaded."""


class ArtifactLocationError(ArtifactError):
    """A URI points outside the store or uses a scheme the settings do not allow."""


class AdapterFormatError(ArtifactError):
    """An adapter folder holds something other than JSON configs and safetensors weights."""


class FederationError(LearnerError):
    """Site adapters cannot be merged as published (another base model or LoRA shape, a zero
    example count, a missing or tampered artifact): the message says which and why."""


class RegistryError(LearnerError):
    """The model-versions log does not hold what an operation needs (unknown version...)."""


class ServingError(LearnerError):
    """Root of the serving side's errors (subscriber, model host, reference service)."""


class UnservableAdapterError(ServingError):
    """A verified adapter this replica cannot serve (another task kind, a different label set
    than its siblings, an unknown format): refused, and the current version stays."""


class VersionNotServedError(ServingError):
    """A request named a task (or version) this replica serves no adapter for yet."""
