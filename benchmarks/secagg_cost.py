"""What secure aggregation costs: client and server compute, and bytes, against n, d and dropout.

Each point runs one real round of ``SecAggFedAvg.run_round`` (the four stages, X25519 + HKDF,
AES-CTR masks, AES-GCM shares, Shamir recovery) over n in-process clients whose change is a
fixed random vector of d coordinates, with a fraction of them dropping out after sharing their
keys and before sending their masked input: the costly case, where the server must rebuild
each dropped client's key and recompute its masks with every survivor. Times: each client's
four calls (the mean over clients), and the server's own work (the round's wall time minus the
clients'), beside the floor: summing and decoding the same encoded vectors in the clear.
Bytes: every request and reply of the four stages as the round grid counts them on the wire,
minus the model's parameters (sent with or without secure aggregation); against the same
encoded uint32 vectors sent unmasked (4 d bytes each, framed). Beside it, the ratio to raw
16-bit inputs, the basis of Bonawitz et al.'s 1.73x at 2^10 users, 2^20 dimensions and 16 bits.

SecAgg+ (Bell et al. 2020) beside it at n = 100 and 200, d = 10^5, dropout 0 and 10%: each
client shares with and masks with its k = 2 ceil(log2 n) neighbours on a random Harary graph,
its secrets t-of-(k + 1) with t = ceil((k + 1) / 2). (At 30% dropout such a small k loses some
neighbourhood below t, and the round aborts: k must grow with the dropout rate.)

    python benchmarks/secagg_cost.py [--quick]

Writes benchmarks/results/secagg_cost.{json,png}; the last line is
``secagg_bytes_ratio_n100_d100000=<x.xx> secagg_unmask_seconds_n100_d100000_drop30=<s> ...``.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import time
from pathlib import Path

import numpy as np

from flcourse.federated import InProcessClients, RoundGrid, SecAggClient, SecAggFedAvg
from flcourse.federated.messages import FitRes, message_bytes

RESULTS = Path(__file__).resolve().parent / "results"
NS, DS, DROPOUTS = (10, 50, 100, 200), (1_000, 10_000, 100_000), (0.0, 0.1, 0.3)


def secagg_plus_degree(n: int) -> int:
    """SecAgg+'s k for n clients: 2 ceil(log2 n), even and O(log n) as Bell et al. ask."""
    return 2 * math.ceil(math.log2(n))


class FixedChange:
    """A client whose change is a fixed vector: the protocol's cost without training's."""

    def __init__(self, cid: int, delta: np.ndarray):
        self.cid, self.delta, self.state = cid, delta, {}

    def fit(self, params, config):
        return FitRes(self.delta, 1, {}, {})


class TimedClient(SecAggClient):
    """A SecAggClient that adds the time of its calls to ``seconds`` and, if ``drops``, stops
    answering at the masked-input stage."""

    def __init__(self, client, drops: bool, seconds: list):
        super().__init__(client)
        self.drops, self.seconds = drops, seconds

    def _timed(self, method, *args):
        started = time.perf_counter()
        try:
            return method(*args)
        finally:
            self.seconds.append(time.perf_counter() - started)

    def secagg_advertise(self, *args):
        return self._timed(super().secagg_advertise, *args)

    def secagg_share_keys(self, *args):
        return self._timed(super().secagg_share_keys, *args)

    def secagg_masked_fit(self, *args):
        if self.drops:
            raise ConnectionError("offline")
        return self._timed(super().secagg_masked_fit, *args)

    def secagg_unmask(self, *args):
        return self._timed(super().secagg_unmask, *args)


def measure(n: int, d: int, dropout: float, seed: int = 0, k: int | None = None) -> dict:
    """One round at (n, d, dropout), SecAgg+ with degree k if given: seconds and bytes, and
    whether the sum came out right."""
    rng = np.random.default_rng(seed)
    deltas = rng.uniform(-0.5, 0.5, size=(n, d))
    dropped = set(rng.choice(n, size=int(round(dropout * n)), replace=False).tolist())
    seconds: list = []
    clients = [TimedClient(FixedChange(cid, deltas[cid]), cid in dropped, seconds) for cid in range(n)]
    grid = RoundGrid(InProcessClients(clients), 3600.0, "drop", lambda cid: 10**9, n_params=d)
    strategy, params = SecAggFedAvg(threshold=0.6 if k is None else 0.5, clip=1.0, bits=16, neighbours=k), np.zeros(d)
    strategy.initialize(params)
    started = time.perf_counter()
    new, metrics = strategy.run_round(1, params, list(range(n)), np.random.default_rng(seed), grid)
    wall = time.perf_counter() - started
    survivors = sorted(set(range(n)) - dropped)
    error = float(np.max(np.abs(new - deltas[survivors].mean(axis=0))))
    floor = plain_sum_seconds(deltas[survivors], strategy)
    protocol = grid.wire_bytes_sent + grid.wire_bytes_received - params.nbytes * metrics["n_shared"]
    plain = len(survivors) * message_bytes([np.zeros(d, dtype=np.uint32), 1])
    return {"n": n, "d": d, "dropout": dropout, "k": k, "neighbours": metrics["neighbours"],
            "share_threshold": metrics["share_threshold"], "n_dropped": len(dropped), "threshold": metrics["threshold"],
            "client_seconds": sum(seconds) / n, "server_seconds": wall - sum(seconds), "wall_seconds": wall,
            "plain_server_seconds": floor,
            "protocol_bytes": protocol, "plain_bytes": plain, "bytes_ratio": protocol / plain,
            "ratio_vs_raw_16bit": protocol / (len(survivors) * 2 * d), "max_abs_error": error,
            "error_bound": 1.0 / (2**15 - 1) / 2 + 1e-12}


