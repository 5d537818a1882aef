"""Issue 22: rows a classifier cannot tell from real ones. The bottom-up generators keep the shape of real rows (TableShape):
columns that occur in few combinations are drawn as one of their real combinations, numbers on their column's values and
decimals, without breaking the conditional contract, the hard rules or the copy policy. The tables here are built with a
known shape; Bank Marketing, where the issue measured it, runs when the benchmark data folder is here."""
import json, os, subprocess, sys, warnings
from pathlib import Path
import numpy as np, pandas as pd, pytest
from tabsynth.core import Schema
from tabsynth.datasets import list_datasets, load, split
from tabsynth.evaluation import DetectionAUC, MarginalDistance, detection_columns, train_and_score
from tabsynth.hybrid import HybridSynthesizer, TableShape, bottom_up, joint_groups

OURS = ['independent', 'gaussian_copula', 'random_forest', 'xgboost']


def accounts(n=3000, seed=0):
    "Accounts opened in 24 months (each month its own rate and price index), an age, a balance in cents, a plan and churn."
    rng = np.random.default_rng(seed)
    months = pd.DataFrame({'month': np.arange(1, 25), 'rate': (2 + np.cumsum(rng.choice([-0.25, 0, 0.25], 24))).round(2),
                           'price_index': (92 + np.cumsum(rng.normal(0, 0.2, 24))).round(3)})
    f = months.sample(n, replace=True, random_state=seed).reset_index(drop=True)
    f['age'] = rng.integers(18, 80, n)
    f['balance'] = np.exp(rng.normal(7 + 0.01 * f.age, 1)).round(2)
    f['plan'] = np.where(f.balance > 3000, 'plus', 'basic')
    f['churn'] = (rng.random(n) < 1 / (1 + np.exp(-(f.rate - 2) * 2 + 0.0002 * f.balance))).astype(int)
    return f, months, Schema.infer(f, 'churn', kinds={'churn': 'categorical'}, name='accounts')


@pytest.fixture(scope='module')
def table():
    f, months, schema = accounts()
    return f.iloc[:2000].reset_index(drop=True), f.iloc[2000:].reset_index(drop=True), months, schema


def test_joint_groups_finds_what_one_column_determines_and_nothing_else(table):
    train, _, _, schema = table
    assert joint_groups(train, schema) == [['month', 'rate', 'price_index']]
    assert joint_groups(train, schema, exclude=['month']) == [['rate', 'price_index']]   # a conditioned column is never grouped
    rng = np.random.default_rng(1)
    loose = pd.DataFrame({'a': rng.integers(0, 5, 3000), 'b': rng.choice(list('xyz'), 3000), 'c': rng.integers(0, 30, 3000)})
    assert joint_groups(loose, Schema.infer(loose)) == []                                # independent columns stay apart


def test_the_shape_round_trips_and_keeps_spikes(table):
    train, _, _, schema = table
    sh = TableShape().fit(train, schema)
    back = sh.decode(sh.encode(train))
    pd.testing.assert_frame_equal(back, train[schema.names])                             # the training rows come back as they were
    spiky = pd.DataFrame({'ratio': np.r_[np.repeat([3.0, 4.0, 5.0], 300), np.round(np.linspace(3.1, 4.9, 60), 2)]})
    s = Schema.infer(spiky)
    shape = TableShape().fit(spiky, s)
    noisy = pd.DataFrame({'ratio': spiky.ratio.to_numpy() + np.random.default_rng(0).normal(0, 0.2, len(spiky))})
    out = shape.decode(noisy)
    assert out.ratio.isin(set(spiky.ratio)).all()                                          # every number a value the column takes
    assert (out.ratio % 1 == 0).mean() > 0.8                                              # and a spike stays a spike (real: 94 %)
    test = pd.DataFrame({'ratio': [3.4999, 4.0001]})
    assert shape.decode(test, fixed=['ratio']).ratio.tolist() == [3.4999, 4.0001]          # a given (conditioned) value is never moved


@pytest.mark.parametrize('name', OURS)
def test_every_generator_writes_real_combinations_only(table, name):
    train, _, months, schema = table
    rows = bottom_up(name, random_state=0).fit(train, schema).sample(1500)
    combos = rows[['month', 'rate', 'price_index']].drop_duplicates()
    assert len(combos.merge(months)) == len(combos)                                       # no month with another month's rate
    assert rows.age.isin(set(train.age)).all() and (rows.balance.round(2) == rows.balance).all()


def test_the_shape_makes_the_chain_pass_for_real(table):
    train, fresh, _, schema = table
    det = lambda rows: DetectionAUC().compute(train, rows, schema)
    draw = lambda **kw: bottom_up('random_forest', random_state=0, **kw).fit(train, schema).sample(2000)
    before = draw(shape=False, leaf_size=0)                # prediction + residual, the columns as they are (as before issue 22, but for its parents)
    shape_only, leaves_only, after = draw(leaf_size=0), draw(shape=False), draw()
    assert det(before) > 0.85 and det(fresh) < 0.6                                         # measured: 0.90 (0.997 with parents by correlation), 0.51
    assert max(det(shape_only), det(leaves_only), det(after)) < 0.6                         # either fix alone passes here: 0.50, 0.50, 0.50
    assert MarginalDistance().compute(train, after, schema) <= MarginalDistance().compute(train, before, schema)
    cols = detection_columns(train, before, schema)
    assert cols['alone'].idxmax() in ('rate', 'price_index')                              # values between a month's real ones give it away
    score = lambda rows: train_and_score(rows, fresh, schema, 'linear')['auroc']
    assert score(after) >= score(before) - 0.02                                           # and the rows are as useful as before


