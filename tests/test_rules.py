"""Rules: bad input gives clear errors, SDV samples obey exported rules, and the mask benchmark holds its target."""
import json
import numpy as np
import pandas as pd
import pytest
from tabsynth.core import Column, Schema
from tabsynth.datasets import load
from tabsynth.rules import (Col, Conjunction, Implication, Predicate as P, Rule, RuleError, Template, bench_mask,
                            overlap, parse_rule, sdv_constraints)

SCHEMA = Schema([Column('age', 'integer', min=18, max=95), Column('income', 'numeric', min=0, max=1e6),
                 Column('job', 'categorical', categories=['admin.', 'services', 'blue-collar']),
                 Column('y', 'categorical', categories=[0, 1]), Column('opened', 'datetime', min='2000-01-01', max='2030-01-01')],
                target='y', task='classification')
FRAME = pd.DataFrame({'age': [20, 30, 40], 'income': [1e4, np.nan, 8e4], 'job': ['admin.', 'services', None], 'y': [0, 1, 1],
                      'opened': pd.to_datetime(['2020-01-01', '2021-06-01', None])})


@pytest.mark.parametrize('make, message', [
    (lambda: P('agee', '<', 3).validate(SCHEMA), "unknown column 'agee' (did you mean 'age'?)"),
    (lambda: P('agee', '<', 3).mask(FRAME), "the frame lacks (did you mean 'age'?)"),
    (lambda: P('job', '==', 3).mask(FRAME), "holds text, but the value 3 is int"),
    (lambda: P('age', '==', 'x').mask(FRAME), "holds numbers, but the value 'x' is str"),
    (lambda: P('age', '<', 'thirty'), "needs a number or a date, got the string 'thirty'"),
    (lambda: P('job', '<', 2).validate(SCHEMA), "column 'job' is categorical, so it has no order"),
    (lambda: P('job', 'in', ['admin', 'cook']).validate(SCHEMA), "$.value[1]: job='cook' is not one of"),
    (lambda: P('y', '==', 2).validate(SCHEMA), "y=2 is not one of 0 | 1"),
    (lambda: P('opened', '<', 5).validate(SCHEMA), "holds dates, so `opened < 5` needs a date"),
    (lambda: P('opened', '<', 5).mask(FRAME), "holds dates; compare it with a date"),
    (lambda: P('age', '>', P('income', '<', 1).value).mask(pd.DataFrame({'age': [True]})), "holds booleans"),
    (lambda: P('age', 'between', [1, 2]), "'between' is not an operator"),
    (lambda: P('age', 'in', []), "needs at least one value"),
    (lambda: P('age', '<', float('inf')), "not a finite number"),
    (lambda: P('age', '<', None), "never satisfies a predicate"),
    (lambda: parse_rule('{"all": [}'), "not valid JSON"),
    (lambda: parse_rule({'all': [{'column': 'age', 'op': '<'}]}), "$.all[0]: a predicate needs value"),
    (lambda: parse_rule({'every': []}), "exactly one of 'all', 'any'"),
    (lambda: parse_rule([1, 2]), "a rule is an object"),
    (lambda: Template.from_dict({'columns': {'y': {'values': [0, 1], 'weights': [1, -1]}}}), "$.columns.y.weights: weights must be finite numbers >= 0"),
    (lambda: Template.from_dict({'columns': {}, 'rules': [{'then': {'column': 'y', 'op': '==', 'value': 1}, 'hard': 'yes'}]}), "$.rules[0].hard: must be true or false"),
    (lambda: Template.from_dict({'colums': {}}), "$.colums: unknown key (did you mean 'columns'?)"),
    (lambda: Template.from_dict({'columns': {'y': {'values': [0, 1]}}, 'rules': [{'then': {'column': 'y', 'op': '==', 'value': 1}}, {'name': 'rule 0', 'then': {'column': 'y', 'op': '==', 'value': 0}}]}), "repeats the name"),
    (lambda: Template.from_dict({'columns': {'y': {'values': [0, 2]}}}).validate(SCHEMA), "$.columns.y.values[1]: y=2 is not one of"),
    (lambda: Template.from_dict({'rules': [{'if': {'all': [{'column': 'age', 'op': '<', 'value': 1}, {'column': 'age', 'op': '>', 'value': 2}]},
                                            'then': {'column': 'y', 'op': '==', 'value': 1}}]}).validate(SCHEMA), "$.rules[0].if: `age < 1 & age > 2` can never hold"),
    (lambda: Template.from_dict({'columns': {'y': {'values': [0]}}, 'rules': [{'then': {'column': 'y', 'op': '==', 'value': 1}}]}).validate(SCHEMA), "the template draws y only from [0]"),
    (lambda: overlap(P('job', '==', 'admin.'), P('age', '<', 3), 'a frame'), "the domain is a Schema"),
    (lambda: P('age', '<', 3) & 'age < 3', "rules combine with predicates"),
])
def test_bad_input_is_a_clear_error(make, message):
    with pytest.raises((RuleError, TypeError)) as e: make()
    assert message in str(e.value), str(e.value)


