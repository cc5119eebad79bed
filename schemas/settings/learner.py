"""The LoRA learner's settings (``[learner]``): device, LoRA shape, training budget, the gate.

Examples
--------
>>> learner = LearnerSettings(lora_r=16, promotion="canary")
>>> learner.lora_r, learner.lora_alpha, learner.promotion
(16, 16, 'canary')
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .section import Section, data_home

__all__ = ["LearnerSettings"]


class LearnerSettings(Section):
    """The LoRA learner process."""

    group_id: str = "driftloop-learner"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    torch_threads: int | None = Field(None, gt=0)
    cache_dir: Path = Field(default_factory=lambda: data_home() / "learner")
    resident_models: int = Field(2, gt=0, description="base models kept in memory (LRU)")
    base_dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="dtype of a base model's weights: auto = bf16 on a CUDA device "
                            "that has it (fp16 on one without), float32 on the CPU")
    base_quantization: Literal["4bit", "8bit"] | None = Field(
        None, description="load base models quantized by bitsandbytes (CUDA only; 4bit: "
                          "NF4 with double quantization, QLoRA's recipe); adapters stay "
                          "float32")
    base_model_paths: dict[str, str] = Field(
        default_factory=dict,
        description="a local folder (or GGUF file) to load for a base model id, for offline "
                    "use; versions still record the id")
    seed: int = Field(0, ge=0, description="fixed seed: a replayed request gives the same adapter")
    lora_r: int = Field(8, gt=0, description="LoRA rank")
    lora_alpha: int = Field(16, gt=0, description="LoRA scaling numerator (alpha / r)")
    lora_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="dropout on the LoRA path")
    learning_rate: float = Field(2e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(0.01, ge=0.0)
    batch_size: int = Field(8, gt=0)
    epochs: int = Field(1, gt=0)
    max_steps: int = Field(200, gt=0, description="step budget of one update")
    min_steps: int = Field(
        0, ge=0,
        description="fewest optimizer steps of one update: a small request is passed over "
                    "again until they are taken (max_steps still caps them); early stop "
                    "neither ends an update nor keeps its weights before them (0: epochs "
                    "alone). Live loop, ten seeds, 2026-12-06, 32 against 0: served accuracy "
                    "on shifted domains VADER 0.750 (0.701), questions 0.637 (0.541), a far "
                    "stronger first version, updates 2-4x longer; not the default: at short "
                    "horizons (the quick bench, the default demo) no continued update beat "
                    "that first version (docs/benchmarks.md)")
    first_min_steps: int = Field(
        0, ge=0,
        description="fewest optimizer steps of a task's first version (an update from no "
                    "trained adapter: a bootstrap, a new task, a new domain's own head), as "
                    "min_steps does for every update; the larger of the two applies (0: "
                    "min_steps alone). Live loop, seeds 0, 1, 5, 6, 2026-12-06, 32 with "
                    "min_steps 0: served accuracy on shifted domains VADER 0.730, questions "
                    "0.581, against 0.748 and 0.624 with min_steps 32 for every update")
    eval_every: int = Field(4, gt=0, description="steps between early-stop checks")
    patience: int = Field(3, gt=0, description="early-stop checks without improvement")
    l2_to_parent: float = Field(0.0, ge=0.0, description="L2 pull toward the parent's weights")
    warmup_steps: int = Field(
        4, ge=0,
        description="steps over which the learning rate rises linearly to its value when an "
                    "update continues a trained adapter (a fresh optimizer's first steps move "
                    "every weight by about the learning rate); a first version starts at full "
                    "rate. Live loop, 5 seeds, 2026-12-04, against 0: VADER live 0.717 (0.693), "
                    "5 of 15 shifts answered (4); questions final 0.763 (0.730), live 0.551 "
                    "(0.543)")
    averaging: float = Field(
        0.0, ge=0.0, lt=1.0,
        description="decay of an exponential moving average of the weights during an "
                    "update (0: off); the average is what early stop measures and what the "
                    "candidate is (Polyak averaging)")
    curriculum: bool = Field(
        False,
        description="train the first epoch easy to hard, by the difficulty the worker gives "
                    "each example (1 - the served model's confidence); otherwise, and in "
                    "later epochs, in a seeded random order. Live loop, 10 seeds, "
                    "2026-12-05: VADER 9 of 30 shifts answered (12 without), questions 5 of "
                    "10 (7): off")
    interpolation: float = Field(
        1.0, gt=0.0, le=1.0,
        description="share of the trained change a candidate keeps (WiSE-FT: the candidate is "
                    "parent + interpolation * (trained - parent); 1 = the trained adapter)")
    interpolation_choices: list[Annotated[float, Field(gt=0.0, le=1.0)]] = Field(
        default_factory=list,
        description="shares of the trained change a continued update chooses from on its "
                    "early-stop slice (the lowest validation loss; the whole change on a "
                    "tie), e.g. [0.25, 0.5, 0.75]: WiSE-FT with the share picked per "
                    "update; empty: interpolation as set. Live loop, 5 seeds, 2026-12-07: "
                    "few continued updates have an early-stop slice; the same as without on "
                    "9 of 10 runs, one worse: empty")
    keep_parent: float = Field(
        0.0, ge=0.0, le=1.0,
        description="weight of the parent's own soft answers in the loss of each replayed "
                    "training example of a continued classification update (Learning without "
                    "Forgetting on the replay; the rest is the label; new examples learn from "
                    "their labels alone; 0: labels only; learner/training/keep_parent.py)")
    continue_rejected: bool = Field(
        False,
        description="an update continues from the last candidate rejected for want of "
                    "evidence (not behind its parent, not forgetting) instead of the served "
                    "parent; the gate still compares with the served parent (measured: "
                    "docs/benchmarks.md, Quality)")
    holdout_fraction: float = Field(0.25, gt=0.0, lt=1.0,
                                    description="share of the request kept for the gate "
                                                "(chosen by a hash of each example's text)")
    gate_pool_size: int = Field(
        200, ge=0, le=100_000,
        description="held-out examples of earlier requests kept per task, domain and regime; "
                    "the gate also scores on them (0: own holdout only)")
    gate_alpha: float = Field(
        0.1, gt=0.0, lt=0.5,
        description="false-promotion rate of one gate decision: a candidate is promoted when "
                    "a paired test (McNemar, exact) says it is better than its parent on the "
                    "current regime's held-out texts at this level, and not significantly "
                    "worse on older ones (0.1 against 0.05: on the live-loop bench, more "
                    "shifts answered on both streams and no false promotion)")
    gate_evidence: Literal["answers", "scores"] = Field(
        "answers",
        description="what the gate's 'better' test reads: 'answers' = McNemar's exact test on "
                    "right and wrong answers; 'scores' = a sign-flip test on per-example proper "
                    "scores (1 - Brier / 2), with more answers right still required. Measured "
                    "on the live loop (5 seeds, 2026-12-03): 'scores' raised VADER's live "
                    "accuracy (0.720 against 0.687) but cost questions 0.07 final accuracy and "
                    "two of five shifts, so the default stays 'answers'")
    gate_stratify: bool = Field(
        False,
        description="weigh the recent slice's texts by the label mix of all the request's "
                    "new examples (post-stratification; the tests become weighted sign "
                    "flips): a slice of a few dozen texts can hold a label mix far from the "
                    "traffic's. Live loop, 10 seeds, 2026-12-05: VADER 10 of 30 shifts "
                    "answered (12 without), 2 false promotions (1); questions 6 of 10 (7): off")
    gate_cross_fit: int = Field(
        0, ge=0, le=10,
        description="folds of cross-fitting (0 or 1: off): while the gate's recent slice "
                    "holds fewer than gate_recent_examples texts, the new examples the "
                    "candidate trains on are split into this many folds, one fold candidate "
                    "per fold trains on the rest and is scored on it, and those pairs join "
                    "the recent slice's paired test (k extra trainings per update). Live "
                    "loop, 10 seeds, 2026-12-05, k=2: VADER 13 of 30 shifts answered (12), "
                    "questions 6 of 10 (7): off")
    gate_second_look: bool = Field(
        False,
        description="a candidate rejected for want of evidence is judged once more by the "
                    "next update of its parent, on every new label that came since (texts "
                    "it never trained on) pooled with its own held-out ones, at half "
                    "gate_alpha; when it passes it is promoted beside the update's own "
                    "candidate (classification tasks; learner/gate/second_look.py). Live "
                    "loop, 10 seeds, 2026-12-06: VADER 12 of 30 shifts within 240 labels "
                    "(12), 2 false promotions (1); questions unchanged: off")
    gate_domain_start: Literal["score", "paired", "paired-scores", "cross-fit"] = Field(
        "score",
        description="how a domain's first version is judged under a task's "
                    "adapter_per_domain, when it starts from other domains' heads: 'score' "
                    "= a higher held-out score than its start; 'paired' = the paired rule "
                    "against that start, as a served parent (with cross-fitting when "
                    "gate_cross_fit >= 2); 'paired-scores' = the paired rule on per-example "
                    "proper scores; 'cross-fit' = the same as 'paired', with at least two folds "
                    "of cross-fitting for that first version (its new labels are few)")
    gate_domain_incumbent: bool = Field(
        False,
        description="judge a domain's first version (adapter_per_domain) against the version "
                    "serving that domain's traffic now, the task's latest promotion, rather "
                    "than against its start (another domain's head or their average). Live "
                    "loop, named domains, 10 seeds, 2026-12-07: VADER 19 of 30 shifts within "
                    "240 labels, 7 false promotions in 39 (20, 6 in 40 without): off")
    gate_domain_start_alpha: float | None = Field(
        None, gt=0.0, lt=0.5,
        description="level of the paired rule for a domain's first version under "
                    "gate_domain_start 'paired', 'paired-scores' or 'cross-fit' (None: "
                    "gate_alpha). Live loop, named domains, 5 seeds, 2026-12-07: at 0.3, "
                    "VADER 5 of 15 shifts within 240 labels against 11 under 'score'")
    gate_recent_examples: int = Field(
        400, gt=0, description="most held-out texts of the current regime a gate scores")
    gate_old_examples: int = Field(
        600, ge=0, description="most held-out texts of earlier regimes a gate scores (enough "
                               "to see a loss of two points)")
    gate_pool_max_bytes: int = Field(
        8 * 1024 * 1024, gt=0,
        description="most bytes of text in one task's gate pool (the oldest leave first)")
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0,
                                       description="share of the rest kept for early stop")
    examples_ref_max_bytes: int = Field(
        256 * 1024 * 1024, gt=0,
        description="largest examples object a request may name by examples_ref (a request "
                    "naming a larger one is refused)")
    max_length: int = Field(128, gt=8, description="token budget of one example")
    max_new_tokens: int = Field(8, gt=0, description="answer length when scoring generation")
    min_improvement: float = Field(0.0, ge=0.0, le=1.0,
                                   description="held-out score rise the gate demands")
    replay_tolerance: float = Field(0.02, ge=0.0, le=1.0,
                                    description="older-traffic score drop a gate without "
                                                "per-example outcomes (the federated merge) "
                                                "accepts")
    challenge_tolerance: float = Field(0.02, ge=0.0, le=1.0,
                                       description="challenge score drop the gate accepts")
    robust_tolerance: float = Field(
        0.02, ge=0.0, le=1.0,
        description="robust accuracy drop the gate accepts (a task's robustness checks)")
    robust_examples: int = Field(
        200, gt=0, description="most held-out texts each robustness check perturbs")
    robust_paraphrases: int = Field(
        32, ge=1, le=1_000,
        description="most held-out texts the paraphrase check has rewritten per update (a "
                    "generation each, by synthetic_generator or the default generation base)")
    slice_tolerance: float | None = Field(
        None, ge=0.0, le=1.0,
        description="most the accuracy of any one slice of the gate's held-out texts (a "
                    "domain, a length bucket) may fall, even when the mean rises (None: the "
                    "worst slice is reported in every decision, never refused)")
    slice_min_examples: int = Field(
        20, gt=0, description="fewest held-out texts a slice needs to be reported and judged")
    retrieval: bool = Field(
        False,
        description="classification: every update also builds a retrieval candidate (the "
                    "parent's adapter, its answers mixed with the votes of the nearest "
                    "labelled texts of the request and the parent's bank), and the trained "
                    "candidate carries a bank of its own; both face the gate at half its "
                    "level and, when both pass, the trained one serves only when "
                    "significantly better than the retrieval one. Live loop, 10 seeds, "
                    "2026-12-05: "
                    "VADER 7 of 30 shifts answered (12), questions 9 of 10 (7), final "
                    "questions 0.730 (0.641), VADER 0.698 (0.754) with a share of 0.5; "
                    "fitted share: VADER 11 of 30, questions 5 of 10: off")
    retrieval_arm: bool = Field(
        True, description="with retrieval: build the retrieval candidate (the parent with a "
                          "grown bank) beside the trained one, each at half the gate's level; "
                          "False: the trained candidate alone, its bank's share the one "
                          "fitted on the parent's answers to the request's new texts")
    retrieval_k: int = Field(8, ge=1, le=256, description="neighbours that vote")
    retrieval_weight: float | None = Field(
        None, ge=0.0, le=1.0,
        description="share of the neighbours' votes in an answer (None: fitted per candidate "
                    "from 0, 0.25, 0.5, 0.75 on texts it was not trained on, each voted on "
                    "by the rest of the bank, and kept only when the mix is significantly "
                    "better there at gate_alpha; a retrieval candidate whose share is 0 is "
                    "not built, a trained one keeps no bank)")
    retrieval_bank_size: int = Field(
        2048, ge=1, le=1_000_000, description="most labelled texts a bank keeps (newest)")
    prompt_arm: bool = Field(
        False,
        description="generation: every update with a served parent also builds a prompt "
                    "candidate (the parent's adapter under a revised prompt: another version "
                    "of the task's template, or worked examples retrieved by input "
                    "embedding) chosen on the request's new training texts; both face the "
                    "gate at half its level and the prompt serves unless the trained one is "
                    "significantly better (learner/training/prompt_arm.py)")
    prompt_arm_shots: int = Field(4, ge=1, le=16,
                                  description="worked examples a revised prompt shows")
    prompt_arm_examples: int = Field(
        256, ge=1, le=10_000, description="most labelled pairs a prompt's examples hold")
    prompt_arm_texts: int = Field(
        32, ge=1, le=1_000, description="most new training texts the prompt search tries")
    synthetic_share: float = Field(
        0.0, ge=0.0, le=0.5,
        description="data from prompts: most of an update's training part that variants "
                    "written by a generation model may be (paraphrases of the request's "
                    "training examples, and contrast rewrites asking for another label), "
                    "each kept only when the current model gives it the label asked for "
                    "(0: off; learner/training/synthesis.py)")
    synthetic_below: int = Field(
        64, ge=1, description="a domain whose new training examples in a request are fewer "
                              "than this gets variants (with synthetic_share)")
    synthetic_per_example: int = Field(
        2, ge=1, le=8, description="variants asked of each source example")
    synthetic_contrast: bool = Field(
        True, description="ask for contrast rewrites (another label) beside paraphrases "
                          "(classification tasks)")
    synthetic_generator: str | None = Field(
        None, min_length=1, max_length=512,
        description="base model that writes the variants (None: the default generation base "
                    "model, SmolLM2-135M-Instruct)")
    prompt_stability_probes: int = Field(
        16, ge=0, description="newest challenge probes a generation candidate answers under "
                              "each paraphrase of its prompt template (0: no stability check)")
    min_prompt_stability: float | None = Field(
        None, ge=0.0, le=1.0,
        description="gate: least share of probes answered the same under every paraphrase "
                    "(None: measured and recorded, not required)")
    promotion: Literal["gate", "canary"] = Field(
        "gate", description="what a version that passes the gate becomes: 'gate' = promoted "
                            "at once; 'canary' = a candidate, canaried by serving and promoted "
                            "by the worker's A/B test on live feedback")
    metrics_host: str = Field("127.0.0.1", description="interface of the learner's /metrics")
    metrics_port: int | None = Field(
        6067, gt=0, lt=65536,
        description="port of the learner's Prometheus /metrics (None: not served; a port "
                    "already taken is logged and the learner trains on)")
    gradient_checkpointing: bool = Field(
        False,
        description="recompute the base model's activations in the backward pass instead of "
                    "keeping them: less memory per update for more compute (SmolLM2-135M, 32 "
                    "examples, CPU: peak about 0.9 GB lower); for large base models")
    data_parallel: int = Field(
        1, ge=0, le=64,
        description="processes one update's training is spread over, data parallel through "
                    "accelerate: one per GPU of the box (0: every visible CUDA device; 1: "
                    "in the learner's own process). Each process trains on a slice of every "
                    "batch and the gradients are summed, so the update is the one process's "
                    "(to rounding); the processes start with the learner and are "
                    "kept. It pays for large models on GPUs, not for MiniLM on a CPU. Not "
                    "with base_quantization; with gradient_checkpointing, keep_parent or a "
                    "teacher the update trains in the learner's process")
    coalesce_max: int = Field(
        8, ge=1, le=64,
        description="most queued training requests of one task and domain, one after another "
                    "on a partition, that one update trains on together: the newest "
                    "supersedes the older ones and takes the examples it lacks (1: each "
                    "request alone). Bounds the learner's lag when triggers outpace updates")
    max_poll_interval_ms: int = Field(
        1_800_000, gt=0, description="longest gap between polls (one update) before a rebalance")
    max_attempts: int = Field(
        3, gt=0, description="tries of one training request (crashes of the process included, "
                             "counted in the consumer group's commits) before it becomes a "
                             "dead letter 'training_failed' and the learner goes on")
    retry_backoff_s: float = Field(
        2.0, ge=0.0, description="seconds before the first retry of a failed request in the "
                                 "same process; doubled for each further one")
    site: str | None = Field(
        None, min_length=1, max_length=256,
        description="federated learning: this learner's site name; when set, every promoted "
                    "adapter is offered on site-adapters (a reference and a count, no examples)")
    federation_topic_prefix: str | None = Field(
        None, pattern=r"^[A-Za-z0-9._\-]*$",
        description="topic prefix of the federation's shared site-adapters topic "
                    "(None: this deployment's kafka.topic_prefix)")

    @model_validator(mode="after")
    def _one_process_when_quantized(self) -> LearnerSettings:
        if self.base_quantization is not None and self.data_parallel > 1:
            raise ValueError("data_parallel > 1 cannot train a base model loaded with "
                             "base_quantization (its quantized weights are not handed to "
                             "other processes); use one or the other")
        return self