def test_a_forest_draws_numbers_from_its_leaves(table):
    train, _, _, schema = table
    chain = bottom_up('random_forest', random_state=0, shape=False).fit(train, schema)
    assert chain.leaf_size == 10 and any(l.leaves is not None for l in chain.links_)
    rows = chain.sample(1000)
    assert rows.balance.isin(set(train.balance)).all()        # a leaf holds training rows: each number is one of their values
    assert rows.balance.nunique() > 300                       # from many leaves, not a few rows
    with pytest.raises(ValueError, match='leaf draws need a forest'):
        bottom_up('xgboost', leaf_size=5)
    with pytest.raises(ValueError, match='leaf_size=-1'):
        bottom_up('random_forest', leaf_size=-1)


def test_a_leaf_drawing_forest_keeps_counts_as_numbers_and_the_same_trees_on_any_threads(table):
    train, _, _, schema = table
    t = train.assign(visits=np.random.default_rng(1).poisson(1 + train.rate))      # a count of about ten values
    s = Schema.infer(t, 'churn', kinds={'churn': 'categorical'}, name='visits')
    leaf, resid = (bottom_up('random_forest', random_state=0, leaf_size=k).fit(t, s) for k in (10, 0))
    assert 'visits' not in leaf.shape_.classes_ and 'visits' in resid.shape_.classes_  # leaves hold real counts; prediction + residual needs classes
    assert leaf.sample(1000).visits.isin(set(t.visits)).all()
    one, two = (bottom_up('random_forest', random_state=0, n_jobs=k).fit(train, schema).sample(500) for k in (1, 2))
    pd.testing.assert_frame_equal(one, two)                                           # threads change the time, not the rows

def test_the_contract_holds_with_the_shape(table):
    train, _, months, schema = table
    chain = bottom_up('random_forest', random_state=0).fit(train, schema, first=['month'])
    march = chain.sample(60, conditions=pd.DataFrame({'month': [3] * 60}))
    assert march[['month', 'rate', 'price_index']].drop_duplicates().values.tolist() == months[months.month == 3].values.tolist()
    with pytest.raises(ValueError, match=r"fit with first=\['rate'\]"):
        chain.sample(2, conditions=pd.DataFrame({'rate': [2.0, 2.0]}))
    again = [bottom_up('gaussian_copula', random_state=5).fit(train, schema).sample(300) for _ in range(2)]
    pd.testing.assert_frame_equal(*again)                                                  # the same seed, the same rows
    t = {'name': 'plus plans', 'columns': {'plan': {'values': ['plus']}},
         'rules': [{'name': 'old enough', 'if': {'column': 'plan', 'op': '==', 'value': 'plus'}, 'then': {'column': 'age', 'op': '>=', 'value': 20}}]}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        h = HybridSynthesizer(t, 'random_forest', random_state=0).fit(train, schema)
        rows = h.sample(400, seed=0)
    assert set(rows.plan) == {'plus'} and (rows.age >= 20).all() and h.report_.hard_rate == 0   # template and hard rules still hold


@pytest.mark.skipif(not list_datasets().loc['bank-additional', 'available'], reason='bank-additional comes from the benchmark data folder, which is missing here')
def test_bank_marketing_passes_for_real():
    ds = load('bank-additional')
    tr, va, te = split(ds, seed=42)
    train = pd.concat([tr, va], ignore_index=True).sample(12000, random_state=0).reset_index(drop=True)
    g = bottom_up('random_forest', random_state=0).fit(train, ds.schema)
    assert g.shape_.groups_ == [['emp.var.rate', 'cons.price.idx', 'cons.conf.idx', 'euribor3m', 'nr.employed']]   # one month's indicators
    rows = g.sample(5000)
    assert DetectionAUC().compute(train, rows, ds.schema) < 0.7                            # before TableShape: 0.998
    assert MarginalDistance().compute(train, rows, ds.schema) < 0.02


def test_bench_realism_on_a_bundled_table(tmp_path):
    r = subprocess.run([str(Path(sys.executable).parent/'tabsynth'), 'bench', 'realism', '--tables', 'iris', '--generators', 'random_forest',
                        'random_forest, no shape', 'sdv_copula', '--seeds', '1', '--rows', '300', '--out', str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    f = pd.read_csv(tmp_path/'realism.csv')
    assert set(f.generator) == {'real rows', 'random_forest', 'random_forest, no shape', 'sdv_copula'} and f['detection AUC'].notna().all()
    assert '## iris' in r.stdout and '## Targets' in (tmp_path/'summary.md').read_text()


def test_totals_add_up_for_every_generator_and_through_the_copy_guard():
    "A total of two parts is added, not drawn: every generator keeps it, also when the copy guard mends many copies by swaps."
    rng = np.random.default_rng(3)
    f = pd.DataFrame({'hour': rng.integers(0, 8, 1500), 'temp': rng.choice([10, 15, 20, 25, 30], 1500), 'casual': rng.poisson(1, 1500)})
    f['registered'] = rng.poisson(1 + f.hour)
    f['total'] = f.casual + f.registered                                              # few values: copies of training rows are common
    s = Schema.infer(f, 'total', name='few rides')
    adds_up = lambda rows: (rows.casual + rows.registered == rows.total).mean()
    for name in OURS:
        for allow in ('real', False):
            g = bottom_up(name, random_state=0, allow_copies=allow).fit(f, s)
            rows = g.sample(1000)
            assert g.shape_.sums_ == [('total', 'casual', 'registered')]
            assert adds_up(rows) >= 0.99, (name, allow, adds_up(rows))
            if allow is False: assert not len(rows.merge(f.drop_duplicates())) and g.copies_redrawn_ > 0   # copies were mended, none is left
    assert adds_up(bottom_up('random_forest', random_state=0, shape=False).fit(f, s).sample(1000)) < 0.9
