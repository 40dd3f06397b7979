"""Writes the kfp-compiled YAML fixtures beside this file from ``kfp_samples.py``.

Run it with a virtualenv holding kfp (never Shipyard's own), for example::

    python3 -m venv /tmp/kfpvenv && /tmp/kfpvenv/bin/pip install kfp
    /tmp/kfpvenv/bin/python tests/pipelines/kfp/make_fixtures.py

Each file's first lines say which kfp version wrote it.
"""

import sys
from pathlib import Path

import kfp
from kfp import compiler

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import kfp_samples  # noqa: E402

for name, pipeline in {**kfp_samples.PIPELINES, **kfp_samples.COMPONENTS}.items():
    path = HERE / f"{name}.yaml"
    compiler.Compiler().compile(pipeline, str(path))
    body = path.read_text()
    note = (f"# Written by kfp {kfp.__version__}'s compiler from kfp_samples.py "
            f"({name!r}) by make_fixtures.py; do not edit.\n")
    path.write_text(note + body)
    print(path.name)
