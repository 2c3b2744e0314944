"""Fixed-point encoding mod 2^32: sums decode within n * Delta / 2, never wrap up to the documented
n, and uint32 / uint64 ring arithmetic (masks that cancel) gives the same decoded sum."""
import numpy as np
import pytest

from flcourse.privacy.fixed_point import clip_and_encode, decode_sum, max_summands, quantisation_step


def test_step_and_max_summands_are_the_documented_numbers():
    assert quantisation_step(1.0, 16) == 1 / 32767
    assert max_summands(16) == 65538 and 65538 * 65534 <= 2**32 - 1 < 65539 * 65534
    assert max_summands(24) == 256 and max_summands(2, 4) == 1
    assert max_summands(16, 2**64) == (2**64 - 1) // 65534


@pytest.mark.parametrize("bits", [2, 4, 8, 16, 24])
def test_sum_decodes_within_n_delta_over_2_of_the_clipped_sum(bits):
    # Prepare: n vectors, about a third of their coordinates beyond the clip.
    rng = np.random.default_rng(bits)
    clip, n = 0.5, min(50, max_summands(bits))
    X = rng.normal(scale=0.5, size=(n, 2000))
    # Execute
    total = clip_and_encode(X, clip, bits).sum(axis=0)
    decoded = decode_sum(total, n, clip, bits)
    # Assert: the error bound n * Delta / 2, with float64 rounding (2^-52 relative of n c) on top.
    bound = n * quantisation_step(clip, bits) / 2
    error = np.abs(decoded - np.clip(X, -clip, clip).sum(axis=0))
    assert error.max() <= bound + 1e-13 * n * clip
    # ... and it is tight: n inputs each 0.499 of a step from a grid point are off by 0.499 n Delta
    # (near 0 on either side, and just inside -c).
    step, half = quantisation_step(clip, bits), 2 ** (bits - 1) - 1
    worst = np.full((n, 3), [-0.501, 0.499, 0.499 - half]) * step
    decoded = decode_sum(clip_and_encode(worst, clip, bits).sum(axis=0), n, clip, bits)
    error = np.abs(decoded - worst.sum(axis=0))
    np.testing.assert_allclose(error, 0.998 * bound, rtol=0, atol=1e-13 * n * clip)


def test_a_single_coordinate_is_off_by_at_most_half_a_step_and_the_grid_is_exact():
    step = quantisation_step(1.0, 8)
    x = np.linspace(-1.2, 1.2, 10001)
    decoded = decode_sum(clip_and_encode(x, 1.0, 8), 1, 1.0, 8)
    assert np.abs(decoded - np.clip(x, -1, 1)).max() <= step / 2 + 1e-15
    grid = np.arange(-127, 128) * step
    np.testing.assert_array_equal(clip_and_encode(grid, 1.0, 8), np.arange(255))
    np.testing.assert_allclose(decode_sum(np.arange(255), 1, 1.0, 8), grid, rtol=0, atol=1e-15)


def test_encoding_is_symmetric_and_in_range():
    x = np.random.default_rng(0).normal(size=1000) * 2
    codes = clip_and_encode(x, 1.0, 16)
    assert codes.dtype == np.uint32 and codes.max() <= 2**16 - 2
    np.testing.assert_array_equal(clip_and_encode(-x, 1.0, 16), 65534 - codes)


def test_no_wrap_at_the_documented_maximum_n_and_a_clear_error_one_beyond():
    # The extreme case: every vector at +c, -c and 0, n = 65538 of them, summed in uint32 (wraps).
    n = max_summands(16)
    codes = np.tile(clip_and_encode(np.array([1.0, -1.0, 0.0]), 1.0, 16), (n + 1, 1))
    total = np.add.reduce(codes[:n], axis=0, dtype=np.uint32)
    assert int(total[0]) == n * 65534  # = 2^32 - 4: no wrap
    np.testing.assert_array_equal(decode_sum(total, n, 1.0, 16), [n, -n, 0.0])
    wrapped = np.add.reduce(codes, axis=0, dtype=np.uint32)
    message = r"'n' parameter of decode_sum must be an int in \[1, 65538\].*Got 65539"
    with pytest.raises(ValueError, match=message):
        decode_sum(wrapped, n + 1, 1.0, 16)
    with pytest.raises(ValueError, match="the sum wrapped"):
        decode_sum(np.array([2**32 - 1]), 1, 1.0, 16)


