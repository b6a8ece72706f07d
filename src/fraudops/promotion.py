"""Champion/challenger decision: pure logic, so every rule is tested without a registry.

A candidate becomes ``@champion`` only if it clears every absolute gate and beats the current champion on
the primary metric, both measured on the same out-of-time window. ``force`` waives the comparison with
the champion, never the absolute gates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from fraudops.config.pipeline import PromotionGates

Metrics = Mapping[str, float]


@dataclass(frozen=True)
class Candidate:
    family: str
    version: str
    run_id: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    candidate: Candidate | None
    champion_version: str | None
    champion_metrics: dict[str, float] = field(default_factory=dict)
    gate_failures: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping) -> PromotionDecision:
        candidate = Candidate(**raw["candidate"]) if raw.get("candidate") else None
        return cls(**{**raw, "candidate": candidate})


def _value(metrics: Metrics, metric: str) -> float:
    value = metrics.get(metric, math.nan)
    return -math.inf if math.isnan(value) else value


def gate_failures(metrics: Metrics, gates: PromotionGates) -> list[str]:
    """The absolute gates a model misses (empty when it clears them all). NaN fails every gate."""
    checks = [
        ("auc_roc", gates.min_auc_roc, "min"),
        ("average_precision", gates.min_average_precision, "min"),
        ("single_row_cpu_p99_ms", gates.max_single_row_cpu_p99_ms, "max"),
    ]
    failures = []
    for metric, bound, kind in checks:
        value = metrics.get(metric, math.nan)
        ok = not math.isnan(value) and (value >= bound if kind == "min" else value <= bound)
        if not ok:
            failures.append(f"{metric}={value:.4f} {'<' if kind == 'min' else '>'} {bound}")
    return failures


def decide_promotion(
    candidates: list[Candidate],
    champion_version: str | None,
    champion_metrics: Metrics | None,
    gates: PromotionGates,
    *,
    force: bool = False,
) -> PromotionDecision:
    metric = gates.primary_metric
    failures = {c.family: gate_failures(c.metrics, gates) for c in candidates}
    eligible = [c for c in candidates if not failures[c.family]]
    champion = dict(champion_metrics or {})
    if not eligible:
        # the best of the rejected is named, so the rejection is recorded against a version
        best_rejected = max(candidates, key=lambda c: _value(c.metrics, metric), default=None)
        return PromotionDecision(
            False,
            "no candidate passes the absolute gates",
            best_rejected,
            champion_version,
            champion,
            failures,
        )
    best = max(eligible, key=lambda c: _value(c.metrics, metric))
    if champion_version is None:
        return PromotionDecision(
            True, f"first champion: {best.family} v{best.version}", best, None, champion, failures
        )
    if best.version == champion_version:
        return PromotionDecision(
            False, f"v{best.version} is already champion", best, champion_version, champion, failures
        )
    ours, theirs = best.metrics.get(metric, math.nan), champion.get(metric, math.nan)
    if force:
        return PromotionDecision(
            True,
            f"forced: {metric} {ours:.4f} vs champion {theirs:.4f}",
            best,
            champion_version,
            champion,
            failures,
        )
    if math.isnan(theirs) or (ours > theirs and ours - theirs >= gates.min_improvement):
        return PromotionDecision(
            True,
            f"{metric} {ours:.4f} beats champion v{champion_version} ({theirs:.4f})",
            best,
            champion_version,
            champion,
            failures,
        )
    return PromotionDecision(
        False,
        f"{metric} {ours:.4f} does not beat champion v{champion_version} ({theirs:.4f} + "
        f"{gates.min_improvement})",
        best,
        champion_version,
        champion,
        failures,
    )
