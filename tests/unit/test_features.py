from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.features import (
    BASELINE_FEATURES,
    FEATURE_NAMES,
    LABEL_DELAY_DAYS,
    WINDOW_FEATURES,
    build_features,
    feature_matrix,
)
from references import terminal_risk_table

DAY0 = pd.Timestamp("2018-04-02")  # a Monday


def _tx(rows: list[tuple[str, str, int, int, float, int]]) -> pd.DataFrame:
    """(id, time offset from DAY0, customer, terminal, amount, fraud)."""
    return pd.DataFrame(
        {
            "transaction_id": [r[0] for r in rows],
            "tx_datetime": [DAY0 + pd.Timedelta(r[1]) for r in rows],
            "customer_id": [r[2] for r in rows],
            "terminal_id": [r[3] for r in rows],
            "tx_amount": [r[4] for r in rows],
            "tx_fraud": [r[5] for r in rows],
        }
    )


def _by_id(features: pd.DataFrame) -> pd.DataFrame:
    return features.set_index("transaction_id")


def test_feature_vector_definition() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES))
    assert len(BASELINE_FEATURES) == 15 and FEATURE_NAMES[:15] == BASELINE_FEATURES
    assert FEATURE_NAMES[:3] == ("tx_amount", "tx_during_weekend", "tx_during_night")
    assert LABEL_DELAY_DAYS == 7
    assert all(f.delay_days == LABEL_DELAY_DAYS for f in WINDOW_FEATURES if f.entity == "terminal_id")
    assert all(f.delay_days == 0 for f in WINDOW_FEATURES if f.entity == "customer_id")


def test_weekend_and_night_flags() -> None:
    frame = _tx(
        [
            ("mon-night", "6h59m59s", 1, 1, 1.0, 0),
            ("mon-day", "7h", 1, 1, 1.0, 0),
            ("sat", "5D 12h", 1, 1, 1.0, 0),
            ("sun-night", "6D 0h", 1, 1, 1.0, 0),
            ("next-mon", "7D 23h59m", 1, 1, 1.0, 0),
        ]
    )
    f = _by_id(build_features(frame))
    assert f["tx_during_weekend"].to_dict() == {
        "mon-night": 0, "mon-day": 0, "sat": 1, "sun-night": 1, "next-mon": 0,
    }  # fmt: skip
    assert f["tx_during_night"].to_dict() == {
        "mon-night": 1, "mon-day": 0, "sat": 0, "sun-night": 1, "next-mon": 0,
    }  # fmt: skip


def test_customer_windows_include_the_current_transaction_and_exclude_the_boundary() -> None:
    frame = _tx(
        [
            ("a", "10h", 1, 1, 10.0, 0),
            ("b", "20h", 1, 2, 20.0, 0),
            ("c", "1D 9h", 1, 3, 30.0, 0),
            ("d", "1D 10h", 1, 4, 60.0, 0),  # exactly 24 h after "a": "a" is out of the 1-day window
            ("other", "1D 9h30m", 2, 1, 1000.0, 0),  # another customer never counts
            ("e", "8D 10h", 1, 5, 40.0, 0),
        ]
    )
    f = _by_id(build_features(frame))
    assert f.loc["a", ["customer_nb_tx_1d", "customer_avg_amount_1d"]].tolist() == [1, 10.0]
    assert f.loc["c", ["customer_nb_tx_1d", "customer_avg_amount_1d"]].tolist() == [3, 20.0]
    assert f.loc["d", ["customer_nb_tx_1d", "customer_avg_amount_1d"]].tolist() == [3, pytest.approx(110 / 3)]
    assert f.loc["d", ["customer_nb_tx_7d", "customer_avg_amount_7d"]].tolist() == [4, 30.0]
    # "e" is 7 days after "d" to the hour, and 7 days + 1 h after "c"
    assert f.loc["e", ["customer_nb_tx_7d", "customer_avg_amount_7d"]].tolist() == [1, 40.0]
    assert f.loc["e", ["customer_nb_tx_30d", "customer_avg_amount_30d"]].tolist() == [5, 32.0]
    assert f.loc["other", "customer_nb_tx_30d"] == 1


