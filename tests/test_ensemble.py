"""The ensemble filter of §6 on hand-made arrays, worked from the paper's definitions (Eqs. 11-13, Table 5)."""
import numpy as np
import pytest
from qstudy.ensemble import vote, prediction_rate, defense_accuracy, ensemble_accuracy, agreement

# five models × five points: all agree / exactly 3 agree / 2-2-1 tie / all differ / 4 agree
P = np.array([[7, 3, 1, 0, 5],
              [7, 3, 1, 1, 5],
              [7, 3, 2, 2, 5],
              [7, 4, 2, 3, 5],
              [7, 8, 9, 4, 6]])
Y = np.array([7, 4, 2, 0, 5])

def test_vote_cases():
    valid, label = vote(P, 3)
    assert valid.tolist() == [True, True, False, False, True]      # 5, exactly 3, tie at 2, 1, 4
    assert label.tolist() == [7, 3, -1, -1, 5]
    valid, label = vote(P, 2)
    assert valid.tolist() == [True, True, True, False, True]
    assert label[2] == 1                                              # 2-2 tie: the lower label, as documented
    assert vote(P, 5)[0].tolist() == [True, False, False, False, False]
    assert vote(P, 1)[0].all()

def test_vote_rejects_bad_m():
    with pytest.raises(ValueError, match='m=6 must be between 1 and the number of models'): vote(P, 6)
    with pytest.raises(ValueError, match='m=0'): vote(P, 0)

def test_pr_and_dacc_by_hand():
    # m = 3: valid points 0, 1, 4 -> PR 3/5. Valid and wrong: point 1 only (3 != 4) -> d_acc 1 - 1/5.
    assert prediction_rate(P, 3) == pytest.approx(3 / 5)
    assert defense_accuracy(P, Y, 3) == pytest.approx(4 / 5)
    assert ensemble_accuracy(P, Y, 3) == (pytest.approx(2 / 3), 3)
    # m = 5: only point 0 valid, and right -> nothing passes and fools
    assert prediction_rate(P, 5) == pytest.approx(1 / 5) and defense_accuracy(P, Y, 5) == 1.0

def test_table5_agreement_constructed():
    # source row 0 right on points 0, 3, 4 (P[0] == Y); the others are all right only on point 0
    # (point 3: all four wrong; point 4: row 4 says 6) -> 1/3
    a = agreement(P, Y, 0)
    assert a['n_correct'] == 3 and a['same_when_correct'] == pytest.approx(1 / 3)
    # source wrong on points 1 (3 vs 4) and 2 (1 vs 2): others all wrong on 1? rows 1, 2 say 3, row 3 says 4 (right) -> no;
    # point 2: rows 1 (1), 2 (2 = right) -> no. So 0 of 2.
    assert a['n_wrong'] == 2 and a['same_when_wrong'] == 0.0
    # a source whose outcome everyone shares
    same = np.array([[1, 2, 0], [1, 2, 0], [1, 2, 0]])
    b = agreement(same, np.array([1, 2, 3]), 1)
    assert (b['same_when_correct'], b['n_correct'], b['same_when_wrong'], b['n_wrong']) == (1.0, 2, 1.0, 1)
