"""Self-checks for notebook 04, distributed learning.

Each ``exercise_N`` takes the learner's answer, prints "Correct. ..." or "Not yet. <hint>" and
returns a bool. The references are computed with ``flcourse`` itself.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..federated.aggregators import weighted_average
from ..data import load_digits
from ..distributed import make_shards, ring_allreduce, traffic_per_step
from ..models import SoftmaxRegression
from ._core import call, close, report

# (n_params, n_workers) for exercise 1: K divides d, so every ring peer sends the same amount.
_TRAFFIC_CASES = ((650, 2), (2570, 5), (1000, 8), (4096, 16), (1000, 1))
# (n_workers, n_params) for exercise 4: chunks of unequal sizes in the second case.
_RING_CASES = ((4, 8), (4, 10), (3, 7))
# Which defect of the article's code (course plan numbering) each symptom in exercise 5
# reveals, and a clue for a wrong guess.
_SYMPTOMS = {
    "A": (1, "which attribute is missing, and on which object?"),
    "B": (7, "where does the error happen: in the notebook, or in a freshly started child?"),
    "C": (6, "what is the server doing while nothing happens?"),
    "D": (4, "how does the result scale with the number of workers?"),
    "E": (2, "which method is missing, and on which class?"),
}


def exercise_1(traffic: Callable) -> bool:
    """Check ``traffic(n_params, n_workers)``.

    Parameters
    ----------
    traffic : callable
        Called with ints d and K (K divides d). Must return the pair
        ``(server_bytes, ring_peer_bytes)``: the bytes a parameter server sends in one step
        (the parameters to each of the K workers), and the bytes one peer sends in one ring
        all-reduce of a d-vector of float64.
    """
    for d, K in _TRAFFIC_CASES:
        answer, error = call(traffic, d, K)
        if error:
            return report(False, "", error)
        pair = _pair(answer)
        server = traffic_per_step(d, K, "server")["server"]
        peer = traffic_per_step(d, K, "ring")["workers"][0]
        if pair is None:
            return report(False, "", "Return a pair (server_bytes, ring_peer_bytes) of numbers.")
        if not (close(pair[0], server) and close(pair[1], peer)):
            hint = _traffic_hint(pair, d, K, server, peer)
            return report(False, "", f"For d={d}, K={K}: {hint}")
    return report(True, "The server sends K*d*8 bytes a step; a ring peer 2(K-1)/K*d*8, "
                  "which stays below 2*d*8 however large K grows.", "")


def _pair(answer):
    try:
        pair = np.asarray(answer, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return None
    return pair if pair.size == 2 else None


def _traffic_hint(pair, d, K, server, peer) -> str:
    server_hints = {
        "you counted floats, not bytes: a float64 is 8 bytes.": K * d,
        "the server sends the parameters to each of the K workers, not once.": 8 * d,
        "count what the server sends (K copies of the parameters), not what it receives as "
        "well.": 16 * K * d,
    }
    peer_hints = {
        "you counted floats, not bytes: a float64 is 8 bytes.": 2 * (K - 1) / K * d,
        "each of the 2(K-1) steps carries one chunk of d/K floats, not the whole vector.":
            16 * (K - 1) * d,
        "that is the reduce-scatter half; the all-gather sends as much again.": 8 * (K - 1) / K * d,
        "every peer sends 2(K-1) chunks of d/K floats: 2(K-1)/K * d floats.": 16 * d,
    }
    hints = server_hints if not close(pair[0], server) else peer_hints
    value = pair[0] if not close(pair[0], server) else pair[1]
    what = "server_bytes" if hints is server_hints else "ring_peer_bytes"
    return next((f"{what}: {text}" for text, wrong in hints.items() if close(value, wrong)),
                f"{what} should be {server if hints is server_hints else peer}, got {value:g}.")


def _server_problem():
    """Digits, 5 workers, and a batch of 32 with m_k = 10, 3, 0, 1, 18 rows on the workers."""
    data = load_digits(seed=0)
    X, y = data.X_train, data.y_train
    model = SoftmaxRegression(n_features=data.n_features, n_classes=data.n_classes, l2=1e-2)
    rng = np.random.default_rng(2)
    params = 0.1 * rng.normal(size=model.n_params)
    partition = np.array_split(rng.permutation(len(y)), 5)
    batch = np.concatenate([rng.choice(part, m, replace=False)
                            for part, m in zip(partition, (10, 3, 0, 1, 18))])
    rng.shuffle(batch)
    shards = make_shards(X, y, partition)
    replies = []
    for shard in shards:
        m, gradient_sum = shard.gradient_sum(model, params, batch)
        replies.append((m, gradient_sum / m if m else np.zeros(model.n_params)))
    return model, params, X[batch], y[batch], replies


def exercise_2(server_step: Callable) -> bool:
    """Check ``server_step(params, replies, lr)``, the article's server repaired.

    Parameters
    ----------
    server_step : callable
        Called with ``params`` of shape (n_params,), a list ``replies`` of K pairs
        ``(m_k, g_k)`` (worker k holds m_k rows of the batch; g_k is the mean gradient over
        them, zeros when m_k = 0) and a float ``lr``. Must return the new parameters
        params - lr * sum_k (m_k / sum_j m_j) g_k, which is one step of serial minibatch SGD.
    """
    model, params, X_batch, y_batch, replies = _server_problem()
    lr = 0.5
    answer, error = call(server_step, params.copy(), [(m, g.copy()) for m, g in replies], lr)
    if error:
        return report(False, "", error)
    expected = params - lr * model.grad(params, X_batch, y_batch)
    sizes, grads = np.array([m for m, _ in replies]), np.array([g for _, g in replies])
    assert close(expected, params - lr * weighted_average(grads, sizes), atol=1e-12)
    wrong = {
        "That is the plain mean of the g_k: the worker with 1 row counts as much as the one "
        "with 18, and the worker with none pulls the step towards 0. Weight g_k by m_k.":
            params - lr * grads.mean(axis=0),
        "That is the article's sum (self.params += ...): K times too big a step. Weight g_k by "
        "m_k / sum_j m_j.": params - lr * grads.sum(axis=0),
        "You weighted by m_k but did not divide by |B| = sum_j m_j.": params - lr * sizes @ grads,
        "You returned the averaged gradient; return params - lr * (averaged gradient).":
            (expected - params) / -lr,
        "You stepped uphill: subtract lr * gradient.": 2 * params - expected,
        "You forgot the learning rate.": params - (params - expected) / lr,
    }
    hint = next((text for text, value in wrong.items() if close(answer, value)), None)
    if hint is None and np.shape(answer) != params.shape:
        hint = f"Return parameters of shape {params.shape}, got shape {np.shape(answer)}."
    return report(close(answer, expected, rtol=0, atol=1e-10),
                  "Weighting by batch share m_k / |B| gives exactly the serial SGD step.",
                  hint or "Your parameters differ from one serial SGD step on the batch.")


def exercise_3(amdahl_speedup: Callable) -> bool:
    """Check ``amdahl_speedup(compute_seconds, wall_seconds, n_workers)``.

    Parameters
    ----------
    amdahl_speedup : callable
        Called with the compute time and the wall time of a run on one worker and an int K.
        Must estimate p = compute_seconds / wall_seconds and return Amdahl's speed-up
        S(K) = 1 / ((1 - p) + p / K) as a float.
    """
    for compute, wall, K in ((0.9, 1.0, 2), (7.5, 8.0, 4), (3.0, 4.0, 16), (2.0, 2.0, 8)):
        answer, error = call(amdahl_speedup, compute, wall, K)
        if error:
            return report(False, "", error)
        p = compute / wall
        expected = 1.0 / ((1.0 - p) + p / K)
        if close(answer, expected):
            continue
        wrong = {
            "That is the ideal speed-up K; the serial part (1 - p) does not shrink.": K,
            "That is Gustafson's scaled speed-up (1 - p) + p K, for a problem that grows with K; "
            "Amdahl keeps the problem fixed.": (1 - p) + p * K,
            "The parallel part gets K times shorter: p / K, not p * K.": 1 / ((1 - p) + p * K),
            "That is the time on K workers relative to one; the speed-up is its reciprocal.":
                (1 - p) + p / K,
            "p is the compute (parallel) fraction compute / wall; you used the serial fraction.":
                1 / (p + (1 - p) / K),
        }
        hint = next((text for text, value in wrong.items() if close(answer, value)),
                    f"S({K}) should be {expected:.4f} for p = {p:.4f}, got {answer!r:.40}.")
        return report(False, "", f"For compute={compute}, wall={wall}, K={K}: {hint}")
    return report(True, "S(K) = 1 / ((1 - p) + p / K): however many workers, never more than "
                  "1 / (1 - p).", "")


def _reduce_scatter_step(buffers, step):
    """Step ``step`` of reduce-scatter, as in :func:`flcourse.distributed.ring_allreduce`."""
    buffers = np.array(buffers, dtype=np.float64)
    K = len(buffers)
    chunks = np.array_split(np.arange(buffers.shape[1]), K)
    result = buffers.copy()
    for k in range(K):
        chunk = chunks[(k - step) % K]
        result[(k + 1) % K, chunk] += buffers[k, chunk]
    return result


def exercise_4(reduce_scatter_step: Callable) -> bool:
    """Check ``reduce_scatter_step(buffers, step)``.

    Parameters
    ----------
    reduce_scatter_step : callable
        Called with ``buffers`` of shape (K, d), row k peer k's vector, and an int ``step`` in
        0..K-2. Must return a new (K, d) array: every peer k at once sends chunk (k - step) mod K
        (chunks from ``np.array_split(np.arange(d), K)``) to peer (k + 1) mod K, which adds it
        to its own copy of that chunk.
    """
    for K, d in _RING_CASES:
        start = np.random.default_rng(K * d).integers(-9, 10, size=(K, d)).astype(np.float64)
        chunks, buffers = np.array_split(np.arange(d), K), start
        for step in range(K - 1):
            answer, error = call(reduce_scatter_step, buffers.copy(), step)
            if error:
                return report(False, "", error)
            expected = _reduce_scatter_step(buffers, step)
            if not close(answer, expected):
                return report(False, "", f"K={K}, d={d}, step {step}: "
                              + _ring_hint(answer, buffers, step, chunks, expected))
            buffers = expected
        total = ring_allreduce(start)[0][0]  # the reference ends where flcourse's ring does
        assert all(close(buffers[k, c], total[c]) for k, c in enumerate(chunks[1:] + chunks[:1]))
    return report(True, "After K - 1 steps peer k holds the full sum of chunk k + 1; "
                  "the all-gather then passes the finished chunks round the ring.", "")


def _ring_hint(answer, buffers, step, chunks, expected) -> str:
    K = len(buffers)
    if np.shape(answer) != expected.shape:
        return f"return an array of shape {expected.shape}, got shape {np.shape(answer)}."
    overwrite, left = buffers.copy(), buffers.copy()
    for k in range(K):
        overwrite[(k + 1) % K, chunks[(k - step) % K]] = buffers[k, chunks[(k - step) % K]]
        left[(k - 1) % K, chunks[(k - step) % K]] += buffers[k, chunks[(k - step) % K]]
    if close(answer, overwrite):
        return "the receiver must add the chunk to its own; overwriting is the all-gather phase."
    if close(answer, left):
        return "peer k sends to its right neighbour (k + 1) mod K, not to k - 1."
    if close(answer, _reduce_scatter_step(buffers, -step)):
        return "peer k sends chunk (k - step) mod K, not (k + step) mod K."
    if close(answer, buffers):
        return "nothing changed: return the buffers after the step."
    return "your buffers differ from one reduce-scatter step; compare row by row."


def exercise_5(answer: dict) -> bool:
    """Check ``answer``, a dict mapping each symptom "A".."E" of notebook 04 to the number
    (1-7) of the article's defect it reveals."""
    if not isinstance(answer, dict) or any(answer.get(key) is None for key in _SYMPTOMS):
        return report(False, "", "Fill in a number from 1 to 7 for each of the keys "
                      f"{', '.join(_SYMPTOMS)}.")
    for key, (defect, clue) in _SYMPTOMS.items():
        try:
            given = int(answer[key])
        except (TypeError, ValueError):
            return report(False, "", f"{key}: give the defect's number, got {answer[key]!r}.")
        if given != defect:
            return report(False, "", f"{key} is not defect {given}. Look again: {clue}")
    return report(True, "Each symptom names its defect: " + ", ".join(
        f"{key} = {defect}" for key, (defect, _) in _SYMPTOMS.items()) + ".", "")
