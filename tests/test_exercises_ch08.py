import math

import numpy as np
import pytest
from exercise_helpers import assert_hint, raises

from flcourse.exercises import ch08
from flcourse.privacy.shamir import PRIME


# Exercise 1: what one sample's gradient of a dense layer leaks
def recover_input(grad_W, grad_b):
    i = np.argmax(np.abs(grad_b))
    return grad_W[:, i] / grad_b[i]


def first_nonzero_unit(grad_W, grad_b):
    i = np.flatnonzero(grad_b)[0]
    return grad_W[:, i] / grad_b[i]


@pytest.mark.parametrize("answer", [recover_input, first_nonzero_unit,
                                    lambda W, b: np.nanmean(W / b, axis=1)], ids=["largest", "first", "nanmean"])
def test_exercise_1_accepts_any_unit_with_a_nonzero_bias_gradient(answer, capsys):
    with np.errstate(divide="ignore", invalid="ignore"):
        assert ch08.exercise_1(answer) is True
    assert capsys.readouterr().out.startswith("Correct.")


def test_exercise_1_cases_have_units_with_zero_bias_gradient_and_give_the_image_by_a_loop():
    from flcourse.privacy.leakage import recover_input_from_dense_gradient
    (W_soft, b_soft, _), (W_mlp, b_mlp, _) = ch08.leakage_cases()
    assert np.flatnonzero(b_soft == 0).tolist() == [] and np.flatnonzero(b_mlp == 0).tolist() == [0, 1, 2]
    assert not W_mlp[:, :3].any()  # a unit with dL/db_i = 0 has an all-zero column: 0/0
    assert W_soft.shape == (64, 10) and W_mlp.shape == (64, 32)  # n_units != n_features: a row is told apart
    for grad_W, grad_b, x in ch08.leakage_cases():
        for i in [i for i in range(len(grad_b)) if grad_b[i] != 0]:
            by_loop = [grad_W[j][i] / grad_b[i] for j in range(64)]
            np.testing.assert_allclose(by_loop, x, rtol=1e-15, atol=0)
            np.testing.assert_array_equal(by_loop, recover_input_from_dense_gradient(grad_W, grad_b, unit=i))


def largest(b):
    return np.argmax(np.abs(b))


@pytest.mark.parametrize("answer, hint", [
    (lambda W, b: W[:, 0] / b[0], "units [0, 1, 2] have dL/db_i = 0"),
    (lambda W, b: np.nan_to_num(W[:, 0] / b[0]), "0/0 is nan"),
    (lambda W, b: W[largest(b), :] / b[largest(b)], "not in a row"),
    (lambda W, b: W.T[:, largest(b)] / b[largest(b)], "not in a row"),
    (lambda W, b: W[:, largest(b)], "times the input"),
    (lambda W, b: W[:, largest(b)] * b[largest(b)], "times the input"),
    (lambda W, b: W[:, largest(b)] / b[np.argsort(np.abs(b))[-2]], "times the input"),
    (lambda W, b: b[largest(b)] / W[:, largest(b)], "inf: you divided by dL/dW"),
    (lambda W, b: W[:, largest(b)].astype(np.float32) / np.float32(b[largest(b)]), "keep float64"),
    (lambda W, b: W / b, "return one vector of shape (64,)"),
    (lambda W, b: "x", "return one vector of shape (64,)"),
    (lambda W, b: W.sum(axis=1), "e-17 times the input"),  # p - onehot(y) sums to 0
    (lambda W, b: recover_input(W, b) + 1, "one column of dL/dW divided by that unit's bias gradient"),
])
def test_exercise_1_names_the_mistake(answer, hint, capsys):
    with np.errstate(divide="ignore", invalid="ignore"):
        assert ch08.exercise_1(answer) is False
    assert_hint(capsys, hint)


# Exercise 2: the Gaussian's RDP over T steps, converted the classic way
def epsilon_of(z, T, delta, orders):
    return float(np.min(T * orders / (2 * z**2) + np.log(1 / delta) / (orders - 1)))


def test_exercise_2_accepts_the_classic_conversion_and_says_how_much_tighter_flcourse_is(capsys):
    assert ch08.exercise_2(epsilon_of) is True
    out = capsys.readouterr().out
    assert out.startswith("Correct.") and "ε = 5.299 at α = 5.8" in out and "4.729" in out and "10.8% lower" in out


def test_exercise_2_reference_is_the_classic_bound_by_a_loop_and_flcourse_is_tighter():
    from flcourse.privacy.accountant import rdp_subsampled_gaussian, rdp_to_epsilon
    for z, T, delta, orders in ch08.DP_CASES:
        by_loop = min(T * a / (2 * z * z) + math.log(1 / delta) / (a - 1) for a in orders)
        assert ch08.classic_epsilon(z, T, delta, orders)[0] == pytest.approx(by_loop, rel=1e-13)
        tight = rdp_to_epsilon(orders, T * rdp_subsampled_gaussian(1.0, z, orders), delta)[0]
        assert 0 < tight < 0.95 * by_loop


