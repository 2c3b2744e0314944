"""Secure aggregation's pieces and protocol (Bonawitz et al. 2017), run directly: key agreement,
the AES-CTR masks against an independent keystream, the encrypted shares, and the sum the
server recovers, exactly mod 2^32, with dropouts at every stage, or an abort below t."""
import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from flcourse.privacy.fixed_point import clip_and_encode, decode_sum, quantisation_step
from flcourse.privacy.secagg import (MASK_LABEL, SHARE_LABEL, SecAggCryptoError, agree, check_public_key,
                                     decrypt_share, encrypt_share, expand_mask, generate_keypair, pairwise_sign)
from flcourse.privacy.secagg_protocol import (SecAggParticipant, SecureAggregationAborted, check_survivors,
                                              harary_neighbourhoods, unmask_sum)


def run_protocol(inputs, threshold, *, drop_before_share=(), drop_before_masked=(), drop_before_unmask=()):
    """The four stages by hand; returns (the server's sum, U3)."""
    n = len(inputs)
    people = {u: SecAggParticipant(u, 7) for u in range(n)}
    roster = {u: p.public_keys for u, p in people.items()}
    u2 = [u for u in range(n) if u not in drop_before_share]
    sent = {u: people[u].share_keys(roster, threshold) for u in u2}
    check_survivors(u2, threshold, "share-keys", 7)
    u3 = [u for u in u2 if u not in drop_before_masked]
    masked = {u: people[u].masked_input(inputs[u], {v: sent[v][u] for v in u2 if v != u}) for u in u3}
    check_survivors(u3, threshold, "masked-input", 7)
    dropped = sorted(set(u2) - set(u3))
    shares = {v: people[v].unmask(u3, dropped) for v in u3 if v not in drop_before_unmask}
    check_survivors(shares, threshold, "unmask", 7)
    return unmask_sum(masked, roster, shares, threshold, u2), u3, masked


def plain_sum(inputs, cids):
    total = 0
    for u in cids:  # Python ints: no wrapping until the end
        total = total + inputs[u].astype(object)
    return np.array([int(v) % 2**32 for v in total], dtype=np.uint32)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 2**32, size=300, dtype=np.uint64).astype(np.uint32) for _ in range(8)]


def test_key_agreement_is_symmetric_and_labels_separate_uses():
    (a, A), (b, B) = generate_keypair(), generate_keypair()
    assert agree(a, B, MASK_LABEL) == agree(b, A, MASK_LABEL)
    assert agree(a, B, MASK_LABEL) != agree(a, B, SHARE_LABEL)
    assert len(agree(a, B, MASK_LABEL)) == 32


def test_a_low_order_or_malformed_public_key_is_refused():
    with pytest.raises(SecAggCryptoError, match="low-order"):
        check_public_key(bytes(32))
    with pytest.raises(SecAggCryptoError, match="must be 32 bytes"):
        check_public_key(b"short")


def test_the_mask_is_the_aes_ctr_keystream_of_its_seed():
    seed = bytes(range(32))
    counters = b"".join(i.to_bytes(16, "big") for i in range(4))  # CTR: E_k(0), E_k(1), ... by ECB
    keystream = Cipher(algorithms.AES(seed), modes.ECB()).encryptor().update(counters)
    expected = np.array([int.from_bytes(keystream[4 * i:4 * i + 4], "little") for i in range(16)], dtype=np.uint32)
    assert np.array_equal(expand_mask(seed, 16), expected)
    assert np.array_equal(expand_mask(seed, 10), expected[:10])
    assert expand_mask(seed, 0).shape == (0,)


def test_masks_look_uniform_and_differ_between_seeds():
    mask = expand_mask(b"\x01" * 32, 100_000)
    counts = np.bincount(mask >> 28, minlength=16)  # chi-square over the top 4 bits, 15 dof
    chi2 = ((counts - len(mask) / 16) ** 2 / (len(mask) / 16)).sum()
    assert chi2 < 37.7  # the 0.999 quantile
    assert not np.array_equal(mask[:100], expand_mask(b"\x02" * 32, 100))


def test_pairwise_signs_cancel():
    assert pairwise_sign(2, 5) == 1 and pairwise_sign(5, 2) == -1
    with pytest.raises(ValueError, match="must differ"):
        pairwise_sign(3, 3)


