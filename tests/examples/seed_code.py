"""Reading seed 002's pipeline code out of the blog post's text (which lost its indentation).

``extract`` keeps, for each component, the ``@component(...)`` decorator and the ``def``
header, and for the pipeline its decorator, header and body: enough to compare signatures
and wiring. The extract is checked in (``seed_002_extract.txt``) so the tests run without
the seeds folder; when the folder is there, a test checks the extract is still faithful.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

EXTRACT = Path(__file__).with_name("seed_002_extract.txt")
COMPONENTS = ("ingest_data", "preprocess_data", "train_model", "evaluate_model", "register_model")
PIPELINE = "lead_scoring_pipeline"


def extract(text: str) -> str:
    """The decorators, headers and pipeline body from the seed's text, as parseable code."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].startswith(("@component(", "@pipeline(")):
            block = []
            while not lines[i].startswith("def "):
                block.append(lines[i])
                i += 1
            while True:  # the header, up to the line closing its parenthesis
                block.append(lines[i])
                i += 1
                if re.match(r"^\).*:$", block[-1]) or block[-1].endswith("):"):
                    break
            if block[0].startswith("@pipeline("):
                # The body runs until the prose resumes; its statements are all top level.
                while i < len(lines) and not lines[i].startswith("Key Pipeline"):
                    block.append("    " + lines[i])
                    i += 1
            else:
                block.append("    ...")
            out.extend([*block, ""])
            continue
        i += 1
    return "\n".join(out)


@dataclass(frozen=True)
class Signature:
    decorator: dict[str, str]
    params: list[tuple[str, str, str | None]]  # name, annotation, default
    returns: str | None


def signatures(source: str) -> dict[str, Signature]:
    """Each decorated function's decorator keywords, parameters and return annotation."""
    found: dict[str, Signature] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef) or not node.decorator_list:
            continue
        deco = node.decorator_list[0]
        keywords = {k.arg or "**": ast.unparse(k.value) for k in getattr(deco, "keywords", [])}
        args = node.args.args
        defaults: list[ast.expr | None] = [None] * (len(args) - len(node.args.defaults))
        defaults += list(node.args.defaults)
        params = [
            (a.arg, ast.unparse(a.annotation) if a.annotation else "",
             None if d is None else ast.unparse(d))
            for a, d in zip(args, defaults, strict=True)
        ]  # fmt: skip
        returns = None if node.returns is None else ast.unparse(node.returns)
        found[node.name] = Signature(keywords, params, returns)
    return found


def wiring(source: str, name: str = PIPELINE) -> list[tuple[str, str, dict[str, str]]]:
    """The pipeline's tasks in order: (variable, component, {argument: expression})."""
    func = next(n for n in ast.parse(source).body
                if isinstance(n, ast.FunctionDef) and n.name == name)  # fmt: skip
    tasks = []
    for stmt in func.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
            call = stmt.value
            target = ast.unparse(stmt.targets[0])
            kwargs = {k.arg or "**": ast.unparse(k.value) for k in call.keywords}
            tasks.append((target, ast.unparse(call.func), kwargs))
    return tasks