def classic(T_of=lambda T: T, half=2, pick=np.min, sign=1, minus=1, scale=lambda T: 1):
    def answer(z, T, delta, orders):
        return scale(T) * pick(T_of(T) * orders / (half * z**2) + sign * np.log(1 / delta) / (orders - minus))
    return answer


def tighter(z, T, delta, orders):
    from flcourse.privacy.accountant import rdp_to_epsilon
    return rdp_to_epsilon(orders, T * orders / (2 * z**2), delta)[0]


@pytest.mark.parametrize("answer, hint", [
    (classic(T_of=lambda T: 1), "you left out T"),
    (classic(T_of=lambda T: 1, scale=lambda T: T), "T times ε is far looser"),
    (classic(half=1), "you left out the 1/2"),
    (classic(pick=np.max), "take the minimum over them, not the maximum"),
    (classic(sign=-1), "mind the sign"),
    (classic(minus=0), "not by α"),
    (tighter, "this exercise asks for the classic one"),
    (classic(pick=lambda v: v), "one ε per order"),
    (lambda z, T, d, a: (epsilon_of(z, T, d, a), 2.0), "return ε alone"),
    (lambda z, T, d, a: "eps", "return one float"),
    (lambda z, T, d, a: 1.0, "is not min over α"),
])
def test_exercise_2_names_the_mistake(answer, hint, capsys):
    assert ch08.exercise_2(answer) is False
    assert_hint(capsys, hint)


# Exercise 3: Shamir's secret from t shares
def reconstruct(shares):
    secret = 0
    for j, (xj, yj) in enumerate(shares):
        numerator, denominator = 1, 1
        for m, (xm, _) in enumerate(shares):
            if m != j:
                numerator, denominator = numerator * xm % PRIME, denominator * (xm - xj) % PRIME
        secret += yj * numerator * pow(denominator, -1, PRIME)
    return secret % PRIME


def test_exercise_3_accepts_lagrange_at_zero_and_shows_t_minus_1_shares_fit_any_secret(capsys):
    assert ch08.exercise_3(reconstruct) is True
    out = capsys.readouterr().out
    assert out.startswith("Correct.") and "2 give nothing" in out and "(the real share)" in out


def test_exercise_3_cases_and_reference_by_fermats_inverse():
    from flcourse.privacy.shamir import reconstruct_secret
    assert {t % 2 for _, t, _ in ch08.shamir_cases()} == {0, 1}  # an even t catches the sign error
    for secret, t, shares in ch08.shamir_cases():
        assert len(shares) == t and [x for x, _ in shares] != list(range(1, t + 1))
        by_loop = 0
        for xj, yj in shares:  # division by Fermat: a^(p-2) = a^(-1) mod p
            weight = 1
            for xm, _ in shares:
                weight = weight * xm * pow(xm - xj, PRIME - 2, PRIME) % PRIME if xm != xj else weight
            by_loop = (by_loop + yj * weight) % PRIME
        assert by_loop == secret == reconstruct_secret(shares, t) == ch08.interpolate(shares)


def test_exercise_3_t_minus_1_shares_plus_any_third_give_any_secret():
    """What the confirmation claims: each candidate secret has its own share at the missing x."""
    from flcourse.privacy.shamir import reconstruct_secret
    secret, t, shares = ch08.shamir_cases()[0]
    known, (x_new, y_new) = list(shares[:t - 1]), shares[t - 1]
    for candidate in (0, 1, 12345, PRIME - 1, secret):
        forged = ch08.interpolate([(0, candidate)] + known, at=x_new)
        assert reconstruct_secret(known + [(x_new, forged)], t) == candidate
        assert (forged == y_new) == (candidate == secret)


def weights(shares, sign=1, own_x=True):
    xs = [x for x, _ in shares] if own_x else list(range(1, len(shares) + 1))
    return [math.prod(xm * pow(sign * (xm - xj), -1, PRIME) for xm in xs if xm != xj) for xj in xs]


@pytest.mark.parametrize("answer, hint", [
    (lambda s: sum(y * w for (_, y), w in zip(s, weights(s))), "reduce mod p"),
    (lambda s: sum(y * math.prod(xm / (xm - xj) for xm, _ in s if xm != xj) for xj, y in s), "float division"),
    (lambda s: int(sum(y * math.prod(xm / (xm - xj) for xm, _ in s if xm != xj) for xj, y in s)) % PRIME,
     "float division"),
    (lambda s: sum(y * w for (_, y), w in zip(s, weights(s, sign=-1))) % PRIME, "mind the sign"),
    (lambda s: sum(y * w for (_, y), w in zip(s, weights(s, own_x=False))) % PRIME, "each share's own x"),
    (lambda s: reconstruct(s[:-1]), "through only"),
    (lambda s: reconstruct(s[:1]), "through only 1 of"),
    (lambda s: np.array(reconstruct(s)), "as a Python int"),
    (lambda s: str(reconstruct(s)), "as a Python int"),
    (lambda s: (reconstruct(s) + 1) % PRIME, "s = sum_j y_j · L_j mod p"),
])
def test_exercise_3_names_the_mistake(answer, hint, capsys):
    assert ch08.exercise_3(answer) is False
    assert_hint(capsys, hint)


