"""atheris (coverage-guided, libFuzzer) over tests/fuzz/target.py: decode, validate, core.

    mkdir -p build/fuzz && PYTHONPATH=. .venv/bin/python tests/fuzz/fuzz_ingest.py build/fuzz -runs=1000000

libFuzzer options follow the script; a folder argument is the corpus (it starts from
`target.seeds()` when empty). A crash prints the input and writes it as crash-<sha1>.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

# Only our modules get coverage instrumentation: instrumenting numpy and Faust too costs ~30 s.
with atheris.instrument_imports(include=["streams"]):
    from tests.fuzz.target import fuzz_one, seeds


def main() -> None:
    for corpus in (Path(arg) for arg in sys.argv[1:] if not arg.startswith("-")):
        if corpus.is_dir() and not any(corpus.iterdir()):
            for n, seed in enumerate(seeds()):
                (corpus / f"seed-{n}").write_bytes(seed)
    atheris.Setup(sys.argv, fuzz_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