def test_contradictions_are_results_not_errors():
    r = P('age', '<', 1) & P('age', '>', 2)
    assert r.empty and 'cannot both hold' in r.why_empty()
    assert not r.mask(FRAME).any()
    s = (r | P('age', '<', 30)).simplify()
    assert str(s) == 'age < 30' and len(s.dropped) == 1


def test_missing_values_never_satisfy_a_predicate():
    assert P('income', '!=', 1.0).mask(FRAME).tolist() == [True, False, True]
    assert P('job', 'not in', ['admin.']).mask(FRAME).tolist() == [False, True, False]
    assert P('opened', '<', '2030-01-01').mask(FRAME).tolist() == [True, True, False]
    t = Template.from_dict({'rules': [{'name': 'r', 'if': {'column': 'job', 'op': '==', 'value': 'services'},
                                       'then': {'column': 'income', 'op': '<', 'value': 5e4}}]})
    assert t.violations(FRAME)['r'].broken == 1  # missing under `then` breaks the rule
    assert t.repair(FRAME).rejects.index.tolist() == [1]


def test_strict_and_negative_thresholds():
    df = pd.DataFrame({'x': [-2.5, -1.0, 0.0, 1.0]})
    assert P('x', '<', -1).mask(df).tolist() == [True, False, False, False]
    assert P('x', '<=', -1).mask(df).tolist() == [True, True, False, False]
    assert P('x', '>', -2.5).mask(df).tolist() == [False, True, True, True]
    assert parse_rule(P('x', '>', -2.5).to_json()) == P('x', '>', -2.5)


def test_pandas_dtypes_give_the_same_mask():
    base = pd.DataFrame({'n': [1, 2, None, 4], 'c': ['a', 'b', None, 'a']})
    typed = base.astype({'n': 'Int64', 'c': 'category'})
    strings = base.astype({'c': 'string'})
    for r in (P('n', '>=', 2), P('n', '!=', 2), P('c', '==', 'a'), P('c', 'not in', ['a']), P('n', 'in', [1, 4])):
        assert r.mask(base).tolist() == r.mask(typed).tolist() == r.mask(strings).tolist(), r


def test_repair_clips_strict_bounds_inside():
    t = Template.from_dict({'rules': [{'name': 'cap', 'if': {'column': 'age', 'op': '<', 'value': 25},
                                       'then': {'column': 'income', 'op': '<', 'value': 5e4}}]}).validate(SCHEMA)
    df = pd.DataFrame({'age': [20, 22, 60], 'income': [9e4, 1e3, 9e4], 'job': 'admin.', 'y': 0, 'opened': pd.Timestamp('2020-01-01')})
    fixed = t.repair(df)
    assert len(fixed.valid) == 3 and fixed.valid.income.iloc[0] < 5e4 and fixed.valid.income.iloc[0] > 49999.99
    assert fixed.report.loc['cap', 'repaired'] == 1 and t.violations(fixed.valid).rate == 0


def test_skeleton_is_seeded_and_obeys_or_rules_by_redrawing():
    t = Template.from_dict({'columns': {'y': {'values': [0, 1], 'weights': [0.5, 0.5]}, 'age': {'uniform': {'low': 18, 'high': 95}},
                                        'job': {'values': ['admin.', 'services', 'blue-collar']}},
                            'rules': [{'name': 'young or admin', 'if': {'column': 'y', 'op': '==', 'value': 1},
                                       'then': {'any': [{'column': 'age', 'op': '<', 'value': 30}, {'column': 'job', 'op': '==', 'value': 'admin.'}]}}]}).validate(SCHEMA)
    a, b = t.sample_skeleton(3000, seed=7), t.sample_skeleton(3000, seed=7)
    assert a.equals(b) and not a.equals(t.sample_skeleton(3000, seed=8))
    assert t.violations(a).rate == 0 and a.age.dtype == 'int64' and a.age.between(18, 95).all()


