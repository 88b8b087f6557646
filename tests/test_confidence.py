import pytest

from spacy_spanjoint.analysis.confidence import mean_interval, paired_difference, t_quantile


def test_paired_difference_uses_the_shared_seeds_and_t():
    # differences 1, 2, 3: mean 2, sd 1, half width 4.303 / sqrt(3)
    got = paired_difference({0: 11.0, 1: 12.0, 2: 13.0, 5: 99.0}, {0: 10.0, 1: 10.0, 2: 10.0})
    assert got["n"] == 3 and got["mean"] == 2.0
    assert got["high"] - got["mean"] == pytest.approx(4.303 / 3 ** 0.5, abs=0.01)


def test_no_interval_from_one_seed_and_the_normal_quantile_beyond_thirty():
    assert paired_difference({0: 1.0}, {0: 0.0, 1: 2.0}) is None
    assert mean_interval([5.0, 5.0])["low"] == 5.0
    assert t_quantile(2) == 4.303 and t_quantile(100) == 1.96
    with pytest.raises(ValueError):
        t_quantile(0)
