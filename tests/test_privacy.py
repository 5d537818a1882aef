"""No generator returns an exact copy of a training row more often than the policy allows: never with allow_copies=False, as often as real rows repeat one by default ('real': a table without repeats gets none), always with True."""
import pandas as pd
import pytest
from tabsynth.datasets import load
from tabsynth.evaluation import ExactCopyRate, CopyError, make_generator
from tabsynth.hybrid import bottom_up, HybridSynthesizer

DS = load('penguins')
# a table whose rows are every combination of its values: no new row exists, every draw is a copy
COARSE = pd.DataFrame({'a': ['x', 'y'] * 20, 'b': ['u', 'u', 'v', 'v'] * 10})
TEMPLATE = {'name': 'balanced', 'columns': {'species': {'values': ['Adelie', 'Chinstrap', 'Gentoo']}}}
COARSE_TEMPLATE = {'name': 'balanced', 'columns': {'a': {'values': ['x', 'y']}}}


def copies(real, rows, schema=None):
    from tabsynth.core import Schema
    return ExactCopyRate().compute_breakdown(real, rows, schema or Schema.infer(real))['copies']


@pytest.mark.parametrize('name', ['independent', 'gaussian_copula', 'random_forest', 'xgboost', 'ctgan', 'tvae'])
def test_bottom_up_generators_return_no_copies(name):
    kw = {'epochs': 2} if name in ('ctgan', 'tvae') else {}
    g = bottom_up(name, random_state=0, **kw).fit(DS.frame, DS.schema)
    assert copies(DS.frame, g.sample(2000), DS.schema) == 0


@pytest.mark.parametrize('name', ['independent', 'interpolation', 'gaussian_copula'])
def test_baselines_return_no_copies(name):
    g = make_generator(name, random_state=0).fit(DS.frame, DS.schema)
    assert copies(DS.frame, g.sample(2000), DS.schema) == 0


def test_hybrid_returns_no_copies_even_after_repairs():
    rules = dict(TEMPLATE, rules=[{'if': {'column': 'species', 'op': '==', 'value': 'Gentoo'},
                                   'then': {'column': 'body_mass_g', 'op': '>=', 'value': 4500}}])
    h = HybridSynthesizer(rules, 'random_forest', random_state=0).fit(DS.frame, DS.schema)
    rows = h.sample(3000, seed=0)
    assert copies(DS.frame, rows, DS.schema) == 0


def test_few_distinct_rows_is_an_error_not_a_loop():
    "With copies forbidden (allow_copies=False), a table with no new row to draw ends in a CopyError that names the way out."
    with pytest.raises(CopyError, match='allow_copies=True'): bottom_up('independent', random_state=0, allow_copies=False).fit(COARSE).sample(200)
    with pytest.raises(CopyError, match='allow_copies=True'): make_generator('independent', random_state=0, allow_copies=False).fit(COARSE).sample(200)
    with pytest.raises(CopyError, match='allow_copies=True'):
        HybridSynthesizer(COARSE_TEMPLATE, 'gaussian_copula', random_state=0, allow_copies=False).fit(COARSE).sample(200, seed=0)


def test_by_default_a_table_of_repeats_may_repeat_as_its_real_rows_do():
    "Every COARSE row repeats another, so a fresh real row would too: the default policy ('real') lets the copies through."
    assert copies(COARSE, bottom_up('independent', random_state=0).fit(COARSE).sample(200)) == 200
    h = HybridSynthesizer(COARSE_TEMPLATE, 'gaussian_copula', random_state=0).fit(COARSE)
    assert len(h.sample(200, seed=0)) == 200 and h.report_.privacy['real copy rate'] == 1.0


def test_copies_when_asked():
    g = bottom_up('independent', random_state=0, allow_copies=True).fit(COARSE)
    assert copies(COARSE, g.sample(200)) == 200
    h = HybridSynthesizer(COARSE_TEMPLATE, 'gaussian_copula', allow_copies=True, random_state=0).fit(COARSE)
    assert len(h.sample(200, seed=0)) == 200


def duplicate_heavy(n=1000, distinct=120, seed=0):
    "A table where most rows repeat another (as in survey or log tables): `distinct` rows drawn with replacement to `n`."
    import numpy as np
    rng = np.random.default_rng(seed)
    base = pd.DataFrame({'x': rng.normal(size=distinct).round(1), 'z': rng.integers(0, 50, distinct).astype(float),
                         'c': rng.choice(['a', 'b', 'c'], distinct)})
    base['y'] = np.where(base.x + rng.normal(0, .5, distinct) > 0, 'pos', 'neg')
    return base.sample(n, replace=True, random_state=seed).reset_index(drop=True)


def test_interpolation_on_a_table_of_duplicates():
    # Before: a duplicate row was its own nearest neighbour, the interpolation landed on it, 774 of 1,000 rows were copies
    # at first and sample() raised CopyError with its defaults; now each row interpolates towards rows that differ from it.
    real = duplicate_heavy()
    assert real.duplicated().mean() > 0.8
    rows = make_generator('interpolation', random_state=0, allow_copies=False).fit(real).sample(1000)
    assert len(rows) == 1000 and copies(real, rows) == 0
    assert rows.drop_duplicates().shape[0] > 900, "the rows must spread between real rows, not pile up on a few"
