"""``driftloop bench codec``: decoding one event beside parsing its JSON alone.

The payload is an Interaction with an embedding (384 floats by default, MiniLM's size):

* baseline: ``orjson.loads`` of the bytes, the floor any Python consumer pays;
* driftloop: ``decode(raw, Interaction)``, i.e. the same parse plus the strict contract check
  (every float of the embedding, bounds, patterns, enums);
* also ``encode`` of the event, for producers.

Prints the best time per call over several rounds (the least disturbed by other processes)
and the ratio decode / parse.
"""

from __future__ import annotations

import random
import timeit
from collections.abc import Callable

import click
import orjson

from ...schemas import Interaction, decode, encode
from ..options import json_option, print_json

__all__ = ["codec", "measure"]


def sample_interaction(dim: int, seed: int = 0) -> Interaction:
    """A typical interaction: short text, scores, an embedding of ``dim`` floats."""
    rng = random.Random(seed)
    return Interaction(
        id="i-1", ts=1_700_000_000.5, task="sentiment", domain="tweets", model_version="v3",
        input="the plot was thin but the acting carried it", prediction="positive",
        scores={"confidence": 0.81, "probabilities": {"positive": 0.81, "negative": 0.19}},
        embedding=[rng.uniform(-1.0, 1.0) for _ in range(dim)], metadata={"request_id": "r-9"},
    )


def measure(dim: int = 384, number: int = 1000, rounds: int = 20) -> dict[str, float]:
    """Best microseconds per call of parse, decode and encode (and the payload size)."""
    event = sample_interaction(dim)
    raw = encode(event)
    if decode(raw, Interaction) != event:
        raise AssertionError("decode(encode(event)) differs from the event")
    calls: dict[str, Callable[[], object]] = {
        "orjson_loads_us": lambda: orjson.loads(raw),
        "decode_us": lambda: decode(raw, Interaction),
        "encode_us": lambda: encode(event),
    }
    best = dict.fromkeys(calls, float("inf"))
    # Rounds interleave the calls, so a burst of load from another process hits all alike.
    for _ in range(rounds):
        for name, call in calls.items():
            best[name] = min(best[name], timeit.timeit(call, number=number) / number * 1e6)
    return {"bytes": float(len(raw)), **best}


@click.command()
@click.option("--dim", default=384, show_default=True, type=click.IntRange(1, 8192),
              help="Embedding size of the interaction.")
@click.option("--number", default=1000, show_default=True, type=click.IntRange(1),
              help="Calls per round.")
@click.option("--rounds", default=20, show_default=True, type=click.IntRange(1),
              help="Rounds; the best one is reported.")
@json_option
def codec(dim: int, number: int, rounds: int, as_json: bool) -> None:
    """Decode of an Interaction (strict contract) beside orjson.loads of the same bytes."""
    result = measure(dim, number, rounds)
    if as_json:
        print_json({"dim": dim, "number": number, "rounds": rounds, **result,
                    "decode_ratio": result["decode_us"] / result["orjson_loads_us"]})
        return
    click.echo(f"payload: Interaction with a {dim}-float embedding, {int(result['bytes'])} bytes")
    click.echo(f"orjson.loads (baseline): {result['orjson_loads_us']:8.1f} us")
    click.echo(f"decode (driftloop):      {result['decode_us']:8.1f} us  "
               f"({result['decode_us'] / result['orjson_loads_us']:.1f}x the parse alone)")
    click.echo(f"encode (driftloop):      {result['encode_us']:8.1f} us")