def test_amount_shape_by_hand() -> None:
    frame = _tx(
        [
            ("a", "0h", 1, 1, 10.0, 0),
            ("b", "1D", 1, 1, 30.0, 0),
            ("c", "2D", 1, 1, 20.0, 0),
            ("stolen", "3D", 1, 1, 100.0, 1),
            # exactly 7 days after "a": "a" is out of the 7-day window, in the 30-day one
            ("after", "7D", 1, 1, 40.0, 0),
            ("zero", "7D", 2, 1, 0.0, 0),
            ("late", "40D", 1, 1, 15.0, 0),
        ]
    )
    peak = _by_id(build_features(frame))["customer_max_amount_7d_over_median_30d"]
    assert peak["a"] == 1.0
    # 10 and 30: median 20, largest 30
    assert peak["b"] == 1.5
    # 10, 30, 20: median 20, largest 30 (the current transaction counts in both windows)
    assert peak["c"] == 1.5
    # 10, 30, 20, 100: median 25, the week's largest is the stolen 100
    assert peak["stolen"] == 4.0
    # the week: 30, 20, 100, 40 ("a" is out); the month: 10, 30, 20, 100, 40 (median 30)
    assert peak["after"] == pytest.approx(100 / 30)
    # a median of 0 gives 0, not a division by zero
    assert peak["zero"] == 0.0
    # everything else left both windows
    assert peak["late"] == 1.0


def test_terminal_windows_use_only_labels_at_least_the_delay_old() -> None:
    frame = _tx(
        [
            ("fraud0", "12h", 1, 9, 50.0, 1),
            ("genuine2", "2D 12h", 2, 9, 50.0, 0),
            ("fraud3", "3D 12h", 3, 9, 50.0, 1),
            # 1 s before the day-0 fraud is 7 days old: it must not count
            ("q_early", "7D 11h59m59s", 4, 9, 5.0, 0),
            # exactly 7 days: its label is published now, it counts
            ("q_exact", "7D 12h", 4, 9, 5.0, 0),
            # the day-3 fraud is 6 days old: only day 0 and 2 are known
            ("q_day9", "9D 12h", 4, 9, 5.0, 0),
            ("q_day10", "10D 12h", 4, 9, 5.0, 0),
            ("elsewhere", "10D 12h", 4, 8, 5.0, 0),
        ]
    )
    f = _by_id(build_features(frame))
    cols = ["terminal_nb_tx_1d", "terminal_risk_1d", "terminal_nb_tx_7d", "terminal_risk_7d"]
    assert f.loc["q_early", cols].tolist() == [0, 0, 0, 0]
    assert f.loc["q_exact", cols].tolist() == [1, 1.0, 1, 1.0]
    assert f.loc["q_day9", cols].tolist() == [1, 0.0, 2, 0.5]
    assert f.loc["q_day10", cols].tolist() == [1, 1.0, 3, pytest.approx(2 / 3)]
    assert f.loc["q_day10", ["terminal_nb_tx_30d", "terminal_risk_30d"]].tolist() == [3, pytest.approx(2 / 3)]
    assert f.loc["elsewhere", cols].tolist() == [0, 0, 0, 0]
    # the transactions' own labels never leak into their features
    assert f.loc["fraud3", cols].tolist() == [0, 0, 0, 0]
    age = "terminal_days_since_first_fraud_30d"
    assert f.loc["q_early", age] == 0  # no fraud known yet
    assert f.loc["q_exact", age] == 7
    assert f.loc["q_day9", age] == 9
    assert f.loc["q_day10", age] == 10
    assert f.loc["elsewhere", age] == 0
    assert f.loc["fraud3", age] == 0
    later = _by_id(build_features(pd.concat([frame, _tx([("q_day38", "38D 12h", 4, 9, 5.0, 0)])])))
    # 38 days: "fraud0" left the 30-day window of known labels, "fraud3" is still in it
    assert later.loc["q_day38", age] == 35


