"""Fits the Python `lifetimes` package (0.11.3) to `histories.csv` and writes `expected.json`,
what `crates/guanxi-core/tests/lifetime_value.rs` compares guanxi's BG/NBD and Gamma-Gamma
with: the fitted parameters, the mean log-likelihood, and predictions for every 40th customer
(P(alive), expected purchases in 10 and 52 weeks, expected average value, 12-month CLV at 1%
a month, weekly data). Also prints how long lifetimes takes to fit 100,000 customers drawn the
same way (the file repeated 50 times), the baseline of the fit benchmark.

Run: python -m venv v && v/bin/pip install lifetimes==0.11.3 && v/bin/python lifetimes_expected.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

HERE = Path(__file__).resolve().parent

data = pd.read_csv(HERE / "histories.csv")
bgf = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
repeat = data[data["frequency"] > 0]
ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])

rows = []
for i in range(0, len(data), 40):
    h = data.iloc[i]
    x, t_x, age, m = int(h["frequency"]), float(h["recency"]), float(h["T"]), float(h["monetary_value"])
    row = {
        "index": i,
        "p_alive": float(bgf.conditional_probability_alive(x, t_x, age)[0]),
        "expected_10": float(bgf.conditional_expected_number_of_purchases_up_to_time(10, x, t_x, age)),
        "expected_52": float(bgf.conditional_expected_number_of_purchases_up_to_time(52, x, t_x, age)),
    }
    if x > 0:
        one = pd.Series([x]), pd.Series([t_x]), pd.Series([age]), pd.Series([m])
        row["expected_value"] = float(ggf.conditional_expected_average_profit(x, m))
        clv = ggf.customer_lifetime_value(bgf, *one, time=12, discount_rate=0.01, freq="W")
        row["clv_12m"] = float(clv.iloc[0])
    rows.append(row)

expected = {
    "lifetimes": "0.11.3",
    "bgnbd": {**{k: float(v) for k, v in bgf.params_.items()}, "neg_log_likelihood": float(bgf._negative_log_likelihood_)},
    "gamma_gamma": {**{k: float(v) for k, v in ggf.params_.items()}, "neg_log_likelihood": float(ggf._negative_log_likelihood_)},
    "predictions": rows,
}
(HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")

big = pd.concat([data] * 50, ignore_index=True)
start = time.perf_counter()
BetaGeoFitter().fit(big["frequency"], big["recency"], big["T"])
big_repeat = big[big["frequency"] > 0]
GammaGammaFitter().fit(big_repeat["frequency"], big_repeat["monetary_value"])
print(f"lifetimes fits 100,000 customers (BG/NBD + Gamma-Gamma) in {time.perf_counter() - start:.2f} s")
print(json.dumps({k: expected[k] for k in ("bgnbd", "gamma_gamma")}, indent=1))
