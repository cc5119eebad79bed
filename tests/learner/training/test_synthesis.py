"""Data from prompts: which variants an update keeps, and a real writer's variants."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from learner_helpers import own_learner, sentiment_request

from driftloop.learner.errors import TrainingRequestError
from driftloop.learner.training.synthesis import (
    CONTRAST,
    PARAPHRASE,
    SynthesisPlan,
    TextWriter,
    synthesize,
)
from driftloop.schemas.enums import ExampleOrigin, TaskKind
from driftloop.schemas.events import TrainingExample

LABELS = ("negative", "positive")


class Scripted:
    """A writer that answers each source text with what the test scripted for it."""

    def __init__(self, answers: dict[tuple[str, str], str]) -> None:
        self.answers = answers  # (kind, source text) -> raw answer
        self.prompts: list[str] = []

    def write(self, prompts: Sequence[str], seed: int) -> list[str]:
        self.prompts += prompts
        out = []
        for prompt in prompts:
            kind = "paraphrase" if prompt.startswith("Paraphrase") else "contrast"
            source = prompt.split("Text: ", 1)[1].split("\n", 1)[0]
            out.append(self.answers.get((kind, source), ""))
        return out


def _example(text: str, target: str = "positive", **fields: object) -> TrainingExample:
    return TrainingExample(input=text, target=target, **fields)


def test_every_check_drops_what_it_should_and_counts_why() -> None:
    train = [_example("the plot was gripping from start to end", domain="movies", regime=2,
                      weight=2.0),
             _example("a dull film with wooden acting", "negative", domain="movies"),
             _example("short one", domain="movies"),
             _example("a fine phone", domain="gadgets")]
    writer = Scripted({
        ("paraphrase", "the plot was gripping from start to end"):
            "Paraphrase: \"The story held me from the first minute to the last.\"",
        ("contrast", "the plot was gripping from start to end"):
            "The plot was boring from start to end.",
        ("paraphrase", "a dull film with wooden acting"): "A DULL film, with wooden acting!",
        ("contrast", "a dull film with wooden acting"):
            "A lively film " + "with wonderful acting " * 10,
        ("paraphrase", "short one"): "a fine phone",
        ("contrast", "short one"): "long two",
    })
    # The current model: negative when the text says boring, else positive.
    report = synthesize(train, plan=SynthesisPlan(share=0.7, below=4, per_example=2),
                        writer=writer, labels=LABELS, known=["held out text"],
                        answer=lambda texts: ["negative" if "boring" in t else "positive"
                                              for t in texts])
    # Every domain is short of 4: 4 sources x 2 = 8 asked, at most 9 kept.
    assert report.asked == 8
    kept = {e.input: e for e in report.examples}
    assert sorted(kept) == ["The plot was boring from start to end.",
                            "The story held me from the first minute to the last."]
    first = kept["The story held me from the first minute to the last."]
    assert (first.target, kept["The plot was boring from start to end."].target) == (
        "positive", "negative")
    assert all(e.origin is ExampleOrigin.SYNTHETIC for e in report.examples)
    assert (first.domain, first.regime, first.weight) == ("movies", 2, 2.0)
    # A copy of a real text, in another case: a duplicate; too long: length; the phone's
    # two asks got nothing back: unusable; "long two" was meant to be positive -> negative.
    assert report.dropped == {"duplicate": 2, "length": 1, "unusable": 2, "disagree": 1}
    assert sum(report.dropped.values()) + len(report.examples) == report.asked
    contrasts = [p for p in writer.prompts if p.startswith("Rewrite")]
    assert contrasts[0] == CONTRAST.format(text="a fine phone", label="negative",
                                           target="positive")
    meta = report.metadata()
    assert meta["kept"] == 2 and meta["asked"] == 8


def test_variants_are_capped_at_their_share_and_only_short_domains_are_sources() -> None:
    many = [_example(f"tweet number {i} is lovely", domain="tweets") for i in range(8)]
    few = [_example(f"review number {i} is lovely", domain="movies") for i in range(4)]
    writer = Scripted({("paraphrase", e.input): e.input.replace("lovely", "very nice indeed")
                       for e in many + few})
    plan = SynthesisPlan(share=0.2, below=6, per_example=1, contrast=False)
    report = synthesize(many + few, plan=plan, writer=writer,
                        answer=lambda t: ["positive"] * len(t))
    assert plan.limit(12) == 3  # a fifth of 15
    assert len(report.examples) == 3
    assert {e.domain for e in report.examples} == {"movies"}
    assert all("review" in p for p in writer.prompts)


def test_nothing_is_asked_when_off_or_when_no_domain_is_short() -> None:
    train = [_example(f"text {i} here", domain="a") for i in range(10)]
    writer = Scripted({})
    off = synthesize(train, plan=SynthesisPlan(share=0.0, below=64), writer=writer,
                     answer=lambda t: ["positive"] * len(t))
    enough = synthesize(train, plan=SynthesisPlan(share=0.3, below=10), writer=writer,
                        answer=lambda t: ["positive"] * len(t))
    assert off.asked == enough.asked == 0 and writer.prompts == []


def test_a_writer_that_loses_prompts_is_a_clear_error() -> None:
    class Short:
        def write(self, prompts: Sequence[str], seed: int) -> list[str]:
            return list(prompts)[:-1]

    with pytest.raises(TrainingRequestError, match="answered 1 of 2 prompts"):
        synthesize([_example("one two three four")], plan=SynthesisPlan(share=0.5, below=8),
                   writer=Short(), labels=LABELS, answer=lambda t: ["positive"] * len(t))


def test_the_split_trains_on_synthetic_examples_and_never_holds_them_out() -> None:
    from driftloop.learner.gate.split import split_request

    request = sentiment_request("r-syn", n=200)
    written = [{"input": f"written text {i}", "target": "positive", "origin": "synthetic"}
               for i in range(40)]
    with_them = request.model_copy(update={"examples": [
        *request.examples, *(TrainingExample(**w) for w in written)]})
    plain, split = split_request(request), split_request(with_them)
    synthetic = [e for e in split.train if e.origin is ExampleOrigin.SYNTHETIC]
    assert len(synthetic) == 40
    held = (*split.validation, *split.holdout_new, *split.holdout_replay)
    assert not any(e.origin is ExampleOrigin.SYNTHETIC for e in held)
    # The real examples are divided exactly as without them.
    assert split.holdout_new == plain.holdout_new and split.validation == plain.validation


def test_smollm2_writes_paraphrases_and_the_same_seed_writes_the_same(
        resident_models) -> None:  # type: ignore[no-untyped-def]
    from driftloop.learner.models.resident import default_base_model

    base = resident_models.get(default_base_model(TaskKind.GENERATION), TaskKind.GENERATION)
    side = base.tokenizer.padding_side
    writer = TextWriter(base.model, base.tokenizer, max_new_tokens=32)
    prompts = [PARAPHRASE.format(text="The acting was wooden and the plot made no sense."),
               PARAPHRASE.format(text="This blender broke after two weeks. Waste of money.")]
    first, again = writer.write(prompts, seed=3), writer.write(prompts, seed=3)
    assert first == again
    assert all(len(answer.split()) >= 3 for answer in first)
    assert base.tokenizer.padding_side == side  # left only while writing


def test_an_update_trains_on_kept_variants_and_records_them(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, tmp_path: Path) -> None:
    request = sentiment_request("r-synth", domain="movies", n=40, seed=11)
    learner, log = own_learner(updater, sentiment_v1, tmp_path / "synth",
                                synthetic_share=0.25, synthetic_below=64)
    plain, plain_log = own_learner(updater, sentiment_v1, tmp_path / "plain")
    result = learner.update(request, log)
    without = plain.update(request, plain_log)
    meta = result.event.metadata["synthetic"]
    written = [e for e in result.split.train if e.origin is ExampleOrigin.SYNTHETIC]
    assert meta["asked"] > 0 and meta["kept"] == len(written)
    assert meta["kept"] + sum(meta["dropped"].values()) == meta["asked"]
    assert meta["generator"].startswith("HuggingFaceTB/SmolLM2")
    real = {e.input for e in request.examples}
    assert not real & {e.input for e in written}
    # The gate's texts are the same with or without them; only training differs.
    assert result.split.holdout_new == without.split.holdout_new
    assert result.event.metadata["examples"]["train"] == (
        without.event.metadata["examples"]["train"] + len(written))
    assert "synthetic" not in without.event.metadata


def test_variants_beyond_the_share_are_counted_as_dropped() -> None:
    train = [_example(f"review number {i} is lovely", domain="movies") for i in range(12)]
    writer = Scripted({(kind, e.input): e.input.replace("lovely", f"very nice, {kind}")
                       for e in train for kind in ("paraphrase", "contrast")})
    plan = SynthesisPlan(share=0.2, below=64, per_example=2)  # 3 variants: 2 sources x 2
    report = synthesize(train, plan=plan, writer=writer, labels=LABELS,
                        answer=lambda texts: ["negative" if "contrast" in t else "positive"
                                              for t in texts])
    assert report.asked == 4 and len(report.examples) == 3
    assert report.dropped == {"over_share": 1}
