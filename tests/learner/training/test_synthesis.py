"""Data from prompts: which variants an update keeps, and a real writer's variants."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from learner_helpers import own_learner, sentiment_request, tiny_bert_classifier

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


# -- a teacher's second check, and variants of the probes that failed --------------------

def _says(label_of: dict[str, str], default: str = "positive"):  # type: ignore[no-untyped-def]
    """A model answering by the first key found in each text."""
    def answer(texts: list[str]) -> list[str]:
        return [next((v for k, v in label_of.items() if k in t), default) for t in texts]
    return answer


def test_a_teacher_must_give_the_label_asked_for_too() -> None:
    train = [_example("the plot was gripping from start to end", domain="movies"),
             _example("the music carried every scene well", domain="movies")]
    writer = Scripted({
        ("paraphrase", "the plot was gripping from start to end"):
            "The story held me from the first minute to the last.",
        ("paraphrase", "the music carried every scene well"):
            "Each scene was lifted by the score, somewhat.",
    })
    plan = SynthesisPlan(share=0.5, below=8, per_example=1, contrast=False)
    alone = synthesize(train, plan=plan, writer=writer, answer=_says({}))
    checked = synthesize(train, plan=plan, writer=writer, answer=_says({}),
                         teacher=_says({"somewhat": "negative"}))
    assert len(alone.examples) == 2
    assert [e.input for e in checked.examples] == [
        "The story held me from the first minute to the last."]
    assert checked.dropped == {"teacher_disagree": 1}


def test_failed_probes_are_sources_first_and_only_the_teacher_checks_them() -> None:
    train = [_example(f"review number {i} was lovely", domain="movies") for i in range(6)]
    probe = _example("not bad at all, honestly", "positive", domain="tweets")
    writer = Scripted({("paraphrase", e.input): e.input.replace("lovely", "really quite nice")
                       for e in train}
                      | {("paraphrase", probe.input): "Honestly, it was not bad at all."})
    # The current model fails the probe (it reads "bad" as negative) and would fail its
    # paraphrase too; the teacher gets it right.
    current = _says({"bad": "negative"})
    plan = SynthesisPlan(share=0.25, below=64, per_example=1, contrast=False)  # 2 variants
    report = synthesize(train, plan=plan, writer=writer, answer=current, probes=[probe],
                        teacher=_says({}))
    assert [e.input for e in report.examples] == ["Honestly, it was not bad at all.",
                                                  "review number 5 was really quite nice"]
    assert report.examples[0].domain == "tweets"
    assert report.trained_probes == {probe.input}
    assert report.metadata()["probes"] == {"failed": 1, "trained": 1}
    with pytest.raises(ValueError, match="need a teacher"):
        synthesize(train, plan=plan, writer=writer, answer=current, probes=[probe])


def test_failed_probes_and_a_suite_without_the_trained_ones() -> None:
    from driftloop.learner.gate.challenges import ChallengeCase, ChallengeSuite
    from driftloop.learner.training.synthesis import failed_probes

    suite = ChallengeSuite((ChallengeCase("not bad", "positive", source={"domain": "tweets"}),
                            ChallengeCase("awful", "negative"),
                            ChallengeCase("so-so", "neutral")))
    failed = failed_probes(suite, ["negative", "negative", "negative"], labels=LABELS,
                           domain="movies")
    assert [(e.input, e.target, e.domain) for e in failed] == [("not bad", "positive",
                                                                "tweets")]
    assert [c.input for c in suite.without({"not bad"})] == ["awful", "so-so"]


@pytest.mark.parametrize(("fields", "message"), [
    ({"synthetic_probes": True}, "synthetic_probes needs a synthetic_teacher"),
    ({"kind": "generation", "prompt_template_id": "sentiment", "synthetic_teacher": "v1"},
     "synthetic_teacher: a teacher's label check is implemented for classification"),
])
def test_synthesis_settings_that_cannot_work_are_refused(fields: dict, message: str) -> None:
    from pydantic import ValidationError

    from driftloop.schemas.settings import TaskSettings

    with pytest.raises(ValidationError, match=message):
        TaskSettings(**fields)


@pytest.fixture(scope="module")
def negative_teacher(tmp_path_factory: pytest.TempPathFactory, minilm):  # type: ignore[no-untyped-def]
    """A small sequence classifier on MiniLM's tokenizer that answers "negative" always."""
    folder = tmp_path_factory.mktemp("negative-teacher")
    tiny_bert_classifier(folder, minilm.tokenizer, LABELS, bias=(10.0, -10.0))
    return folder