# Exercise 4: pairwise masks that cancel
def mask_all(inputs, pair_masks):
    masked = [x.copy() for x in inputs]
    for (u, v), mask in pair_masks.items():
        masked[u] += mask
        masked[v] -= mask
    return masked


def test_exercise_4_accepts_the_protocols_signs(capsys):
    assert ch08.exercise_4(mask_all) is True
    assert ch08.exercise_4(lambda x, m: np.array(mask_all(x, m), dtype=np.int64)) is True  # values, not dtype
    out = capsys.readouterr().out
    assert out.startswith("Correct.") and "bit for bit" in out


def test_exercise_4_reference_by_a_loop_over_python_ints_and_the_sum_decodes():
    from flcourse.privacy.fixed_point import decode_sum, quantisation_step
    updates, inputs, pairs = ch08.masking_case()
    n, d = len(inputs), inputs[0].size
    by_loop = [[(int(inputs[u][j]) + sum(int(pairs[min(u, v), max(u, v)][j]) * (1 if v > u else -1)
                                         for v in range(n) if v != u)) % 2**32 for j in range(d)] for u in range(n)]
    masked = ch08.pairwise_masked(inputs, pairs)
    assert [m.tolist() for m in masked] == by_loop and all(m.dtype == np.uint32 for m in masked)
    totals = [sum(row[j] for row in by_loop) % 2**32 for j in range(d)]
    assert totals == [sum(int(x[j]) for x in inputs) % 2**32 for j in range(d)]
    error = np.abs(decode_sum(np.array(totals), n, clip=1.0) - updates.sum(axis=0)).max()
    assert np.abs(updates).max() < 1 and error <= n * quantisation_step(1.0) / 2


def with_signs(above, below, factor=1, reduce=True):
    """Client u adds ``above`` times mask(u, v), v > u, and v adds ``below * factor`` times it, in int64."""
    def answer(inputs, pair_masks):
        masked = [x.astype(np.int64) for x in inputs]
        for (u, v), mask in pair_masks.items():
            masked[u] += above * mask.astype(np.int64)
            masked[v] += below * factor * mask.astype(np.int64)
        return [(m % 2**32).astype(np.uint32) for m in masked] if reduce else masked
    return answer


@pytest.mark.parametrize("answer, hint", [
    (with_signs(-1, 1), "the convention is the other way round"),
    (with_signs(1, 1), "each pair's mask is added by one client"),
    (with_signs(1, 0), "client v must also subtract"),
    (with_signs(0, 0), "inputs unmasked"),
    (with_signs(2, -2), "the masks cancel, but client u must add"),
    (with_signs(1, -1, factor=2), "do not sum to the inputs' sum"),
    (with_signs(1, -1, reduce=False), "reduce mod 2^32"),
    (lambda x, m: [v.astype(np.float64) for v in mask_all(x, m)], "your values are right, but"),
    (lambda x, m: [v.astype(np.float32) for v in mask_all(x, m)], "floats round"),
    (lambda x, m: [x[0] - m[0, 1]], "return the 4 masked vectors"),
    (lambda x, m: np.sum(mask_all(x, m), axis=0), "return the 4 masked vectors"),
    (lambda x, m: None, "return the 4 masked vectors"),
])
def test_exercise_4_names_the_mistake(answer, hint, capsys):
    assert ch08.exercise_4(answer) is False
    assert_hint(capsys, hint)


def test_exercise_4_explains_a_key_error(capsys):
    assert ch08.exercise_4(lambda x, m: [m[1, 0]]) is False
    assert_hint(capsys, "raised KeyError: (1, 0) (pair_masks holds each pair once")


EXERCISES = [ch08.exercise_1, ch08.exercise_2, ch08.exercise_3, ch08.exercise_4]


@pytest.mark.parametrize("exercise", EXERCISES)
def test_an_exception_in_the_answer_becomes_a_hint(exercise, capsys):
    assert exercise(raises) is False
    assert "raised ValueError: boom" in capsys.readouterr().out


@pytest.mark.parametrize("exercise", EXERCISES)
def test_a_value_instead_of_a_function_becomes_a_hint(exercise, capsys):
    assert exercise(42) is False
    assert_hint(capsys, "Pass a function, not int.")


@pytest.mark.parametrize("exercise", EXERCISES)
def test_every_exercise_says_what_the_learner_writes(exercise):
    assert exercise.__doc__.startswith("Check ``") and "Must return" in exercise.__doc__
