"""The models an update trains and serving answers with.

Resident base models by id, the weights that ship in packages, the compute device, the
adapter folder layout, the two task models (classification, generation) and the prompt
templates that turn examples into text.
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = [
    "AdapterMetadata",
    "BaseModel",
    "ClassificationTask",
    "ComputeDevice",
    "GenerationTask",
    "LoraSpec",
    "PromptTemplate",
    "ResidentModels",
    "TaskModel",
    "default_base_model",
    "get_template",
    "read_metadata",
    "save_adapter",
    "select_device",
    "task_model_for",
]

# Re-exported lazily: importing the package must not load torch until a name needs it.
_LAZY = {
    "ResidentModels": "resident",
    "BaseModel": "resident",
    "default_base_model": "resident",
    "ComputeDevice": "device",
    "select_device": "device",
    "AdapterMetadata": "adapters",
    "LoraSpec": "adapters",
    "read_metadata": "adapters",
    "save_adapter": "adapters",
    "ClassificationTask": "classification",
    "GenerationTask": "generation",
    "PromptTemplate": "prompts",
    "get_template": "prompts",
    "TaskModel": "task_model",
    "task_model_for": "task_model",
}

__getattr__ = lazy_exports(__name__, _LAZY)