def test_a_share_decrypts_only_for_its_round_sender_and_receiver():
    key = bytes(32)
    blob = encrypt_share(key, b"share", 3, 1, 2)
    assert decrypt_share(key, blob, 3, 1, 2) == b"share"
    for args in [(4, 1, 2), (3, 2, 1), (3, 1, 5)]:
        with pytest.raises(SecAggCryptoError, match="does not authenticate"):
            decrypt_share(key, blob, *args)
    altered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SecAggCryptoError, match="does not authenticate"):
        decrypt_share(key, altered, 3, 1, 2)


def test_with_no_dropouts_the_sum_is_exact_mod_2_32(inputs):
    total, u3, _ = run_protocol(inputs, 5)
    assert u3 == list(range(8))
    assert np.array_equal(total, plain_sum(inputs, u3))


def test_the_sum_decodes_within_the_quantisation_bound():
    rng = np.random.default_rng(1)
    updates = [rng.uniform(-1, 1, size=200) for _ in range(6)]
    encoded = [clip_and_encode(u, 1.0, 16) for u in updates]
    total, _, _ = run_protocol(encoded, 4)
    decoded = decode_sum(total, 6, 1.0, 16)
    assert np.max(np.abs(decoded - np.sum(updates, axis=0))) <= 6 * quantisation_step(1.0, 16) / 2 + 1e-12


@pytest.mark.parametrize("drops", [
    {"drop_before_masked": (3,)},  # after sharing keys, before its masked input: its key is rebuilt
    {"drop_before_unmask": (3,)},  # after its masked input: its seed is rebuilt from the others
    {"drop_before_share": (0,), "drop_before_masked": (5,), "drop_before_unmask": (7,)},  # n - t = 3 in all
    {"drop_before_masked": (1, 4, 6)},
])
def test_dropped_clients_are_recovered_while_t_survive(inputs, drops):
    total, u3, _ = run_protocol(inputs, 5, **drops)
    assert np.array_equal(total, plain_sum(inputs, u3))


@pytest.mark.parametrize("drops, stage", [
    ({"drop_before_share": (0, 1, 2, 3)}, "share-keys"),
    ({"drop_before_masked": (0, 1, 2, 3)}, "masked-input"),
    ({"drop_before_masked": (0, 1), "drop_before_unmask": (2, 3)}, "unmask"),
])
def test_fewer_than_t_survivors_abort_with_a_clear_error(inputs, drops, stage):
    with pytest.raises(SecureAggregationAborted, match=rf"round 7 at the {stage} stage: \d client.*threshold t = 5"):
        run_protocol(inputs, 5, **drops)


def test_a_participant_reveals_once_and_never_both_shares_of_a_client(inputs):
    people = {u: SecAggParticipant(u, 1) for u in range(4)}
    roster = {u: p.public_keys for u, p in people.items()}
    sent = {u: people[u].share_keys(roster, 3) for u in range(4)}
    people[0].masked_input(inputs[0][:5], {v: sent[v][0] for v in (1, 2, 3)})
    with pytest.raises(ValueError, match="lists overlap"):
        people[0].unmask([0, 1, 2], [2, 3])
    with pytest.raises(ValueError, match="fewer than t = 3 survive"):
        people[0].unmask([0, 1], [2, 3])
    people[0].unmask([0, 1, 2], [3])
    with pytest.raises(ValueError, match="already answered"):
        people[0].unmask([0, 1, 2], [3])


def test_an_altered_ciphertext_is_refused_before_masking(inputs):
    people = {u: SecAggParticipant(u, 1) for u in range(3)}
    roster = {u: p.public_keys for u, p in people.items()}
    sent = {u: people[u].share_keys(roster, 2) for u in range(3)}
    blob = bytearray(sent[1][0])
    blob[20] ^= 1
    with pytest.raises(SecAggCryptoError, match="from client 1 to client 0"):
        people[0].masked_input(inputs[0][:5], {1: bytes(blob), 2: sent[2][0]})


def test_masked_vectors_are_uncorrelated_with_their_inputs():
    rng = np.random.default_rng(2)
    inputs = [clip_and_encode(rng.normal(0, 0.3, size=10_000), 1.0, 16) for _ in range(4)]
    _, _, masked = run_protocol(inputs, 3)
    for u, y in masked.items():
        assert abs(np.corrcoef(y.astype(np.float64), inputs[u].astype(np.float64))[0, 1]) < 0.05
        assert abs(y.astype(np.float64).mean() / 2**31 - 1) < 0.02  # uniform over Z_2^32, not near 2^15


