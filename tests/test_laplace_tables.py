"""The laplace codec's probability tables are exact, so a board and a host build the same ones."""
import math

from caed.codecs.laplace import _laplace_counts


def test_counts_are_floor_of_65536_exp_minus_d_over_scale_plus_one():
    # code 64 is scale 1: count(d) = floor(65536 e^-d) + 1; e^-1 = 0.36787944117144233...
    counts = _laplace_counts(64)
    assert counts[0] == 65537 and counts[1] == 24110 and counts[2] == 8870
    assert counts[-1] == 1  # far tail: never zero probability
    # code 80 is scale 2: count(1) = floor(65536 e^-0.5) + 1 = floor(39749.6) + 1
    assert _laplace_counts(80)[1] == math.floor(65536 * 0.6065306597126334) + 1 == 39750


def test_counts_are_positive_integers_falling_with_distance():
    for code in (1, 33, 64, 97, 160, 255):
        counts = _laplace_counts(code)
        assert counts[0] == 65537 and all(c >= 1 and float(c).is_integer() for c in counts)
        assert list(counts) == sorted(counts, reverse=True)
