"""Shamir secret sharing: any t of n shares reconstruct, t - 1 reveal nothing, and an independent
solver (the Vandermonde system with Fractions, reduced mod p) agrees."""
import itertools
import random
from fractions import Fraction

import numpy as np
import pytest

from flcourse.privacy import shamir
from flcourse.privacy.shamir import (PRIME, lagrange_at_zero, random_element, reconstruct_bytes,
                                     reconstruct_secret, split_bytes, split_secret)


def vandermonde_solve_mod_p(points, p=PRIME):
    """The coefficients (a_0, ..., a_{k-1}) of the polynomial through k points, mod p.

    Gauss-Jordan elimination of V a = y, V_ij = x_i^j, in exact Fractions; the solution is
    rational with denominators (products of x differences) prime to p, so it is reduced mod p by
    multiplying the numerator by the denominator's inverse. Independent of the module's Lagrange
    formula.
    """
    k = len(points)
    rows = [[Fraction(x) ** j for j in range(k)] + [Fraction(y)] for x, y in points]
    for col in range(k):
        pivot = next(r for r in range(col, k) if rows[r][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for r in range(k):
            if r != col and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    return [row[-1].numerator * pow(row[-1].denominator, -1, p) % p for row in rows]


def evaluate(coefficients, x, p=PRIME):
    return sum(a * pow(x, j, p) for j, a in enumerate(coefficients)) % p


def test_prime_is_the_mersenne_prime_and_bigger_than_a_marked_chunk():
    assert PRIME == 2**127 - 1
    assert pow(3, PRIME - 1, PRIME) == 1 and pow(5, PRIME - 1, PRIME) == 1  # Fermat witnesses
    assert int.from_bytes(b"\x01" + b"\xff" * 15, "big") < 2**121 < PRIME


@pytest.mark.parametrize("n_shares, threshold", [(1, 1), (3, 1), (4, 2), (5, 3), (6, 6)])
def test_every_subset_of_t_shares_reconstructs(n_shares, threshold):
    secret = random.Random(0).randrange(PRIME)
    shares = split_secret(secret, n_shares, threshold, rng=random.Random(n_shares))
    assert [x for x, _ in shares] == list(range(1, n_shares + 1))
    for size in range(threshold, n_shares + 1):
        for subset in itertools.combinations(shares, size):
            assert reconstruct_secret(list(subset), threshold) == secret


@pytest.mark.parametrize("secret", [0, 1, PRIME - 1])
def test_the_edges_of_the_field_reconstruct(secret):
    shares = split_secret(secret, 5, 3)  # secrets.randbelow
    assert reconstruct_secret(shares[2:], 3) == secret


def test_t_minus_1_shares_fit_exactly_one_polynomial_through_every_candidate_secret():
    # Prepare: 3 of the t = 4 shares of a secret.
    secret, threshold = 123456789, 4
    shares = split_secret(secret, 6, threshold, rng=random.Random(1))[:threshold - 1]
    for candidate in [0, 1, secret, 987654321, PRIME - 1]:
        # Execute: the polynomial through the t - 1 shares and (0, candidate).
        coefficients = vandermonde_solve_mod_p([(0, candidate)] + shares)
        # Assert: it has degree <= t - 1, passes through every point; unique since the
        # Vandermonde determinant prod_{i<j} (x_j - x_i) of distinct x is nonzero mod p.
        assert len(coefficients) == threshold and coefficients[0] == candidate
        assert all(evaluate(coefficients, x) == y for x, y in shares)
        xs = [0] + [x for x, _ in shares]
        assert all((b - a) % PRIME for a, b in itertools.combinations(xs, 2))
        # ... and the module's own reconstruction from those four points gives the candidate.
        assert reconstruct_secret([*shares, (7, evaluate(coefficients, 7))], threshold) == candidate


def test_t_minus_1_shares_are_uniform_whatever_the_secret_in_a_small_field(monkeypatch):
    # In GF(11), enumerate every coefficient choice: for each secret, the t - 1 = 2 shares at
    # x = 1, 2 take each of the 11^2 value pairs exactly once, so they say nothing of the secret.
    monkeypatch.setattr(shamir, "PRIME", 11)

    class Enumerated(random.Random):
        def __init__(self, values):
            super().__init__(0)
            self.values = iter(values)

        def randrange(self, stop):
            return next(self.values)

    for secret in range(11):
        seen = [tuple(y for _, y in split_secret(secret, 4, 3, rng=Enumerated(pair))[:2])
                for pair in itertools.product(range(11), repeat=2)]
        assert sorted(seen) == list(itertools.product(range(11), repeat=2))


def test_t_minus_1_shares_do_not_reconstruct_the_secret():
    secret = 2**100 + 17
    shares = split_secret(secret, 5, 3, rng=random.Random(2))
    with pytest.raises(ValueError, match="at least threshold = 3 shares. Got 2 instead"):
        reconstruct_secret(shares[:2], 3)
    guesses = [reconstruct_secret(list(pair), 2) for pair in itertools.combinations(shares, 2)]
    assert secret not in guesses and len(set(guesses)) == len(guesses)  # each pair a different line


def test_lagrange_agrees_with_the_vandermonde_solver():
    rng = random.Random(3)
    for threshold in [1, 2, 5, 9]:
        coefficients = [rng.randrange(PRIME) for _ in range(threshold)]
        xs = rng.sample(range(1, 10**6), threshold)
        points = [(x, evaluate(coefficients, x)) for x in xs]
        assert vandermonde_solve_mod_p(points) == coefficients
        assert reconstruct_secret(points, threshold) == coefficients[0]
        assert sum(lagrange_at_zero(xs)) % PRIME == 1  # interpolating f = 1


def test_shares_lie_on_a_polynomial_of_degree_t_minus_1():
    shares = split_secret(42, 7, 4, rng=np.random.default_rng(4))
    coefficients = vandermonde_solve_mod_p(shares[:4])
    assert coefficients[0] == 42
    assert all(evaluate(coefficients, x) == y for x, y in shares[4:])


def test_random_and_numpy_generators_reproduce_and_default_draws_differ():
    for make in (random.Random, np.random.default_rng):
        assert split_secret(5, 4, 3, rng=make(7)) == split_secret(5, 4, 3, rng=make(7))
    assert split_secret(5, 4, 3) != split_secret(5, 4, 3)


def test_numpy_draws_cover_the_whole_field():
    rng = np.random.default_rng(5)
    draws = [random_element(rng) for _ in range(2000)]
    assert all(0 <= v < PRIME for v in draws)
    top_bits = np.bincount([v >> 125 for v in draws], minlength=4)  # the two highest of 127 bits
    assert top_bits.min() > 400  # each quarter of the field about 500 times


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00" * 32, bytes(range(32)), b"\xff" * 15, b"x" * 31])
def test_bytes_round_trip_with_leading_zeros(data):
    shares = split_bytes(data, 5, 3, rng=random.Random(6))
    assert all(len(ys) == -(-len(data) // 15) for _, ys in shares)
    for subset in itertools.combinations(shares, 3):
        assert reconstruct_bytes(list(subset), 3) == data


def test_bytes_from_mixed_secrets_are_refused():
    first, second = split_bytes(b"a" * 32, 3, 2, rng=random.Random(7)), split_bytes(b"b" * 32, 3, 2)
    with pytest.raises(ValueError, match="inconsistent"):
        reconstruct_bytes([first[0], second[1]], 2)


@pytest.mark.parametrize("args, error, message", [
    ((5, 3, 4), ValueError, r"'threshold' parameter of split_secret must be an int in "
                            r"\[1, n_shares\] = \[1, 3\]. Got 4"),
    ((5, 3, 0), ValueError, r"'threshold' parameter of split_secret .* = \[1, 3\]. Got 0"),
    ((5, 0, 1), ValueError, r"'n_shares' parameter of split_secret must be an int in \[1, p\)"),
    ((-1, 3, 2), ValueError, r"'secret' parameter of split_secret must hold ints in \[0, p\), "
                             r"p = 2\*\*127 - 1. Got -1"),
    ((PRIME, 3, 2), ValueError, r"'secret' parameter .* Got 1701"),
    ((1.5, 3, 2), TypeError, r"'secret' parameter .* Got 1.5 of type float"),
    ((1, 3, True), TypeError, r"'threshold' parameter of split_secret must be an int. Got True"),
])
def test_split_errors_name_the_parameter(args, error, message):
    with pytest.raises(error, match=message):
        split_secret(*args)


def test_split_refuses_a_seed_int_as_rng():
    with pytest.raises(TypeError, match="'rng' parameter of split_secret must be None"):
        split_secret(1, 3, 2, rng=7)


@pytest.mark.parametrize("shares, threshold, message", [
    ([(1, 5), (1, 6)], 2, "must hold distinct x. Got x = 1 twice"),
    ([(1, 5), (2, 6), (2, 7)], 2, "must hold distinct x. Got x = 2 twice"),
    ([(0, 5), (2, 6)], 2, "must not hold a share at x = 0"),
    ([(1, 5)], 2, "at least threshold = 2 shares. Got 1"),
    ([(1, 5)], 0, "'threshold' parameter of reconstruct_secret must be an int >= 1. Got 0"),
    ([(1, PRIME)], 1, r"must hold ints in \[0, p\)"),
    ([(-1, 3)], 1, r"must hold ints in \[0, p\)"),
])
def test_reconstruct_errors_are_clear(shares, threshold, message):
    with pytest.raises(ValueError, match=message):
        reconstruct_secret(shares, threshold)


def test_precomputed_lagrange_coefficients_give_the_same_bytes():
    from flcourse.privacy.shamir import lagrange_at_zero

    data = bytes(range(40))
    shares = split_bytes(data, 7, 4, rng=random.Random(5))[2:6]
    coefficients = lagrange_at_zero([x for x, _ in shares])
    assert reconstruct_bytes(shares, 4, coefficients=coefficients) == data
    with pytest.raises(ValueError, match="'coefficients' parameter of reconstruct_bytes must hold 4"):
        reconstruct_bytes(shares, 4, coefficients=coefficients[:3])
    with pytest.raises(ValueError, match="no marker byte"):  # coefficients of other holders: garbage
        reconstruct_bytes(shares, 4, coefficients=lagrange_at_zero([1, 2, 3, 4]))