def test_sdv_samples_satisfy_exported_rules():
    from sdv.single_table import GaussianCopulaSynthesizer
    ds = load('penguins')
    df = ds.frame.dropna().reset_index(drop=True)
    rules = [Implication('gentoo', P('island', '==', 'Biscoe'), P('species', '==', 'Gentoo')),
             Implication('depth', P('bill_depth_mm', '<', Col('bill_length_mm'))),
             Implication('heavy', P('body_mass_g', '>=', 3000) & P('body_mass_g', '<=', 6000))]
    cons = sdv_constraints(rules)
    assert [type(c).__name__ for c in cons] == ['TabsynthRule', 'TabsynthRule', 'Inequality']
    synth = GaussianCopulaSynthesizer(ds.schema.to_sdv_metadata())
    synth.add_constraints(cons)
    synth.fit({ds.schema.name: df})
    out = synth.sample(300)[ds.schema.name]
    assert len(out) == 300
    for r in rules: assert not r.broken(out).any(), r.name


def test_mask_benchmark_within_target(tmp_path):
    res = bench_mask(1_000_000, 10, repeat=3, out=tmp_path/'rules.csv', quiet=True)
    assert (tmp_path/'rules.csv').is_file()
    assert res.loc['Rule.mask', 'ratio'] <= 1.5, res


def test_review_fixes():
    "Column-to-column tests on nullable dtypes, dates written as text, links in overlap, whole numbers at the ends of a range."
    df = pd.DataFrame({'s': pd.array(['a', None, 'b'], dtype='string'), 's2': pd.array(['a', 'a', None], dtype='string'),
                       'B': pd.array([True, None, False], dtype='boolean'), 'b': [True, False, True]})
    assert P('s', '==', Col('s2')).mask(df).tolist() == [True, False, False]
    assert P('B', '!=', Col('b')).mask(df).tolist() == [False, False, True]
    d = pd.DataFrame({'d': pd.to_datetime(['2020-01-01', '2020-06-01'])})
    c = P('d', '==', '2020-01-01') & P('d', '>=', '2020-01-01')
    assert not c.empty and Rule((c,)).simplify().mask(d).tolist() == [True, False]
    with pytest.raises(RuleError, match='compares two columns'):
        overlap(P('x', '<', Col('y')), P('x', '>', Col('y')), pd.DataFrame({'x': [0., 10.], 'y': [0., 10.]}))
    t = Template.from_dict({'columns': {'n': {'uniform': {'low': 0, 'high': 4}}}}).validate(Schema([Column('n', 'integer', min=0, max=4)]))
    shares = t.sample_skeleton(50_000, seed=0).n.value_counts(normalize=True)
    assert shares.between(0.18, 0.22).all(), shares
    rej = Template.from_dict({'rules': [{'then': {'column': 'x', 'op': '==', 'value': 1}}]}).repair(pd.DataFrame({'x': [2], 'reason': ['mine']})).rejects
    assert rej.reason.tolist() == ['mine'] and 'repair_reason' in rej


def test_malformed_rule_and_template_json_is_a_rule_error():
    "LLM output is data: every wrong shape is a RuleError naming its JSON path, never a TypeError or an overflow later."
    from tabsynth.rules import parse_rule, RuleError, Template
    with pytest.raises(RuleError, match=r"\$.op: an operator is a string"): parse_rule({'column': 'a', 'op': ['=='], 'value': 1})
    with pytest.raises(RuleError, match=r"\$.column: a column is named by a string"): parse_rule({'column': ['a'], 'op': '==', 'value': 1})
    with pytest.raises(RuleError, match='too large to compare'): parse_rule({'column': 'a', 'op': '<', 'value': 10**400})
    with pytest.raises(RuleError, match='too large to add up'): Template.from_dict({'columns': {'g': {'values': ['a', 'b'], 'weights': [1e308, 1e308]}}})