def plain_sum_seconds(deltas: np.ndarray, strategy) -> float:
    """The floor: the server's work without secure aggregation, summing and decoding the
    survivors' encoded vectors (best of 3)."""
    from flcourse.privacy import clip_and_encode, decode_sum

    encoded = clip_and_encode(deltas, strategy.clip, strategy.bits)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        decode_sum(encoded.sum(axis=0, dtype=np.uint32), len(deltas), strategy.clip, strategy.bits)
        best = min(best, time.perf_counter() - started)
    return best


def summary_line(rows: list) -> str:
    """The key=value figures of the issue, and the client's and the worst server time."""
    at = {(r["n"], r["d"], r["dropout"], r.get("k")): r for r in rows}
    main = at.get((100, 100_000, 0.3, None)) or rows[-1]
    ratio = at.get((100, 100_000, 0.0, None), main)["bytes_ratio"]
    line = (f"secagg_bytes_ratio_n100_d100000={ratio:.2f} "
            f"secagg_unmask_seconds_n100_d100000_drop30={main['server_seconds']:.2f} "
            f"secagg_client_seconds_n100_d100000={main['client_seconds']:.3f} "
            f"plain_sum_seconds_n100_d100000_drop30={main['plain_server_seconds']:.4f} "
            f"secagg_max_server_seconds={max(r['server_seconds'] for r in rows if r.get('k') is None):.2f}")
    plus = at.get((200, 100_000, 0.1, secagg_plus_degree(200)))
    if plus is not None:
        line += (f" secaggplus_k{plus['k']}_bytes_ratio_n200_d100000_drop10={plus['bytes_ratio']:.2f}"
                 f" secaggplus_k{plus['k']}_server_seconds_n200_d100000_drop10={plus['server_seconds']:.2f}")
    return line


def plot(rows: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(12, 3.6))
    plus, rows = [r for r in rows if r.get("k")], [r for r in rows if not r.get("k")]
    for d in sorted({r["d"] for r in rows}):
        line = [r for r in rows if r["d"] == d and r["dropout"] == 0.0]
        left.plot([r["n"] for r in line], [r["bytes_ratio"] for r in line], "o-", label=f"d = {d:,}")
    left.axhline(2.0, color="grey", ls="--", lw=0.8)
    left.set(xlabel="clients n", ylabel="protocol bytes / unmasked uint32 bytes", yscale="log",
             title="expansion (no dropout)")
    for dropout in sorted({r["dropout"] for r in rows}):
        line = [r for r in rows if r["d"] == max(r["d"] for r in rows) and r["dropout"] == dropout]
        middle.plot([r["n"] for r in line], [r["server_seconds"] for r in line], "o-",
                    label=f"{dropout:.0%} drop out")
        right.plot([r["n"] for r in line], [r["client_seconds"] for r in line], "o-", label=f"{dropout:.0%} drop out")
    for dropout in sorted({r["dropout"] for r in plus}):
        line = [r for r in plus if r["d"] == max(r["d"] for r in rows) and r["dropout"] == dropout]
        middle.plot([r["n"] for r in line], [r["server_seconds"] for r in line], "s--",
                    label=f"SecAgg+, {dropout:.0%}")
        if dropout == 0.0:
            left.plot([r["n"] for r in line], [r["bytes_ratio"] for r in line], "s--", label="SecAgg+, d = 100,000")
    middle.set(xlabel="clients n", ylabel="seconds", title=f"server, d = {max(r['d'] for r in rows):,}")
    right.set(xlabel="clients n", ylabel="seconds per client", title=f"client, d = {max(r['d'] for r in rows):,}")
    for ax in (left, middle, right):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--quick", action="store_true", help="n <= 50 and d <= 10^4 only")
    args = parser.parse_args()
    from tqdm.auto import tqdm

    points = [(n, d, p, None) for n, d, p in itertools.product(NS, DS, DROPOUTS)
              if not args.quick or (n <= 50 and d <= 10**4)]
    points += [(n, 10**4 if args.quick else 10**5, p, secagg_plus_degree(n))
               for n in ((50,) if args.quick else (100, 200)) for p in (0.0, 0.1)]
    rows = [measure(n, d, p, k=k) for n, d, p, k in tqdm(points, desc="secagg rounds", unit="round")]
    bad = [r for r in rows if r["max_abs_error"] > r["error_bound"]]
    if bad:
        raise SystemExit(f"secure aggregation gave a wrong mean at {[(r['n'], r['d'], r['dropout']) for r in bad]}")
    report = {"rows": rows, "machine": platform.platform(), "python": platform.python_version(),
              "summary": summary_line(rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "secagg_cost.json").write_text(json.dumps(report, indent=1) + "\n")
    plot(rows, args.out / "secagg_cost.png")
    for r in rows:
        print(f"{'SecAgg+ k=' + str(r['k']) if r['k'] else 'SecAgg':11} n={r['n']:4d} d={r['d']:7,d} "
              f"drop={r['dropout']:.0%}: client {r['client_seconds']:.3f} s, "
              f"server {r['server_seconds']:.2f} s (plain sum {r['plain_server_seconds']:.4f} s), "
              f"bytes x{r['bytes_ratio']:.3f} (x{r['ratio_vs_raw_16bit']:.2f} "
              f"vs raw 16-bit)")
    print(report["summary"])


if __name__ == "__main__":
    main()