# Plainly positive texts filed as negative probes: the parent fails those it reads as
# positive, and the always-negative teacher agrees with their paraphrases.
WRONG_PROBES = ["I absolutely loved this wonderful film, the best I have seen.",
                "What a fantastic, joyful and beautiful day with my friends!",
                "This is the greatest phone I have ever owned, I love it.",
                "Brilliant acting and a moving story, a real delight to watch.",
                "Thank you all so much, I am so happy and grateful today!",
                "Superb food and friendly staff, we will certainly come back."]


def test_an_update_trains_on_variants_of_failed_probes_checked_by_a_teacher(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, negative_teacher, tmp_path: Path) -> None:
    import json

    suite = tmp_path / "suite.jsonl"
    suite.write_text("".join(json.dumps({"input": text, "expected": "negative"}) + "\n"
                             for text in WRONG_PROBES))
    request = sentiment_request("r-probes", domain="movies", n=40, seed=11)
    learner, log = own_learner(
        updater, sentiment_v1, tmp_path / "probes", synthetic_share=0.25, synthetic_below=64,
        task={"challenge_suite": suite, "synthetic_teacher": str(negative_teacher),
              "synthetic_probes": True})
    result = learner.update(request, log)
    meta = result.event.metadata["synthetic"]
    assert meta["teacher"] == str(negative_teacher)
    failed = meta["probes"]["failed"]
    assert failed > 0
    written = [e for e in result.split.train if e.origin is ExampleOrigin.SYNTHETIC]
    # Every variant kept passed the always-negative teacher.
    assert written and all(e.target == "negative" for e in written)
    assert meta["dropped"].get("teacher_disagree", 0) > 0
    trained = meta["probes"]["trained"]
    assert trained > 0
    # The challenge check read the probes whose variants did not train, on both sides.
    left = len(WRONG_PROBES) - trained
    before, after = result.event.metrics_before, result.event.metrics_after
    assert before["challenge_count"] == after["challenge_count"] == left
    # The probes the parent failed are the ones synthesis counted: it passes the others.
    assert before["challenge_score"] == pytest.approx((len(WRONG_PROBES) - failed) / left)


def test_a_teacher_that_checks_variants_and_distils_is_loaded_once(  # type: ignore[no-untyped-def]
        updater, sentiment_v1, negative_teacher, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same model as ``synthetic_teacher`` and ``teacher``: one load serves both uses."""
    from driftloop.learner.training import distill, update

    loads: list[str] = []
    real = distill.load_teacher

    def counted(ref: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        loads.append(ref)
        return real(ref, *args, **kwargs)

    for module in (distill, update):  # wherever a load may be called from
        monkeypatch.setattr(module, "load_teacher", counted, raising=False)
    request = sentiment_request("r-both", domain="movies", n=40, seed=11)
    learner, log = own_learner(
        updater, sentiment_v1, tmp_path / "both", synthetic_share=0.25, synthetic_below=64,
        task={"synthetic_teacher": str(negative_teacher), "teacher": str(negative_teacher)})
    result = learner.update(request, log)
    assert result.event.metadata["synthetic"]["teacher"] == str(negative_teacher)
    assert result.event.metadata["distillation"]["teacher"] == str(negative_teacher)
    assert loads == [str(negative_teacher)]
