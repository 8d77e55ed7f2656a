"""CloudWatch Logs filter patterns (FilterLogEvents' `filterPattern`): parse once, match many.

Pure: no I/O. There is no well-kept Python library for this dialect, so this is a small
hand-written recursive-descent parser. The syntax is AWS's "Filter pattern syntax for metric
filters, subscription filters, filter log events"
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html):

* **Terms** (unstructured events), matched case-sensitively anywhere in the message:
  `ERROR` (every plain term must appear), `"quoted phrase"`, `-term` (must not appear),
  `?term` (at least one of the `?` terms must appear), `%regex%` (a regular expression).
  The empty pattern matches every event.
* **JSON** `{ ... }` (events whose message is a JSON object): selectors `$.a.b`, `$.list[0]`,
  `$.list[*]` or `$.*` (any element); `= != > < >= <=` against a string (quoted, or a bare
  word; `*` is a wildcard; `%regex%` a regular expression) or a number; `IS NULL`,
  `NOT EXISTS`, `IS TRUE`, `IS FALSE`; `&&`, `||` (`&&` binds tighter), parentheses. A
  comparison whose field is missing, or of another type, does not match.
* **Space-delimited** `[ ... ]`: the message is split on spaces (a `"quoted"` or `[bracketed]`
  field is one field); the pattern names each field, `...` stands for any number of them, and
  a field may carry conditions (`status = 404`, `status = 4*`, `bytes > 1000 && bytes < 2000`,
  `a = x || a = y`). Without `...` the counts must be equal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Matcher = Callable[[str], bool]

_MISSING = object()
_COMPARISONS = ("!=", ">=", "<=", "=", ">", "<")
_TOKEN = re.compile(
    r"""
    \s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<regex>%(?:[^%\\]|\\.)*%)
    | (?P<op>&&|\|\||!=|>=|<=|=|>|<|\(|\)|,)
    | (?P<word>[^\s"%&|!=<>(),]+)
    )""",
    re.VERBOSE,
)


class PatternError(ValueError):
    """The pattern is not valid CloudWatch filter syntax (the message says where)."""


def compile_pattern(pattern: str) -> Matcher:
    """A predicate on event messages for `pattern` (PatternError if it is invalid)."""
    text = pattern.strip()
    if text.startswith("{"):
        if not text.endswith("}"):
            raise PatternError("a JSON pattern must end with '}'")
        return _json_matcher(_Parser(_tokens(text[1:-1])))
    if text.startswith("["):
        if not text.endswith("]"):
            raise PatternError("a space-delimited pattern must end with ']'")
        return _delimited_matcher(_tokens(text[1:-1]))
    return _term_matcher(text)


# tokens ----------------------------------------------------------------------------------
def _tokens(text: str) -> list[tuple[str, str]]:
    found, position, text = [], 0, text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None and text[position:].lstrip().startswith(('"', "%")):
            raise PatternError(f"unbalanced quotes or % at {text[position : position + 20]!r}")
        if match is None or match.end() == position:
            raise PatternError(f"invalid character at {text[position : position + 10]!r}")
        kind = match.lastgroup or ""
        found.append((kind, match.group(kind)))
        position = match.end()
    return found


def _unquote(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token[1:-1])


def _regex(token: str) -> re.Pattern[str]:
    try:
        return re.compile(token[1:-1].replace("\\%", "%"))
    except re.error as exc:
        raise PatternError(f"invalid regular expression {token}: {exc}") from None


# terms -----------------------------------------------------------------------------------
def _term_matcher(text: str) -> Matcher:
    groups: dict[str, list[Matcher]] = {"": [], "?": [], "-": []}
    prefix = ""
    for kind, token in _tokens(text):
        if kind == "op":
            raise PatternError(f'unexpected {token!r} in a term pattern (quote it: "{token}")')
        if kind == "word" and token in ("?", "-"):
            prefix = token  # `?"a phrase"`: the prefix goes with the next term
            continue
        if kind == "word" and token[0] in "?-":
            prefix, token = token[0], token[1:]
        groups[prefix].append(_term(kind, token))
        prefix = ""
    required, optional, excluded = groups[""], groups["?"], groups["-"]
    return lambda message: (
        all(t(message) for t in required)
        and not any(t(message) for t in excluded)
        and (not optional or any(t(message) for t in optional))
    )


def _term(kind: str, token: str) -> Matcher:
    if kind == "regex":
        expression = _regex(token)
        return lambda message: expression.search(message) is not None
    text = _unquote(token) if kind == "string" else token
    return lambda message: text in message


# JSON ------------------------------------------------------------------------------------
class _Parser:
    """Recursive descent over a JSON pattern's tokens: or := and ('||' and)*;
    and := atom ('&&' atom)*; atom := '(' or ')' | selector test."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at][1] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.at >= len(self.tokens):
            raise PatternError("the pattern ends too early")
        self.at += 1
        return self.tokens[self.at - 1]

    def either(self) -> Callable[[Any], bool]:
        return self._chain("||", self.both, any)

    def both(self) -> Callable[[Any], bool]:
        return self._chain("&&", self.atom, all)

    def _chain(
        self,
        operator: str,
        part: Callable[[], Callable[[Any], bool]],
        combine: Callable[[Any], bool],
    ) -> Callable[[Any], bool]:
        parts = [part()]
        while self.peek() == operator:
            self.take()
            parts.append(part())
        return parts[0] if len(parts) == 1 else lambda doc: combine(p(doc) for p in parts)

    def atom(self) -> Callable[[Any], bool]:
        kind, token = self.take()
        if token == "(":
            inner = self.either()
            if self.take()[1] != ")":
                raise PatternError("missing ')'")
            return inner
        if kind != "word" or not token.startswith("$"):
            raise PatternError(f"expected a selector such as $.field, not {token!r}")
        select = _selector(token)
        test = self.test()
        return lambda doc: any(test(value) for value in select(doc))

    def test(self) -> Callable[[Any], bool]:
        kind, token = self.take()
        if kind == "word" and token in ("IS", "NOT"):
            return self.keyword(token)
        if token not in _COMPARISONS:
            raise PatternError(f"expected a comparison after the selector, not {token!r}")
        return _comparison(token, *self.take())

    def keyword(self, first: str) -> Callable[[Any], bool]:
        second = self.take()[1]
        tests: dict[tuple[str, str], Callable[[Any], bool]] = {
            ("IS", "NULL"): lambda v: v is None,
            ("IS", "TRUE"): lambda v: v is True,
            ("IS", "FALSE"): lambda v: v is False,
            ("NOT", "EXISTS"): lambda v: v is _MISSING,
        }
        if (first, second) not in tests:
            raise PatternError(f"unknown test {first} {second}")
        return tests[(first, second)]


def _json_matcher(parser: _Parser) -> Matcher:
    if not parser.tokens:
        raise PatternError("an empty JSON pattern")
    predicate = parser.either()
    if parser.peek() is not None:
        raise PatternError(f"unexpected {parser.peek()!r}")

    def matches(message: str) -> bool:
        try:
            document = json.loads(message)
        except ValueError:
            return False
        return isinstance(document, dict) and predicate(document)

    return matches


_STEP = re.compile(r"\.(?P<key>[^.\[]+)|\[(?P<index>\d+|\*)\]")


def _selector(token: str) -> Callable[[Any], list[Any]]:
    """`$.a.b[0]` → the values it selects in a document (`_MISSING` when there are none)."""
    steps, position = [], 1
    while position < len(token):
        match = _STEP.match(token, position)
        if match is None:
            raise PatternError(f"invalid selector {token!r}")
        steps.append(
            match.group("key")
            if match.group("key") is not None
            else (
                match.group("index") if match.group("index") == "*" else int(match.group("index"))
            )
        )
        position = match.end()
    if not steps:
        raise PatternError(f"invalid selector {token!r}")

    def select(document: Any) -> list[Any]:
        values = [document]
        for step in steps:
            values = [child for value in values for child in _children(value, step)]
        return values or [_MISSING]

    return select


def _children(value: Any, step: str | int) -> list[Any]:
    if step == "*":
        return (
            list(value.values())
            if isinstance(value, dict)
            else (list(value) if isinstance(value, list) else [])
        )
    if isinstance(step, int):
        return [value[step]] if isinstance(value, list) and step < len(value) else []
    return [value[step]] if isinstance(value, dict) and step in value else []


def _comparison(operator: str, kind: str, token: str) -> Callable[[Any], bool]:
    """A test of one value against a literal (string, number, wildcard or regex)."""
    number = _number(token) if kind == "word" else None
    if number is not None:
        return lambda v: (
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and _compare(operator, float(v), number)
        )
    if operator not in ("=", "!="):
        raise PatternError(f"{operator} compares numbers, not {token!r}")
    same = _text_test(kind, token)
    if operator == "=":
        return lambda v: isinstance(v, str) and same(v)
    return lambda v: isinstance(v, str) and not same(v)


def _text_test(kind: str, token: str) -> Callable[[str], bool]:
    if kind == "regex":
        expression = _regex(token)
        return lambda v: expression.search(v) is not None
    if kind not in ("string", "word"):
        raise PatternError(f"expected a value, not {token!r}")
    text = _unquote(token) if kind == "string" else token
    if "*" in text:
        expression = re.compile(".*".join(map(re.escape, text.split("*"))), re.DOTALL)
        return lambda v: expression.fullmatch(v) is not None
    return lambda v: v == text


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def _compare(operator: str, left: float, right: float) -> bool:
    return {
        "=": left == right,
        "!=": left != right,
        ">": left > right,
        "<": left < right,
        ">=": left >= right,
        "<=": left <= right,
    }[operator]


# space-delimited -------------------------------------------------------------------------
_FIELD = re.compile(r'"[^"]*"|\[[^\]]*\]|\S+')


def _delimited_matcher(tokens: list[tuple[str, str]]) -> Matcher:
    fields = _fields(tokens)

    def matches(message: str) -> bool:
        values = [v[1:-1] if v[:1] in '"[' and len(v) > 1 else v for v in _FIELD.findall(message)]
        return _fits(fields, 0, values, 0)

    return matches


_Field = Callable[[str], bool] | None  # None: `...`


def _fields(tokens: list[tuple[str, str]]) -> list[_Field]:
    """The pattern's fields, split at commas: a name (any value), `...`, or conditions."""
    fields: list[_Field] = []
    groups: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token == ("op", ","):
            groups.append([])
        else:
            groups[-1].append(token)
    for group in groups:
        if not group:
            raise PatternError("an empty field in a space-delimited pattern")
        if group == [("word", "...")]:
            fields.append(None)
        elif len(group) == 1:
            fields.append(lambda value: True)
        else:
            fields.append(_field_conditions(group))
    return fields


def _field_conditions(group: list[tuple[str, str]]) -> Callable[[str], bool]:
    """`name op value [&&|| name op value]…` (one field's conditions, left to right)."""
    if len(group) % 4 != 3:
        raise PatternError(f"invalid field condition {' '.join(t for _, t in group)!r}")
    result: Callable[[str], bool] | None = None
    for start in range(0, len(group), 4):
        _name, (_, operator), (kind, token) = group[start : start + 3]
        if operator not in _COMPARISONS:
            raise PatternError(f"expected a comparison, not {operator!r}")
        test = _delimited_test(operator, kind, token)
        joiner = group[start - 1][1] if start else None
        result = test if result is None else _join(joiner, result, test)
    assert result is not None
    return result


def _join(
    joiner: str | None, left: Callable[[str], bool], right: Callable[[str], bool]
) -> Callable[[str], bool]:
    if joiner == "&&":
        return lambda v: left(v) and right(v)
    if joiner == "||":
        return lambda v: left(v) or right(v)
    raise PatternError(f"expected && or || between conditions, not {joiner!r}")


def _delimited_test(operator: str, kind: str, token: str) -> Callable[[str], bool]:
    number = _number(token) if kind == "word" else None
    if number is not None:

        def numeric(value: str) -> bool:
            parsed = _number(value)
            return parsed is not None and _compare(operator, parsed, number)

        return numeric
    test = _comparison(operator, kind, token)
    return lambda value: test(value)


def _fits(fields: list[_Field], i: int, values: list[str], j: int) -> bool:
    """Whether `values[j:]` fit `fields[i:]` (`...` takes any number of values)."""
    if i == len(fields):
        return j == len(values)
    field = fields[i]
    if field is None:
        return any(_fits(fields, i + 1, values, k) for k in range(j, len(values) + 1))
    return j < len(values) and field(values[j]) and _fits(fields, i + 1, values, j + 1)
