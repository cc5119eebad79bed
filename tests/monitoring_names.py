"""The metric names the shipped Grafana dashboard and Prometheus alert rules read.

Each process's test scrapes its live ``/metrics`` and calls :func:`assert_serves` with its
component, so a renamed or dropped metric breaks the test of the process that serves it,
not an operator's dashboard.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

MONITORING = Path(__file__).resolve().parents[1] / "tools" / "monitoring"
DASHBOARD = MONITORING / "grafana-dashboard.json"
ALERTS = MONITORING / "alerts.yml"

_NAME = re.compile(r"\bdriftloop_[a-z0-9_]+")
_HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def expressions() -> list[str]:
    """Every PromQL expression of the dashboard's panels and the alert rules."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    found = [target["expr"] for panel in panels for target in panel.get("targets", ())]
    found += [json.dumps(v["query"]) for v in json.loads(DASHBOARD.read_text())["templating"]
              ["list"] if isinstance(v.get("query"), str)]
    rules = yaml.safe_load(ALERTS.read_text())["groups"]
    found += [rule["expr"] for group in rules for rule in group["rules"]]
    return found


def component(name: str) -> str:
    """Which process serves ``name``: learner, serving or worker."""
    for prefix in ("learner", "serving"):
        if name.startswith(f"driftloop_{prefix}_"):
            return prefix
    return "worker"


def named(of: str) -> set[str]:
    """The metric families of component ``of`` the files name (histogram series folded)."""
    names = set()
    for expr in expressions():
        for name in _NAME.findall(expr):
            for suffix in _HISTOGRAM_SERIES:
                if name.endswith(suffix) and "_seconds" in name:
                    name = name.removesuffix(suffix)
            if component(name) == of:
                names.add(name)
    return names


def served(page: str) -> set[str]:
    """Sample and family names on a /metrics page (``# TYPE`` lines and samples)."""
    names = set()
    for line in page.splitlines():
        if line.startswith("# TYPE "):
            names.add(line.split()[2])
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def assert_serves(page: str, of: str) -> None:
    """Every metric the dashboard and alerts name for component ``of`` is on ``page``."""
    missing = sorted(named(of) - served(page))
    assert not missing, f"the dashboard or alert rules name metrics the {of} does not serve: " \
                        f"{missing}"