def test_young_labels_cannot_change_features(
    small_transactions: pd.DataFrame, small_features: pd.DataFrame
) -> None:
    """Point in time: flipping every label younger than the delay, or dropping the future, changes nothing."""
    times = small_transactions["tx_datetime"]
    busy = small_features.index[
        (small_features["terminal_nb_tx_30d"] > 3) & (times > times.iloc[len(times) // 2])
    ]
    i = busy[0]
    t = times.loc[i]
    names = list(FEATURE_NAMES)
    young = (times > t - pd.Timedelta(days=LABEL_DELAY_DAYS)) & (small_transactions.index != i)
    old = times <= t - pd.Timedelta(days=LABEL_DELAY_DAYS)

    def flipped(mask: pd.Series) -> pd.DataFrame:
        fraud = small_transactions["tx_fraud"]
        return build_features(small_transactions.assign(tx_fraud=np.where(mask, 1 - fraud, fraud)))

    pd.testing.assert_series_equal(small_features.loc[i, names], flipped(young).loc[i, names])
    # the control: labels old enough do move the terminal risk
    assert flipped(old).loc[i, "terminal_risk_30d"] != small_features.loc[i, "terminal_risk_30d"]

    past = times <= t
    truncated = build_features(small_transactions[past])
    pd.testing.assert_frame_equal(
        small_features.loc[past, names], truncated[names], check_exact=False, rtol=1e-9
    )


def test_row_order_does_not_matter(small_transactions: pd.DataFrame) -> None:
    sample = small_transactions.iloc[:20_000]
    shuffled = sample.sample(frac=1.0, random_state=3)
    a = build_features(sample).set_index("transaction_id")[list(FEATURE_NAMES)]
    b = build_features(shuffled).set_index("transaction_id")[list(FEATURE_NAMES)].loc[a.index]
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    assert build_features(shuffled).index.equals(shuffled.index)


def test_matches_a_brute_force_computation(
    small_transactions: pd.DataFrame, small_features: pd.DataFrame
) -> None:
    rng = np.random.default_rng(0)
    times = small_transactions["tx_datetime"].to_numpy()
    customers = small_transactions["customer_id"].to_numpy()
    terminals = small_transactions["terminal_id"].to_numpy()
    amounts = small_transactions["tx_amount"].to_numpy()
    fraud = small_transactions["tx_fraud"].to_numpy()
    day, delay = np.timedelta64(1, "D"), np.timedelta64(LABEL_DELAY_DAYS, "D")
    for i in rng.choice(len(times), size=150, replace=False):
        t = times[i]
        for w in (1, 7, 30):
            mine = (customers == customers[i]) & (times > t - w * day) & (times <= t)
            assert small_features[f"customer_nb_tx_{w}d"].iloc[i] == mine.sum()
            assert small_features[f"customer_avg_amount_{w}d"].iloc[i] == pytest.approx(amounts[mine].mean())
            seen = (terminals == terminals[i]) & (times > t - delay - w * day) & (times <= t - delay)
            assert small_features[f"terminal_nb_tx_{w}d"].iloc[i] == seen.sum()
            expected_risk = fraud[seen].mean() if seen.any() else 0.0
            assert small_features[f"terminal_risk_{w}d"].iloc[i] == pytest.approx(expected_risk)
        known = (terminals == terminals[i]) & (times > t - delay - 30 * day) & (times <= t - delay)
        known &= fraud == 1
        first = (t - times[known].min()) / day if known.any() else 0.0
        assert small_features["terminal_days_since_first_fraud_30d"].iloc[i] == pytest.approx(first)
        week = amounts[(customers == customers[i]) & (times > t - 7 * day) & (times <= t)]
        month = amounts[(customers == customers[i]) & (times > t - 30 * day) & (times <= t)]
        peak = small_features["customer_max_amount_7d_over_median_30d"].iloc[i]
        assert peak == pytest.approx(week.max() / np.median(month))


def test_terminal_risk_table_matches_batch_features(
    small_transactions: pd.DataFrame, small_features: pd.DataFrame
) -> None:
    as_of = small_transactions["tx_datetime"].iloc[40_000]
    table = terminal_risk_table(small_transactions, as_of)
    at_time = small_features[small_features["tx_datetime"] == as_of]
    names = [f.name for f in WINDOW_FEATURES if f.entity == "terminal_id"]
    for _, row in at_time.iterrows():
        expected = table.loc[row["terminal_id"], names] if row["terminal_id"] in table.index else 0.0
        assert np.allclose(row[names].to_numpy(dtype=float), expected)
    assert len(table) > 100


def test_unknown_labels_count_as_not_fraud() -> None:
    frame = _tx([("f", "0h", 1, 1, 1.0, 1), ("q", "8D", 2, 1, 1.0, 0)])
    known = build_features(frame)
    unknown = build_features(frame.drop(columns="tx_fraud"), fraud=pd.Series([np.nan, 0.0]))
    assert known.loc[1, "terminal_risk_7d"] == 1.0 and unknown.loc[1, "terminal_risk_7d"] == 0.0
    with pytest.raises(ValueError, match="need labels"):
        build_features(frame.drop(columns="tx_fraud"))


def test_feature_matrix_is_the_model_input(small_features: pd.DataFrame) -> None:
    X = feature_matrix(small_features)
    assert X.shape == (len(small_features), len(FEATURE_NAMES)) and X.dtype == np.float32
    assert np.isfinite(X).all()
    # fraud separates on the terminal risk and the amount, as it should in this world
    fraud = small_features["tx_fraud"] == 1
    assert (
        small_features.loc[fraud, "terminal_risk_7d"].mean()
        > 5 * small_features.loc[~fraud, "terminal_risk_7d"].mean()
    )
