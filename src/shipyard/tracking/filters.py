"""The run filter language, MLflow's in spirit:

    metrics.rmse < 0.2 and params.max_depth = '6' and tags.team = "sales"
    status = 'FINISHED' and name LIKE 'lr-%' and metrics.`loss/train` <= 1e-3
    params.model IN ('xgb', 'lgbm')

Clauses are joined by ``and``, at most ``MAX_CLAUSES`` of them (each becomes a subquery).
Keys with characters beyond letters, digits, '_', '.' and '-' are quoted with backticks.
Errors name the position in the filter that could not be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shipyard.errors import InvalidArgument, TooLarge

Kind = Literal["metrics", "params", "tags", "attributes"]
ATTRIBUTES = ("status", "name", "run_id", "start_time", "end_time", "experiment", "created_by")
NUMERIC_OPS = ("<", "<=", ">", ">=", "=", "!=")
STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")
MAX_FILTER = 4000
MAX_CLAUSES = 50

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<ident>(?:metrics|params|tags|attributes|attribute|metric|param|tag)\.(?:`[^`]+`|[\w.\-/:]+)
               |status|name|run_id|start_time|end_time|experiment|created_by)
    | (?P<op><=|>=|!=|<>|=|<|>|\bNOT\s+IN\b|\bIN\b|\bNOT\s+LIKE\b|\bLIKE\b|\bILIKE\b)
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    | (?P<and>\bAND\b)
    )""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass(frozen=True)
class Clause:
    kind: Kind
    key: str
    op: str
    value: float | str | tuple[str, ...]


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse_filter(text: str | None) -> list[Clause]:
    if not text or not text.strip():
        return []
    if len(text) > MAX_FILTER:
        raise TooLarge(f"filter is longer than {MAX_FILTER} characters", field="filter")
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidArgument(
                f"filter: cannot read {text[pos:pos + 20].strip()!r} at position {pos}",
                field="filter",
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind), pos))
        pos = match.end()
    clauses: list[Clause] = []
    i = 0
    while i < len(tokens):
        if clauses:
            if tokens[i][0] != "and":
                raise InvalidArgument(
                    f"filter: expected AND at position {tokens[i][2]} (only AND joins clauses)",
                    field="filter",
                )
            i += 1
        clause, i = _clause(tokens, i)
        clauses.append(clause)
    if len(clauses) > MAX_CLAUSES:
        raise InvalidArgument(
            f"filter has {len(clauses)} clauses; the limit is {MAX_CLAUSES}", field="filter"
        )
    return clauses


def _clause(tokens: list[tuple[str, str, int]], i: int) -> tuple[Clause, int]:
    def need(kind: str) -> tuple[str, str, int]:
        nonlocal i
        if i >= len(tokens) or tokens[i][0] != kind:
            where = f"position {tokens[i][2]}" if i < len(tokens) else "the end"
            raise InvalidArgument(f"filter: expected {kind} at {where}", field="filter")
        tok = tokens[i]
        i += 1
        return tok

    ident = need("ident")[1]
    op = re.sub(r"\s+", " ", need("op")[1].upper())
    op = "!=" if op == "<>" else op
    kind, key = _split_ident(ident)
    value: float | str | tuple[str, ...]
    if op in ("IN", "NOT IN"):
        need("lparen")
        items: list[str] = []
        while True:
            if i < len(tokens) and tokens[i][0] in ("string", "number"):
                tok = tokens[i]
                items.append(_unquote(tok[1]) if tok[0] == "string" else tok[1])
                i += 1
            else:
                raise InvalidArgument("filter: IN takes a list of quoted values", field="filter")
            if i < len(tokens) and tokens[i][0] == "comma":
                i += 1
                continue
            need("rparen")
            break
        value = tuple(items)
    elif i < len(tokens) and tokens[i][0] == "number":
        numeric = kind == "metrics" or key in ("start_time", "end_time")
        value = float(tokens[i][1]) if numeric else tokens[i][1]
        i += 1
    elif i < len(tokens) and tokens[i][0] == "string":
        value = _unquote(tokens[i][1])
        i += 1
    else:
        raise InvalidArgument(f"filter: expected a value after {ident} {op}", field="filter")
    _check_ops(kind, key, op, value)
    return Clause(kind, key, op, value), i


def _split_ident(ident: str) -> tuple[Kind, str]:
    if "." not in ident or ident.split(".", 1)[0].lower() not in (
        "metrics", "metric", "params", "param", "tags", "tag", "attributes", "attribute"
    ):
        return "attributes", ident.lower()
    prefix, key = ident.split(".", 1)
    key = key[1:-1] if key.startswith("`") else key
    prefix = prefix.lower().rstrip("s")
    kind: Kind = {"metric": "metrics", "param": "params", "tag": "tags"}.get(  # type: ignore[assignment]
        prefix, "attributes"
    )
    if kind == "attributes":
        key = key.lower()
        if key not in ATTRIBUTES:
            raise InvalidArgument(
                f"filter: unknown attribute {key!r}; use one of {', '.join(ATTRIBUTES)}",
                field="filter",
            )
    return kind, key


def _check_ops(kind: Kind, key: str, op: str, value: object) -> None:
    if kind == "metrics":
        if op not in NUMERIC_OPS or not isinstance(value, float):
            raise InvalidArgument(
                f"filter: metrics.{key} compares with {', '.join(NUMERIC_OPS)} and a number",
                field="filter",
            )
    elif kind in ("params", "tags") or key not in ("start_time", "end_time"):
        if op not in STRING_OPS:
            raise InvalidArgument(
                f"filter: {kind}.{key} compares with {', '.join(STRING_OPS)}", field="filter"
            )