def test_masks_that_cancel_mod_2_32_in_uint32_and_uint64_give_the_same_sum():
    # Prepare: 3 clients, pairwise masks m_ij added by i and subtracted by j, in the ring.
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(3, 500))
    codes = clip_and_encode(X, 1.0, 16)
    masks = rng.integers(0, 2**32, size=(3, 3, 500), dtype=np.uint64).astype(np.uint32)
    masked = codes.copy()
    for i in range(3):
        for j in range(i + 1, 3):
            masked[i] += masks[i, j]  # uint32 wraps mod 2^32
            masked[j] -= masks[i, j]
    # Execute: sum in uint32 (wrapping), in uint64 (numpy's default, no wrap), as int64, as ints.
    sums = [np.add.reduce(masked, axis=0, dtype=np.uint32), masked.sum(axis=0),
            masked.astype(np.int64).sum(axis=0) - 2**40, [sum(int(v) for v in col) for col in masked.T]]
    # Assert: all equal the plain decoded sum exactly.
    plain = decode_sum(codes.sum(axis=0), 3, 1.0, 16)
    assert masked.sum(axis=0).dtype == np.uint64 and masked.sum(axis=0).max() >= 2**32
    for total in sums:
        np.testing.assert_array_equal(decode_sum(total, 3, 1.0, 16), plain)


def test_modulus_2_64_uses_uint64_and_wraps_there():
    codes = clip_and_encode([0.25, -1.0], 1.0, 32, 2**64)
    assert codes.dtype == np.uint64
    mask = np.array([2**64 - 5, 12345], dtype=np.uint64)
    total = (codes + mask) + (codes - mask)
    np.testing.assert_allclose(decode_sum(total, 2, 1.0, 32, 2**64), [0.5, -2.0], rtol=0, atol=2 / 2**31)


def test_zero_d_and_all_zero_inputs():
    code = clip_and_encode(0.0, 1.0)
    assert code.shape == () and code.dtype == np.uint32 and int(code) == 32767
    assert decode_sum(code, 1, 1.0).shape == () and float(decode_sum(code, 1, 1.0)) == 0.0
    zeros = clip_and_encode(np.zeros((4, 7)), 2.0)
    np.testing.assert_array_equal(decode_sum(zeros.sum(axis=0), 4, 2.0), np.zeros(7))
    assert float(decode_sum(clip_and_encode(5.0, 2.0), 1, 2.0)) == 2.0  # clipped, exact at c
    assert decode_sum(np.zeros(0, dtype=np.uint32), 1, 1.0).shape == (0,)


def test_stochastic_rounding_is_unbiased_and_within_one_step():
    step = quantisation_step(1.0, 8)
    x = np.full(40000, 10.3 * step)
    codes = clip_and_encode(x, 1.0, 8, rounding="stochastic", seed=0)
    assert set(np.unique(codes)) == {127 + 10, 127 + 11}
    assert abs(np.mean(codes == 127 + 11) - 0.3) < 4 * np.sqrt(0.21 / 40000)
    X = np.random.default_rng(2).uniform(-1, 1, size=(20, 300))
    total = clip_and_encode(X, 1.0, 8, rounding="stochastic", seed=3).sum(axis=0)
    assert np.abs(decode_sum(total, 20, 1.0, 8) - X.sum(axis=0)).max() < 20 * step
    again = clip_and_encode(X, 1.0, 8, rounding="stochastic", seed=3)
    np.testing.assert_array_equal(again.sum(axis=0), total)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"clip": 0.0}, ValueError, r"'clip' parameter of quantisation_step must be a float in \(0, inf\)"),
    ({"bits": 1}, ValueError, r"'bits' parameter of quantisation_step must be an int in \[2, 52\]"),
    ({"bits": 2.0}, TypeError, r"'bits' parameter of quantisation_step must be an int"),
    ({"modulus": 3}, ValueError,
     r"'modulus' parameter of clip_and_encode must be a power of two in \[2\^bits, 2\^64\]"),
    ({"modulus": 2**65}, ValueError, r"'modulus' parameter .* Got 36893488147419103232"),
    ({"bits": 20, "modulus": 2**16}, ValueError, r"\[2\^20, 2\^64\]. Got 65536"),
    ({"rounding": "floor"}, ValueError, r"'rounding' parameter of clip_and_encode must be one of"),
    ({"x": [1.0, np.nan]}, ValueError,
     r"'x' parameter of clip_and_encode must hold finite numbers only. Got 1"),
    ({"x": [1j]}, TypeError, r"'x' parameter of clip_and_encode must be an array of real numbers"),
])
def test_encode_errors_name_the_parameter(kwargs, error, message):
    arguments = {"x": [0.5], "clip": 1.0, **kwargs}
    with pytest.raises(error, match=message):
        clip_and_encode(**arguments)


def test_decode_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"'n' parameter of decode_sum .* \[1, 256\].*fewer bits"):
        decode_sum([0], 257, 1.0, 24)
    with pytest.raises(ValueError, match=r"'n' parameter .* Got 0"):
        decode_sum([0], 0, 1.0)
    with pytest.raises(TypeError, match=r"'total' parameter of decode_sum must be an array of integers"):
        decode_sum([0.5], 1, 1.0)
