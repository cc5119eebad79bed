"""The review package stays light: none of its modules brings torch, transformers, Faust
or River (a review desk runs beside the broker, not on the training box)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "peft", "faust", "river")


def test_every_review_module_imports_without_the_heavy_stack() -> None:
    code = (
        "import importlib, json, pkgutil, sys\n"
        "import driftloop.review as review\n"
        "names = [info.name for info in pkgutil.walk_packages(review.__path__, "
        "'driftloop.review.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps({{'modules': names, 'heavy': sorted(m for m in {HEAVY!r} "
        "if m in sys.modules)}))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"driftloop.review.queue", "driftloop.review.desk", "driftloop.review.page",
            "driftloop.review.auth", "driftloop.review.views",
            "driftloop.review.metrics"} <= set(result["modules"])
    assert result["heavy"] == []
