"""IMDB encoding: first build from the archive, then cached loads (target: at most 1 s).

    .venv/bin/python benchmarks/datasets.py [--repeat 5]

The first build runs in a fresh temporary cache seeded from the usual source
($AUTOGRADER_DATA_MIRROR or the internet). Each cached load runs in a new
Python process, as a student's notebook would, and is timed inside it.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

LOAD = ("import time; from autograder.datasets import imdb; t = time.perf_counter(); "
        "imdb.load_data(num_words=10000); print(time.perf_counter() - t)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, AUTOGRADER_DATA_DIR=cache)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from autograder.datasets import imdb; imdb.get_word_index()"],
                       env=env, check=True)
        print(f"first build (fetch, verify, tokenize, encode, cache): {time.perf_counter() - started:.1f} s")
        loads = [float(subprocess.run([sys.executable, "-c", LOAD], env=env, check=True,
                                      capture_output=True, text=True).stdout) for _ in range(args.repeat)]
    print(f"cached load_data(num_words=10000), {args.repeat} fresh processes: median {statistics.median(loads):.2f} s "
          f"(min {min(loads):.2f}, max {max(loads):.2f}); target <= 1 s")


if __name__ == "__main__":
    main()