def test_t_minus_one_shares_do_not_reconstruct_the_seed(inputs):
    from flcourse.privacy.shamir import reconstruct_bytes, split_bytes

    seed = bytes(range(32))
    shares = split_bytes(seed, 6, 4)
    assert reconstruct_bytes(shares[2:6], 4) == seed
    with pytest.raises(ValueError, match="at least 4|threshold"):
        reconstruct_bytes(shares[:3], 4)
    try:  # t - 1 shares taken as if they were enough give something else (or no bytes at all)
        assert reconstruct_bytes(shares[:3], 3) != seed
    except ValueError:
        pass


def hkdf_sha256(ikm: bytes, info: bytes, length: int, salt: bytes = b"") -> bytes:
    """RFC 5869 with the standard library's HMAC: an implementation independent of ``cryptography``."""
    import hashlib
    import hmac

    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
    return okm[:length]


def test_the_independent_hkdf_meets_rfc_5869_test_case_1():
    okm = hkdf_sha256(bytes([0x0B] * 22), bytes(range(0xF0, 0xFA)), 42, salt=bytes(range(13)))
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


def test_key_agreement_is_rfc_7748_x25519_then_hkdf():
    from flcourse.privacy.secagg import private_key_from_bytes

    alice = private_key_from_bytes(bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
    bob_public = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")  # RFC 7748, 6.1
    assert agree(alice, bob_public, MASK_LABEL) == hkdf_sha256(shared, MASK_LABEL, 32)


@pytest.mark.parametrize("n, k", [(12, 4), (9, 2), (10, 6), (5, 8)])
def test_the_harary_graph_is_k_regular_symmetric_and_seeded(n, k):
    groups = harary_neighbourhoods(range(n), k, 3)
    degree = min(k, n - 1)
    for u, group in groups.items():
        assert u in group and len(group) == degree + 1 and group == sorted(group)
        assert all(u in groups[v] for v in group)  # v is u's neighbour if and only if u is v's
    assert groups == harary_neighbourhoods(reversed(range(n)), k, 3)
    assert k >= n - 1 or groups != harary_neighbourhoods(range(n), k, 4)
    with pytest.raises(ValueError, match="'k' parameter of harary_neighbourhoods must be an even int >= 2. Got 3"):
        harary_neighbourhoods(range(n), 3, 0)


def secure_sum_plus(inputs, k, t, gone_masked=(), gone_unmask=()):
    """SecAgg+ by hand: each client's roster is its neighbourhood."""
    n = len(inputs)
    groups = harary_neighbourhoods(range(n), k, 0)
    people = {u: SecAggParticipant(u, 2) for u in range(n)}
    keys = {u: p.public_keys for u, p in people.items()}
    sent = {u: people[u].share_keys({v: keys[v] for v in groups[u]}, t) for u in range(n)}
    u3 = [u for u in range(n) if u not in gone_masked]
    masked = {u: people[u].masked_input(inputs[u], {v: sent[v][u] for v in groups[u] if v != u}) for u in u3}
    shares = {v: people[v].unmask([u for u in groups[v] if u in masked], [u for u in groups[v] if u not in masked])
              for v in u3 if v not in gone_unmask}
    return unmask_sum(masked, keys, shares, t, range(n), groups), u3, groups


@pytest.mark.parametrize("gone_masked, gone_unmask", [((), ()), ((3,), ()), ((), (5,)), ((3, 8), (5,))])
def test_secagg_plus_sums_exactly_with_dropouts(inputs, gone_masked, gone_unmask):
    many = inputs + inputs[:4]  # 12 clients
    total, u3, groups = secure_sum_plus(many, 4, 3, gone_masked, gone_unmask)
    assert all(len(g) == 5 for g in groups.values())
    assert np.array_equal(total, plain_sum(many, u3))


def test_secagg_plus_aborts_when_a_neighbourhood_reveals_fewer_than_t_shares(inputs):
    many = inputs + inputs[:4]
    groups = harary_neighbourhoods(range(12), 4, 0)
    helpers = [v for v in groups[3] if v != 3]  # client 3 drops; three of its four neighbours fall silent
    message = r"secret of client \d+ has [01] share\(s\) revealed, fewer than"
    with pytest.raises(SecureAggregationAborted, match=message):
        secure_sum_plus(many, 4, 2, gone_masked=(3,), gone_unmask=helpers[:3])
