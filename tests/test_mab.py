"""MDS (DATE's Algorithm 3) and the greedy selections against an evaluator whose truth is known."""
from dataclasses import dataclass
import numpy as np
import pandas as pd
import pytest
from tabsynth.mab import mds, forward_greedy, backward_greedy, top_k, diversity, _schedule
from tabsynth.rules import parse_rule


@dataclass
class A:
    rule: object
    rows: pd.DataFrame
    rho: float


GAIN = {0: 0.04, 1: 0.03, 2: -0.05, 3: 0.0, 4: -0.02, 5: 0.02}   # true validation-error drop each arm brings (negative: it hurts)


def _arms():
    return [A(parse_rule({'column': 'x', 'op': '>', 'value': i}), pd.DataFrame({'arm_id': [i] * 10, 'x': np.arange(10.0) + i}), 0.1 - GAIN[i])
            for i in GAIN]


def _evaluate(noise=0.01):
    def evaluate(rows, seed=0):
        ids = set() if rows is None else set(rows['arm_id'])
        return 0.30 - sum(GAIN[i] for i in ids) + np.random.default_rng(seed).normal(0, noise)
    return evaluate


def test_mds_accepts_the_arms_that_help_and_never_one_that_hurts():
    sel = mds(_arms(), _evaluate(), alpha=1.0, budget=300, random_state=0)
    assert {0, 1} <= set(sel.accepted) and not {2, 4} & set(sel.accepted), sel.to_frame()
    assert sel.error < sel.base_error
    for i in sel.accepted: assert sel.status[i]['mean gain'] >= 0
    assert mds(_arms(), _evaluate(), alpha=1.0, budget=300, random_state=0).accepted == sel.accepted   # deterministic
    assert set(sel.to_frame()['phase']) == set(range(1, len(GAIN) + 1))                              # one arm leaves per phase


def test_schedule_and_budget():
    for K, n in [(1, 1), (3, 10), (7, 60), (20, 200)]:
        s = _schedule(K, n)
        assert len(s) == K and s == sorted(s) and s[0] >= 1 and sum(s) <= max(n, K) + K
    assert _schedule(3, 1) == [1, 1, 1] and _schedule(1, 5) == [5]
    sel = mds(_arms(), _evaluate(), budget=50)
    pulls = sel.log.groupby('arm').size()
    assert all(pulls[i] >= _schedule(6, 50)[int(sel.status[i]['phase']) - 1] for i in range(6))
    assert sel.fits >= len(sel.log) + 2   # every pull, the model without arms, the final model


def test_arms_that_help_alone_but_not_together_are_caught():
    table = {(): .30, (0,): .28, (1,): .28, (0, 1): .32}
    def ev(rows, seed=0):
        ids = () if rows is None else tuple(sorted(set(rows['arm_id'])))
        return table[ids] + np.random.default_rng(seed).normal(0, .005)
    arms = [A(parse_rule({'column': 'x', 'op': '>', 'value': 0}), pd.DataFrame({'arm_id': [i] * 5, 'x': np.arange(5.0)}), .1) for i in (0, 1)]
    sel = mds(arms, ev, alpha=1.0, budget=40)
    assert len(sel.accepted) == 1 and sel.error < sel.base_error
    empty = A(parse_rule({'column': 'x', 'op': '>', 'value': 0}), pd.DataFrame({'arm_id': [], 'x': []}), 0.0)
    assert mds([empty], ev).accepted == []                         # an arm with no rows is never accepted
    nan = lambda rows, seed=0: float('nan') if rows is not None and 0 in set(rows['arm_id']) else ev(rows, seed)
    assert 0 not in forward_greedy(arms, nan).accepted             # a set the evaluator cannot score is never chosen


def test_greedy_baselines_and_top_k():
    f = forward_greedy(_arms(), _evaluate(0.0))
    assert set(f.accepted) == {0, 1, 5} and f.error < f.base_error        # no noise: forward finds every helping arm
    b = backward_greedy(_arms(), _evaluate(0.0))
    assert set(b.accepted) == {0, 1, 3, 5}   # the neutral arm 3 stays: removing it does not lower the error
    assert top_k(_arms(), 2).accepted == [0, 1] and top_k(_arms(), 0).accepted == []
    assert forward_greedy(_arms(), _evaluate(0.0), budget=3).fits <= 3


def test_diversity_and_bad_input():
    r = parse_rule({'column': 'x', 'op': '>', 'value': 5})
    dom = pd.DataFrame({'x': [0.0, 10.0]})
    assert diversity(r, [], dom) == 1.0 and diversity(r, [(r, 10)], dom) == pytest.approx(0.0)
    assert diversity(r, [(parse_rule({'column': 'x', 'op': '<=', 'value': 5}), 10)], dom) == pytest.approx(1.0)
    with pytest.raises(ValueError, match='alpha=2'): mds(_arms(), _evaluate(), alpha=2)
    with pytest.raises(ValueError, match='budget=0'): mds(_arms(), _evaluate(), budget=0)
    with pytest.raises(TypeError, match='lacks rule, rows or rho'): mds([object()], _evaluate())
    empty = mds([], _evaluate())
    assert empty.accepted == [] and len(empty.rows()) == 0


def test_mds_never_reports_an_accepted_set_that_raised_the_error():
    "The arms help on every bootstrap pull, but the model trained once on their rows (seed 0) scores worse: nothing may be reported as accepted."
    def evaluate(rows, seed=0):
        ids = set() if rows is None else set(rows['arm_id'])
        gain = sum(GAIN[i] for i in ids if GAIN[i] > 0)
        return 0.30 + (0.01 if ids else 0.0) if seed == 0 else 0.30 - gain
    sel = mds(_arms(), evaluate, alpha=1.0, budget=120, random_state=0)
    assert sel.accepted == [] and sel.error == sel.base_error, sel
    assert any(st['verdict'].startswith('dropped') for st in sel.status.values())
    assert len(sel.rows()) == 0


def test_mds_drops_only_what_it_must():
    "Arm 5 hurts at seed 0 only: the check drops it and keeps the arms that still lower the error."
    def evaluate(rows, seed=0):
        ids = set() if rows is None else set(rows['arm_id'])
        err = 0.30 - sum(GAIN[i] for i in ids if GAIN[i] > 0)
        return err + (0.1 if seed == 0 and 5 in ids else 0.0)
    sel = mds(_arms(), evaluate, alpha=1.0, budget=300, random_state=0)
    assert 5 not in sel.accepted and {0, 1} <= set(sel.accepted), sel.to_frame()
    assert sel.error < sel.base_error and sel.status[5]['verdict'].startswith('dropped')


def test_backward_greedy_never_ends_worse_than_no_rows():
    "Every arm hurts together and removing any one alone does not help: backward greedy used to stop at all six, above the base error."
    def evaluate(rows, seed=0):
        n = 0 if rows is None else len(set(rows['arm_id']))
        return 0.30 if n == 0 else 0.40 + 0.01 * (6 - n)   # fewer arms is worse, until none
    b = backward_greedy(_arms(), evaluate)
    assert b.accepted == [] and b.error == b.base_error == 0.30, b
