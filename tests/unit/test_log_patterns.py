"""domain.log_patterns: CloudWatch Logs filter patterns (terms, JSON, space-delimited), each
form with a match and a miss, and invalid patterns refused with a reason."""

from __future__ import annotations

import pytest

from lamina.domain.log_patterns import PatternError
from lamina.domain.log_patterns import compile_pattern as c

LINE = "2024-01-01 ERROR payment failed for order 42\n"
DOC = (
    '{"level": "ERROR", "latency": 150, "user": {"email": "a@example.com"}, '
    '"tags": ["x", "y"], "gone": null, "ok": true}\n'
)
APACHE = '127.0.0.1 frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534\n'


def test_terms_phrases_exclusions_alternatives_and_regexes():
    assert c("")(LINE) and c("ERROR payment")(LINE) and not c("ERROR refund")(LINE)
    assert not c("error")(LINE)  # case-sensitive
    assert c('"payment failed"')(LINE) and not c('"failed payment"')(LINE)
    assert c("ERROR -refund")(LINE) and not c("ERROR -payment")(LINE)
    assert c("?WARN ?ERROR")(LINE) and not c("?WARN ?DEBUG")(LINE)
    assert c('?"order 42" ?nope')(LINE) and not c('-"order 42"')(LINE)
    assert c("%order [0-9]+%")(LINE) and not c("%order [a-z]+$%")(LINE)


def test_json_comparisons():
    assert c('{ $.level = "ERROR" }')(DOC) and not c('{ $.level = "INFO" }')(DOC)
    assert c("{ $.level = ERROR }")(DOC) and c('{ $.level != "INFO" }')(DOC)
    assert c("{ $.latency > 100 }")(DOC) and not c("{ $.latency > 200 }")(DOC)
    assert c("{ $.latency = 150 }")(DOC) and c("{ $.latency <= 1.5e2 }")(DOC)
    assert not c("{ $.latency > 100 }")('{"latency": "150"}')  # a string is not a number
    assert not c('{ $.level = "ERROR" }')(LINE)  # not JSON: no match
    assert not c('{ $.missing != "x" }')(DOC)  # a missing field matches no comparison


def test_json_logic_tests_wildcards_arrays_and_regexes():
    assert c('{ $.level = "ERROR" && $.latency >= 150 }')(DOC)
    assert not c('{ $.level = "INFO" && $.latency >= 150 }')(DOC)
    assert c('{ $.level = "INFO" || $.latency >= 150 }')(DOC)
    assert c('{ ($.level = "INFO" || $.level = "ERROR") && $.latency < 1000 }')(DOC)
    assert not c('{ $.level = "INFO" || $.level = "WARN" && $.latency > 0 }')(DOC)
    assert c("{ $.gone IS NULL }")(DOC) and not c("{ $.level IS NULL }")(DOC)
    assert c("{ $.missing NOT EXISTS }")(DOC) and not c("{ $.level NOT EXISTS }")(DOC)
    assert c("{ $.ok IS TRUE }")(DOC) and not c("{ $.ok IS FALSE }")(DOC)
    assert c('{ $.user.email = "*@example.com" }')(DOC)
    assert not c('{ $.user.email = "*@other.com" }')(DOC)
    assert c('{ $.tags[1] = "y" }')(DOC) and c('{ $.tags[*] = "x" }')(DOC)
    assert not c('{ $.tags[5] = "x" }')(DOC)
    assert c("{ $.level = %ERR.*% }")(DOC) and not c("{ $.level = %^WARN% }")(DOC)


def test_space_delimited_fields():
    assert c("[ip, user, timestamp, request, status_code, bytes]")(APACHE)
    assert c("[ip, user, timestamp, request, status_code = 404, bytes]")(APACHE)
    assert not c("[ip, user, timestamp, request, status_code = 200, bytes]")(APACHE)
    assert not c("[ip, user]")(APACHE)  # without ..., the counts must be equal
    assert c("[..., status = 404, bytes]")(APACHE) and c("[ip, ..., status = 4*, ...]")(APACHE)
    assert c("[..., bytes > 1000 && bytes < 2000]")(APACHE)
    assert not c("[..., bytes > 2000]")(APACHE)
    assert c('[ip = "127.0.0.1", ...]')(APACHE) and c("[ip, user = frank, ...]")(APACHE)
    assert c("[..., status = 500 || status = 404, bytes]")(APACHE)
    assert c('[ip, user, timestamp, request = "GET *", ...]')(APACHE)


@pytest.mark.parametrize(
    "pattern",
    [
        "{ $.level = }",
        '{ level = "x" }',
        '{ $.a = "x"',
        "[a,, b]",
        '{ $.a > "x" }',
        '"unbalanced',
        "a && b",
        "{ $.a IS MAYBE }",
        "%(%",
        "{}",
        "[a, b",
        "{ $.a = 1 ) }",
        "[a = 1 b = 2]",
    ],
)
def test_invalid_patterns_are_refused_with_a_reason(pattern):
    with pytest.raises(PatternError) as raised:
        c(pattern)
    assert str(raised.value)
