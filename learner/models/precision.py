"""How a base model's weights are held: their dtype, and 4- or 8-bit quantization on CUDA.

A 1-8B production model must fit on one GPU box beside its adapters' training. Two settings
decide it (``[learner]``):

* ``base_dtype``: ``auto`` holds the weights in bf16 on a CUDA device that has it (fp16 on
  one without), in float32 on the CPU (whose bf16 matmuls are slow); ``float32``,
  ``bfloat16`` and ``float16`` ask for that dtype wherever the model runs;
* ``base_quantization``: ``4bit`` (NF4, double quantization, computing in the dtype above:
  QLoRA's recipe) or ``8bit`` through bitsandbytes, CUDA only, ``None`` by default.

Adapters stay in float32 whatever the base's dtype (PEFT casts the activations it gets), so
a version trained on a bf16 or 4-bit base loads on a float32 one and back.

Examples
--------
>>> BasePrecision().loading_kwargs(cuda=False)
{'dtype': torch.float32}
>>> BasePrecision("bfloat16").loading_kwargs(cuda=False)
{'dtype': torch.bfloat16}
>>> BasePrecision(quantization="4bit").loading_kwargs(cuda=False)
Traceback (most recent call last):
...
driftloop.learner.errors.ModelLoadError: base_quantization = "4bit" needs a CUDA device ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ModelLoadError

if TYPE_CHECKING:
    import torch

__all__ = ["BaseDtype", "BasePrecision", "Quantization", "cuda_half_dtype", "cuda_in_use"]

BaseDtype = Literal["auto", "float32", "bfloat16", "float16"]
Quantization = Literal["4bit", "8bit"]


def cuda_in_use(device: str = "auto") -> bool:
    """Whether a process with ``learner.device = device`` computes on CUDA."""
    import torch

    return device != "cpu" and torch.cuda.is_available()


def cuda_half_dtype() -> torch.dtype:
    """The 16-bit dtype of this CUDA device: bf16 where it has it, else fp16 (autocast's,
    and the base weights' under ``base_dtype = "auto"``)."""
    import torch

    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@dataclass(frozen=True, slots=True)
class BasePrecision:
    """The dtype and quantization a base model is loaded with."""

    dtype: BaseDtype = "auto"
    quantization: Quantization | None = None

    def torch_dtype(self, *, cuda: bool) -> torch.dtype:
        """The dtype of the weights (of the computation, for a quantized model)."""
        import torch

        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        if not cuda:
            return torch.float32
        return cuda_half_dtype()

    def loading_kwargs(self, *, cuda: bool) -> dict[str, Any]:
        """What ``from_pretrained`` is given. Raises :class:`ModelLoadError` for a
        quantization this process cannot do (no CUDA, no bitsandbytes)."""
        dtype = self.torch_dtype(cuda=cuda)
        if self.quantization is None:
            return {"dtype": dtype}
        if not cuda:
            raise ModelLoadError(f"base_quantization = \"{self.quantization}\" needs a CUDA "
                                 "device (bitsandbytes quantizes on the GPU); this process "
                                 "runs on the CPU: set it to None")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise ModelLoadError(f"base_quantization = \"{self.quantization}\" needs the "
                                 "bitsandbytes package: pip install bitsandbytes") from exc
        from transformers import BitsAndBytesConfig

        if self.quantization == "4bit":
            config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                        bnb_4bit_use_double_quant=True,
                                        bnb_4bit_compute_dtype=dtype)
        else:
            config = BitsAndBytesConfig(load_in_8bit=True)
        import torch

        return {"dtype": dtype, "quantization_config": config,
                "device_map": {"": torch.cuda.current_device()}}

    def is_float32(self, *, cuda: bool) -> bool:
        """Whether the weights are loaded as they are kept on disk here: float32, whole.

        >>> BasePrecision().is_float32(cuda=False), BasePrecision("float16").is_float32(cuda=False)
        (True, False)
        """
        import torch

        return self.quantization is None and self.torch_dtype(cuda=cuda) == torch.float32

    def prepare(self, model: Any) -> Any:
        """A quantized model made ready for adapter training (PEFT's
        ``prepare_model_for_kbit_training``: norms in float32, inputs that carry gradients);
        any other model as it is."""
        if self.quantization is None:
            return model
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
