"""The model search filter, in the run filter's spirit::

    labels.team = 'sales' and metrics.rmse < 0.2
    name LIKE 'lead-%' and status != 'retired' and flavor IN ('xgboost', 'sklearn')

Clauses are joined by ``and``; ``labels.KEY`` and ``metrics.KEY`` address a version's labels
and metrics, and ``name``, ``status``, ``flavor``, ``semver``, ``version`` and ``alias``
its attributes. A clause on a missing label or metric is false.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidArgument, TooLarge

ATTRIBUTES = ("name", "status", "flavor", "semver", "version", "alias")
MAX_FILTER = 2000
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<ident>(?:labels?|metrics?|tags?)\.(?:`[^`]+`|[\w.\-/:]+)|[A-Za-z_]+)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<lparen>\() | (?P<rparen>\)) | (?P<comma>,)
    )""",
    re.VERBOSE,
)
_WORD_OPS = {"LIKE", "IN", "NOT"}


@dataclass(frozen=True)
class Clause:
    kind: str  # "labels" | "metrics" | "attribute"
    key: str
    op: str
    value: float | str | tuple[str, ...]

    def matches(self, doc: Mapping[str, Any]) -> bool:
        if self.kind == "attribute":
            found = doc.get(self.key)
        else:
            found = doc.get(self.kind, {}).get(self.key)
        if self.key == "alias" and self.kind == "attribute":
            return any(self._test(a) for a in found or ())
        return found is not None and self._test(found)

    def _test(self, found: Any) -> bool:
        if isinstance(self.value, float):
            try:
                number = float(found)
            except (TypeError, ValueError):
                return False
            return _NUMERIC[self.op](number, self.value)
        text = str(found)
        if self.op == "LIKE":
            pattern = str(self.value).replace("%", "*").replace("_", "?")
            return fnmatch.fnmatchcase(text, pattern)
        if self.op in ("IN", "NOT IN"):
            return (text in self.value) == (self.op == "IN")
        return _NUMERIC[self.op](text, str(self.value))


_NUMERIC: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def parse_filter(text: str | None) -> list[Clause]:
    if not text or not text.strip():
        return []
    if len(text) > MAX_FILTER:
        raise TooLarge(f"filter is longer than {MAX_FILTER} characters", field="filter")
    tokens = _tokenize(text)
    clauses: list[Clause] = []
    i = 0
    while i < len(tokens):
        if clauses:
            if tokens[i][0] != "ident" or tokens[i][1].lower() != "and":
                raise _error(f"expected AND, found {tokens[i][1]!r}")
            i += 1
        clause, i = _clause(tokens, i)
        clauses.append(clause)
    return clauses


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while text[pos:].strip():
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise _error(f"cannot read {text[pos : pos + 20].strip()!r} at position {pos}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


def _clause(tokens: list[tuple[str, str]], i: int) -> tuple[Clause, int]:
    if i >= len(tokens) or tokens[i][0] != "ident":
        raise _error("expected labels.KEY, metrics.KEY or one of " + ", ".join(ATTRIBUTES))
    kind, key = _split(tokens[i][1])
    i += 1
    op, i = _operator(tokens, i)
    if op in ("IN", "NOT IN"):
        values, i = _list(tokens, i)
        return Clause(kind, key, op, values), i
    if i >= len(tokens) or tokens[i][0] not in ("number", "string"):
        raise _error(f"expected a value after {op}")
    tok_kind, raw = tokens[i]
    if tok_kind == "number":
        if op == "LIKE":
            raise _error("LIKE takes a quoted pattern")
        return Clause(kind, key, op, float(raw)), i + 1
    if kind == "metrics":
        raise _error(f"metrics.{key} compares with a number, not a string")
    if op not in ("=", "!=", "LIKE"):
        raise _error(f"strings compare with =, != or LIKE, not {op}")
    return Clause(kind, key, op, _unquote(raw)), i + 1


def _operator(tokens: list[tuple[str, str]], i: int) -> tuple[str, int]:
    if i < len(tokens) and tokens[i][0] == "op":
        return ("!=" if tokens[i][1] == "<>" else tokens[i][1]), i + 1
    if i < len(tokens) and tokens[i][0] == "ident" and tokens[i][1].upper() in _WORD_OPS:
        word = tokens[i][1].upper()
        if word == "NOT":
            if i + 1 < len(tokens) and tokens[i + 1][1].upper() == "IN":
                return "NOT IN", i + 2
            raise _error("NOT must be followed by IN")
        return word, i + 1
    raise _error("expected an operator: =, !=, <, <=, >, >=, LIKE, IN or NOT IN")


def _list(tokens: list[tuple[str, str]], i: int) -> tuple[tuple[str, ...], int]:
    if i >= len(tokens) or tokens[i][0] != "lparen":
        raise _error("IN takes a parenthesised list of quoted values")
    values: list[str] = []
    i += 1
    while i < len(tokens) and tokens[i][0] in ("string", "number"):
        kind, raw = tokens[i]
        values.append(_unquote(raw) if kind == "string" else raw)
        i += 1
        if i < len(tokens) and tokens[i][0] == "comma":
            i += 1
    if i >= len(tokens) or tokens[i][0] != "rparen" or not values:
        raise _error("IN list must be closed with ')' and hold at least one value")
    return tuple(values), i + 1


def _split(ident: str) -> tuple[str, str]:
    if "." not in ident:
        if ident.lower() not in ATTRIBUTES:
            raise _error(f"unknown attribute {ident!r}: use one of {', '.join(ATTRIBUTES)}")
        return "attribute", ident.lower()
    prefix, key = ident.split(".", 1)
    kind = "metrics" if prefix.startswith("metric") else "labels"
    return kind, key[1:-1] if key.startswith("`") else key


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _error(message: str) -> InvalidArgument:
    return InvalidArgument(f"filter: {message}", field="filter")
