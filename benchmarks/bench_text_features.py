"""What the text example's MiniLM features cost: length-sorted batches, and the disk cache.

`gallery_lib.datasets.MiniLMFeatures` encodes snippets of the text-classification example
in batches of similar lengths, and `cached` keeps the features on disk. This measures both
on `--snippets` snippets drawn with a seed from the example's corpus (`--data-source` and
`--max-tokens` default to the example's `Config`), pinned to `--cpus` cores with `--threads`
torch threads:

- the share of encoded positions that are padding, in corpus order and sorted by length;
- the time to encode them with and without sorting (rounds alternate which goes first; the
  median of the per-round ratios, with its range);
- the time to read their cached features back, against encoding them (the sorted median).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_text_features.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import pin_cpus
from _results import RESULTS, save_results

if __name__ == "__main__":
    CORES = pin_cpus(int(sys.argv[sys.argv.index("--cpus") + 1]) if "--cpus" in sys.argv else 1)

import numpy as np
import torch

from gallery_lib import example_definitions
from gallery_lib.datasets import MiniLMFeatures, load_movie_snippets

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plot_text_classification.py"


def padding_share(lengths: np.ndarray, batch_size: int) -> float:
    """The share of encoded positions that are padding, batches cut in the given order."""
    padded = sum(
        batch.max() * len(batch)
        for batch in np.array_split(lengths, range(batch_size, len(lengths), batch_size))
    )
    return 1.0 - lengths.sum() / padded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--snippets", type=int, default=1024, help="snippets encoded per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both orders")
    parser.add_argument("--batch-size", type=int, default=64, help="snippets per encoder call")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--cpus", type=int, default=1, help="cores to pin the process to (0: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawn snippets")
    parser.add_argument(
        "--results", help="the JSON record (default benchmarks/results/text_features.json)"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    defaults = example_definitions(EXAMPLE).Config()

    texts, _ = load_movie_snippets(defaults.data_source)
    chosen = np.random.default_rng(args.seed).permutation(len(texts))[: args.snippets]
    texts = [texts[i] for i in chosen]
    features = MiniLMFeatures(tempfile.mkdtemp(prefix="bench-text-"), defaults.max_tokens)
    lengths = np.array([len(ids) for ids in features.token_ids(texts)])
    numbers: dict[str, float] = {
        "snippets": len(texts),
        "rounds": args.rounds,
        "padding_unsorted": padding_share(lengths, args.batch_size),
        "padding_sorted": padding_share(np.sort(lengths), args.batch_size),
    }

    features(texts[: args.batch_size])  # warm-up: first calls allocate and pick kernels
    times: dict[bool, list[float]] = {True: [], False: []}
    for round_index in range(args.rounds):
        for sort in (True, False) if round_index % 2 == 0 else (False, True):
            start = time.perf_counter()
            encoded = features(texts, args.batch_size, sort_by_length=sort)
            times[sort].append(time.perf_counter() - start)
        print(
            f"round {round_index + 1}: sorted {times[True][-1]:.2f} s, "
            f"corpus order {times[False][-1]:.2f} s",
            flush=True,
        )
    ratios = [u / s for s, u in zip(times[True], times[False], strict=True)]
    numbers |= {
        "encode_sorted_s": statistics.median(times[True]),
        "encode_unsorted_s": statistics.median(times[False]),
        "sorted_speedup": statistics.median(ratios),
        "sorted_speedup_min": min(ratios),
        "sorted_speedup_max": max(ratios),
    }

    features.cached(texts)  # writes the cache file
    reads = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        read = features.cached(texts)
        reads.append(time.perf_counter() - start)
    np.testing.assert_allclose(read, encoded, rtol=1e-4, atol=1e-5)
    numbers["cache_read_s"] = statistics.median(reads)
    numbers["cache_speedup"] = numbers["encode_sorted_s"] / numbers["cache_read_s"]

    lines = [
        f"| {len(texts)} snippets, batch {args.batch_size}, {CORES}, torch threads "
        f"{args.threads} | value |",
        "|---|---|",
        f"| padding, corpus order / sorted | {numbers['padding_unsorted']:.1%} / "
        f"{numbers['padding_sorted']:.1%} |",
        f"| encode, corpus order / sorted (median of rounds) | "
        f"{numbers['encode_unsorted_s']:.2f} s / {numbers['encode_sorted_s']:.2f} s |",
        f"| sorted speed-up: median of rounds (range) | {numbers['sorted_speedup']:.2f}x "
        f"({numbers['sorted_speedup_min']:.2f}-{numbers['sorted_speedup_max']:.2f}) |",
        f"| read the cache / encode (sorted) | {numbers['cache_read_s'] * 1e3:.1f} ms, "
        f"{numbers['cache_speedup']:,.0f}x faster |",
    ]
    print("\n".join(lines))
    path = Path(args.results) if args.results else RESULTS / "text_features.json"
    save_results(path, numbers, {"features": "\n".join(lines)}, load)
    print(f"written to {path}")


if __name__ == "__main__":
    main()
