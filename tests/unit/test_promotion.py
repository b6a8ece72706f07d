from __future__ import annotations

import math

from fraudops.config.pipeline import PromotionGates
from fraudops.promotion import Candidate, PromotionDecision, decide_promotion, gate_failures

GATES = PromotionGates(min_auc_roc=0.8, min_average_precision=0.3, max_single_row_cpu_p99_ms=50)


def _metrics(
    ap: float, auc: float = 0.9, p99: float = 1.0, protocol_ap: float | None = None
) -> dict[str, float]:
    return {
        "average_precision": ap,
        "protocol_average_precision_mean": ap if protocol_ap is None else protocol_ap,
        "auc_roc": auc,
        "single_row_cpu_p99_ms": p99,
    }


def test_gates_report_each_miss_and_nan_never_passes() -> None:
    assert gate_failures(_metrics(0.5), GATES) == []
    misses = gate_failures(_metrics(0.2, auc=0.7, p99=80), GATES)
    assert [m.split("=")[0] for m in misses] == ["auc_roc", "average_precision", "single_row_cpu_p99_ms"]
    assert gate_failures(_metrics(math.nan), GATES) == ["average_precision=nan < 0.3"]


def test_first_champion_is_the_best_candidate_that_clears_the_gates() -> None:
    candidates = [
        Candidate("xgboost", "3", "r3", _metrics(0.6)),
        Candidate("catboost", "4", "r4", _metrics(0.7)),
    ]
    decision = decide_promotion(candidates, None, None, GATES)
    assert decision.promote and decision.candidate.version == "4"
    assert "first champion" in decision.reason


def test_a_candidate_must_beat_the_champion_on_the_primary_metric() -> None:
    candidate = [Candidate("xgboost", "5", "r5", _metrics(0.60))]
    assert not decide_promotion(candidate, "2", _metrics(0.60), GATES).promote  # a tie keeps the champion
    assert decide_promotion(candidate, "2", _metrics(0.59), GATES).promote
    stricter = GATES.model_copy(update={"min_improvement": 0.02})
    assert not decide_promotion(candidate, "2", _metrics(0.59), stricter).promote


def test_force_waives_the_comparison_but_never_the_gates() -> None:
    good = [Candidate("xgboost", "5", "r5", _metrics(0.40))]
    assert decide_promotion(good, "2", _metrics(0.9), GATES, force=True).promote
    bad = [Candidate("xgboost", "6", "r6", _metrics(0.10))]
    forced = decide_promotion(bad, "2", _metrics(0.9), GATES, force=True)
    assert not forced.promote and forced.gate_failures["xgboost"]


def test_a_worse_model_is_rejected_and_the_decision_round_trips() -> None:
    worse = [Candidate("catboost", "7", "r7", _metrics(0.35))]
    decision = decide_promotion(worse, "2", _metrics(0.7), GATES)
    assert not decision.promote and "does not beat champion v2" in decision.reason
    assert PromotionDecision.from_dict(decision.as_dict()) == decision


def test_the_champion_itself_is_not_promoted_again() -> None:
    same = [Candidate("xgboost", "2", "r2", _metrics(0.7))]
    decision = decide_promotion(same, "2", _metrics(0.7), GATES)
    assert not decision.promote and "already champion" in decision.reason


def test_when_every_candidate_fails_the_gates_the_best_one_is_named_in_the_rejection() -> None:
    bad = [Candidate("xgboost", "8", "r8", _metrics(0.10)), Candidate("catboost", "9", "r9", _metrics(0.20))]
    decision = decide_promotion(bad, "2", _metrics(0.7), GATES)
    assert not decision.promote and decision.candidate.version == "9"
    assert set(decision.gate_failures) == {"xgboost", "catboost"}


def test_the_protocol_decides_by_default_and_the_primary_metric_stays_configurable() -> None:
    # better on the whole window (it finds cards the bank already knew), worse by the protocol
    knowing = Candidate("catboost", "8", "r8", _metrics(0.75, protocol_ap=0.40))
    finding = Candidate("xgboost", "9", "r9", _metrics(0.70, protocol_ap=0.55))
    assert GATES.primary_metric == "protocol_average_precision_mean"
    assert decide_promotion([knowing, finding], None, None, GATES).candidate.version == "9"
    simple = GATES.model_copy(update={"primary_metric": "average_precision"})
    assert decide_promotion([knowing, finding], None, None, simple).candidate.version == "8"
