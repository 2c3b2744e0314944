"""The helpers of benchmarks/secagg_cost.py, at a small size: one real round, its accounting
of bytes against a count by hand, and the summary line."""
import numpy as np
import pytest
from benchmark_helpers import load_benchmark

from flcourse.federated.messages import message_bytes


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("secagg_cost")


def test_a_round_recovers_the_mean_of_the_survivors(bench):
    row = bench.measure(8, 50, 0.25, seed=1)
    assert row["n_dropped"] == 2 and row["threshold"] == 5
    assert row["max_abs_error"] <= row["error_bound"]
    assert 0 < row["plain_server_seconds"] < row["server_seconds"]


def test_the_plain_baseline_is_the_survivors_framed_uint32_vectors(bench):
    row = bench.measure(6, 40, 0.0)
    assert row["plain_bytes"] == 6 * message_bytes([np.zeros(40, dtype=np.uint32), 1])
    # masked vectors are as long as the plain ones: the rest is keys, shares and framing
    assert row["protocol_bytes"] > row["plain_bytes"]
    shares_up = 6 * 5 * 124  # every client's encrypted shares for the 5 others (nonce, 96 bytes, tag)
    assert row["protocol_bytes"] - row["plain_bytes"] > 2 * shares_up  # up to the server, then down


def test_the_summary_names_the_issue_figures(bench):
    rows = [dict(n=100, d=100_000, dropout=p, bytes_ratio=1.1 + p, server_seconds=2.0 + p, client_seconds=0.1,
                 plain_server_seconds=0.01)
            for p in (0.0, 0.3)]
    line = bench.summary_line(rows)
    assert line.startswith("secagg_bytes_ratio_n100_d100000=1.10 secagg_unmask_seconds_n100_d100000_drop30=2.30 ")


def test_the_model_download_is_not_counted_as_protocol_bytes(bench):
    row = bench.measure(4, 2_000, 0.0)  # the 4 downloads of 2,000 float64 parameters would be 64,000 bytes
    assert 0 < row["protocol_bytes"] - row["plain_bytes"] < 4 * 2_000 * 8 / 4


def test_a_secagg_plus_round_is_exact_and_sends_less_than_the_complete_graph(bench):
    plus, full = bench.measure(16, 200, 0.0, k=4), bench.measure(16, 200, 0.0)
    assert plus["neighbours"] == 4 and plus["share_threshold"] == 3 and full["neighbours"] == 15
    assert plus["max_abs_error"] <= plus["error_bound"]
    assert plus["protocol_bytes"] < full["protocol_bytes"]
    assert [bench.secagg_plus_degree(n) for n in (100, 200, 1024)] == [14, 16, 20]


def test_the_summary_adds_secagg_plus_when_it_ran(bench):
    rows = [dict(n=100, d=100_000, dropout=0.0, k=None, bytes_ratio=1.1, server_seconds=0.2, client_seconds=0.1,
                 plain_server_seconds=0.01),
            dict(n=200, d=100_000, dropout=0.1, k=16, bytes_ratio=1.02, server_seconds=0.5, client_seconds=0.01,
                 plain_server_seconds=0.01)]
    line = bench.summary_line(rows)
    assert line.endswith(" secaggplus_k16_bytes_ratio_n200_d100000_drop10=1.02"
                         " secaggplus_k16_server_seconds_n200_d100000_drop10=0.50")
    assert "secagg_max_server_seconds=0.20" in line  # SecAgg+ rows are not SecAgg's
