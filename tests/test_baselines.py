"""The baselines measure what they say on tables no lesson names: a 0/1 class target, repeated rows."""
import numpy as np
import pandas as pd
from tabsynth.core import Schema
from tabsynth.evaluation import make_generator


def binary_table(n=800, seed=0):
    "A classification table whose target is a 0/1 integer, 55 % ones, as in many CSVs (churn, default, fraud)."
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = (rng.random(n) < np.where(x > 0, .8, .3)).astype(int)
    return pd.DataFrame({'x': x, 'w': rng.gamma(2, 3, n), 'k': rng.integers(0, 40, n), 'y': y})


def test_gaussian_copula_keeps_the_class_shares_of_an_integer_target():
    # Before: the 0/1 target reached SDV as a number, the copula rounded a continuous margin and ~91 % of the rows
    # came out one class; a classification target is categorical to SDV whatever its values.
    real = binary_table()
    schema = Schema.infer(real, target='y')
    assert schema.task == 'classification' and schema.is_label('y')
    assert schema.to_sdv_metadata().to_dict()['tables'][schema.name]['columns']['y']['sdtype'] == 'categorical'
    rows = make_generator('gaussian_copula', random_state=0).fit(real, schema).sample(2000)
    assert abs(rows.y.mean() - real.y.mean()) < 0.05, (rows.y.mean(), real.y.mean())
    assert set(rows.y.unique()) == {0, 1}


def test_dcr_stays_meaningful_when_the_real_rows_repeat():
    # Before: holdout rows that repeat training rows up to float rounding gave a holdout median of ~1e-8 and a ratio in
    # the millions (5,293,099.7 on a real table). Rounding is zero now, and a zero holdout median switches to the means.
    from tabsynth.evaluation import DCR, make_generator
    rng = np.random.default_rng(1)
    distinct = pd.DataFrame({'x': rng.normal(size=300), 'k': rng.integers(0, 9, 300).astype(float), 'c': rng.choice(list('abc'), 300)})
    table = distinct.sample(1000, replace=True, random_state=1).reset_index(drop=True)
    train, holdout = table.iloc[:800], table.iloc[800:].copy()
    holdout['x'] = holdout.x * (1 + 1e-9)        # the same values after a unit conversion and back: equal up to rounding
    schema = Schema.infer(table)
    rows = make_generator('independent', random_state=0).fit(train, schema).sample(500)
    b = DCR().compute_breakdown(train, rows, schema, holdout)
    assert b['holdout_median'] == 0 and b['holdout_on_real'] > 0.9 and b['statistic'] == 'mean'
    assert np.isfinite(b['score']) and 1 < b['score'] < 100, b
    assert DCR().compute_breakdown(train, train, schema, holdout)['score'] == 0   # a copy is still caught
