"""The command line every benchmark peer takes (`streams.bench.contestants` builds it)."""

from __future__ import annotations

import argparse


def peer_arguments(description: str | None, state_dir: bool = False) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--inputs", required=True, help="input topics, comma-separated")
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--size", type=int, default=900, help="bytes of padding per output")
    parser.add_argument("--from-start", action="store_true", help="read what the inputs hold already")
    if state_dir:
        parser.add_argument("--state-dir", required=True)
    args = parser.parse_args()
    args.inputs = args.inputs.split(",")
    return args
