"""A published classification adapter loads without driftloop, with the lines in
docs/learner.md, and gives the probabilities driftloop serves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from driftloop.learner.models.packaged import minilm_dir
from driftloop.learner.models.portable import internal_layout, is_portable_classifier
from driftloop.learner.serving.model_host import ModelHost
from driftloop.learner.training.update import store_from_settings
from driftloop.learner.trust import weights_sha256

SNIPPETS_PAGE = Path(__file__).parents[3] / "docs" / "learner.md"
TEXTS = ["I love this, it is wonderful!", "Terrible service, never again.", "not good at all",
         "The plot was fine, the acting less so.", "meh"]

# No site module (-S): .pth files, among them driftloop's editable install, are not read;
# the packages themselves are found on the site-packages path added by hand.
DRIVER = """
import importlib.util, json, sys
sys.path.append({site!r})
assert importlib.util.find_spec("driftloop") is None, "driftloop must not be importable"
{snippet}
folder, event, texts = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(json.dumps(probabilities(folder, event, texts).tolist()))
assert not any(name.split(".")[0] == "driftloop" for name in sys.modules)
"""


def readme_snippet(marker: str) -> str:
    found = re.search(rf"<!-- {marker} -->\n```python\n(.*?)```", SNIPPETS_PAGE.read_text(),
                      re.S)
    assert found, f"{SNIPPETS_PAGE.name} has no {marker} snippet"
    return found.group(1)


@pytest.mark.slow
def test_the_readme_lines_reproduce_the_served_probabilities(
        sentiment_v1, session_settings, resident_models, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    event = sentiment_v1.event
    folder = store_from_settings(session_settings).fetch(event.adapter_uri, event.sha256,
                                                         tmp_path)
    assert is_portable_classifier(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["task_type"] == "FEATURE_EXTRACTION"
    assert config["base_model_name_or_path"] == event.base_model
    assert "base_model:" in (folder / "README.md").read_text()  # PEFT's model card, kept
    # The weights it was trained on, by digest: the packaged checkpoint's safetensors file.
    assert event.metadata["base_weights_sha256"] == weights_sha256(minilm_dir())
    snippet = readme_snippet("portable-classifier")
    assert len(snippet.strip().splitlines()) <= 20
    driver = DRIVER.format(site=sysconfig.get_paths()["purelib"], snippet=snippet)
    env = {**os.environ, "BASE_MODEL_PATH": str(minilm_dir()), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, "-S", "-c", driver, str(folder),
                          event.model_dump_json(), json.dumps(TEXTS)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    outside = json.loads(run.stdout.strip().splitlines()[-1])

    host = ModelHost(resident_models, max_length=event.max_length or 128)
    host.load("sentiment", event.version_id, folder, event.base_model)
    served = host.predict("sentiment", event.version_id, TEXTS)
    assert event.labels is not None
    for row, answer in zip(outside, served, strict=True):
        assert row == pytest.approx([answer.probabilities[label] for label in event.labels],
                                    abs=1e-5)


def test_an_adapter_in_the_older_layout_is_used_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "adapter_config.json").write_text('{"modules_to_save": ["head"]}')
    with internal_layout(tmp_path) as inside:
        assert inside == tmp_path


GENERATION_DRIVER = """
import importlib.util, json, sys
sys.path.append({site!r})
assert importlib.util.find_spec("driftloop") is None, "driftloop must not be importable"
{snippet}
folder, event, texts = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(json.dumps([a.strip() for a in answers(folder, event, texts, int(sys.argv[4]))]))
assert not any(name.split(".")[0] == "driftloop" for name in sys.modules)
"""
PROMPTS = ["I love this, it is wonderful!", "Terrible service, never again.", "not good at all",
           "The plot was fine, the acting less so.", "meh", "Best day ever :)",
           "I want my money back.", "A quiet, moving film.", "Cold food, rude staff.",
           "Would buy again.", "It broke after a week.", "Five stars, no doubt.",
           "The ending made no sense.", "Exactly as described.", "Never again!",
           "Surprisingly good for the price."]


@pytest.mark.slow
def test_the_readme_lines_reproduce_the_generated_answers(resident_models,
                                                          tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.models.resident import default_base_model, local_weights
    from driftloop.learner.serving.probe import write_generation_probe
    from driftloop.schemas.enums import TaskKind

    model_id = default_base_model(TaskKind.GENERATION)
    base = resident_models.get(model_id, TaskKind.GENERATION)
    folder = write_generation_probe(base, tmp_path / "adapter", version_id="g1",
                                    prompt_template_id="sentiment", scale=0.05)
    config = json.loads((folder / "adapter_config.json").read_text())
    assert (config["task_type"], config["base_model_name_or_path"]) == ("CAUSAL_LM", model_id)
    weights = local_weights(model_id)
    assert weights is not None, "the learner keeps a dequantized copy of the GGUF weights"
    host = ModelHost(resident_models, max_length=64, max_new_tokens=8)
    host.load("gen", "g1", folder, model_id)
    served = [p.output for p in host.predict("gen", "g1", PROMPTS)]
    base_answers = [p.output for p in host.zero_shot("gen", model_id, "sentiment", PROMPTS)]
    assert served != base_answers, "the adapter must change some answers to be seen loaded"

    snippet = readme_snippet("portable-generation")
    assert len(snippet.strip().splitlines()) <= 20
    driver = GENERATION_DRIVER.format(site=sysconfig.get_paths()["purelib"], snippet=snippet)
    event = {"base_model": model_id}
    env = {**os.environ, "BASE_MODEL_PATH": str(weights), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": ""}
    run = subprocess.run([sys.executable, "-S", "-c", driver, str(folder), json.dumps(event),
                          json.dumps(PROMPTS), "8"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == served
