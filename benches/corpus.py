#!/usr/bin/env python3
"""Writes the benchmark corpora as JSON lines, one event (a JSON string, without its final
newline; a Java trace is one event) per line: `DIR/<corpus>-<events>.jsonl`.

The generators are benches/sidecar.py's (seeded, deterministic), so the compression bench
(`cargo bench -p firetail-wire --bench compression`, which runs this script when
FIRETAIL_CORPUS_DIR holds no corpus) measures the same events as benches/sidecar and
benches/fluentbit.

    python3 benches/corpus.py --out DIR [--corpora access,lines200,json1k,stack] [--events N]
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sidecar  # noqa: E402  (the generators)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--corpora", default=",".join(sidecar.CORPORA))
    p.add_argument("--events", type=int, default=0,
                   help="events per corpus (0: ~4 MB of log bytes per corpus)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    default = {"access": 20_000, "lines200": 20_000, "json1k": 4_000, "stack": 12_000}
    for corpus in sidecar.parse_list(args.corpora, sidecar.CORPORA):
        n = args.events or default[corpus]
        path = os.path.join(args.out, f"{corpus}-{n}.jsonl")
        if os.path.exists(path):
            print(path)
            continue
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            for ev in sidecar.events_for(corpus, n):
                f.write(json.dumps(ev[:-1]) + "\n")
        os.replace(tmp, path)
        print(path)


if __name__ == "__main__":
    main()
