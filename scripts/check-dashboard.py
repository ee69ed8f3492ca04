#!/usr/bin/env python3
"""The metric names a Grafana dashboard's PromQL uses, and a check of them against a list.

    scripts/check-dashboard.py [DASHBOARD]                  # the names, one a line, sorted unique
    scripts/check-dashboard.py [DASHBOARD] --allowed FILE   # exit 1 naming every panel and
                                                            # expression that uses a name not in FILE
    scripts/check-dashboard.py --self-test

DASHBOARD defaults to deploy/grafana/firedrill-dashboard.json. FILE holds one metric name a line
(blank lines and lines starting with # are ignored). The expressions are every panel target's
`expr` (rows' nested panels included), every templating query (Grafana's label_values(),
query_result()) and every annotation's `expr`.

Standard library only: the test suite feeds it names read from a real Pushgateway and /metrics.
"""

import argparse
import json
import re
import sys
from pathlib import Path

DEFAULT_DASHBOARD = Path(__file__).resolve().parent.parent / "deploy/grafana/firedrill-dashboard.json"

# Words that are never metric names where they stand: binary-operator keywords, modifiers, the
# aggregation operators (which may be followed by `by`/`without` instead of a parenthesis), and
# number literals spelled as words. Functions are recognised by the parenthesis after them.
KEYWORDS = {
    "and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
    "group_left", "group_right", "atan2", "inf", "nan",
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}
# Keywords followed by a parenthesised list of label names.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
# Numbers and durations: 5, 0.95, .5, 1e3, 0x1F, 5m, 1h30m, 1.5e-3.
NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)([a-zA-Z0-9_]*)")
# Grafana variables: $var, ${var}, ${var:fmt}, [[var]].
VARIABLE = re.compile(r"\$\{[^}]*\}|\$[A-Za-z0-9_]+|\[\[[^\]]*\]\]")
MATCH_OPS = ("=~", "!~", "!=", "=")


class ParseError(ValueError):
    pass


def _string_end(s, i):
    """The index after the string literal starting at s[i] (", ' or `)."""
    quote = s[i]
    j = i + 1
    while j < len(s):
        if s[j] == "\\" and quote != "`":
            j += 2
            continue
        if s[j] == quote:
            return j + 1
        j += 1
    raise ParseError(f"unterminated string at {i}")


def _unquote(literal):
    body = literal[1:-1]
    if literal[0] == "`":
        return body
    return re.sub(r"\\(.)", r"\1", body)


def _skip_space(s, i):
    while i < len(s):
        if s[i].isspace():
            i += 1
        elif s[i] == "#":  # comment to the end of the line
            while i < len(s) and s[i] != "\n":
                i += 1
        else:
            break
    return i


def _closing(s, i, open_ch, close_ch):
    """The index after the bracket matching the one at s[i], skipping strings inside."""
    depth = 0
    j = i
    while j < len(s):
        c = s[j]
        if c in "\"'`":
            j = _string_end(s, j)
            continue
        if c == open_ch:
            depth += 1
        elif c == close_ch:
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    raise ParseError(f"unbalanced {open_ch!r} at {i}")


def _matcher_names(body):
    """Metric names given inside a selector's braces: __name__="x", or a bare quoted name
    (Prometheus 3: {"my.metric", job="x"}). Label names and values are not metric names."""
    names = []
    i = 0
    while i < len(body):
        i = _skip_space(body, i)
        if i >= len(body):
            break
        c = body[i]
        if c == ",":
            i += 1
            continue
        # The label: an identifier or a quoted name.
        if c in "\"'`":
            end = _string_end(body, i)
            label = _unquote(body[i:end])
            quoted = True
        else:
            m = IDENT.match(body, i)
            if not m:
                raise ParseError(f"unexpected {c!r} in braces")
            end, label, quoted = m.end(), m.group(), False
        i = _skip_space(body, end)
        op = next((o for o in MATCH_OPS if body.startswith(o, i)), None)
        if op is None:
            if not quoted:
                raise ParseError(f"label {label!r} without a matcher")
            names.append(label)  # a bare quoted metric name
            continue
        i = _skip_space(body, i + len(op))
        if i >= len(body) or body[i] not in "\"'`":
            # A Grafana variable unquoted in a matcher, or an error: skip to the next comma.
            m = VARIABLE.match(body, i)
            if not m:
                raise ParseError(f"matcher {label}{op} without a string")
            i = m.end()
            continue
        end = _string_end(body, i)
        if label == "__name__" and op == "=":
            names.append(_unquote(body[i:end]))
        elif label == "__name__":
            # A regular expression over names cannot be checked: report it as written so a
            # check against a list fails and someone looks.
            names.append(f"__name__{op}{body[i:end]}")
        i = end
    return names


def metric_names(expr):
    """The metric names a PromQL expression (with Grafana variables) uses, in order of use."""
    s = expr
    names = []
    depth = 0  # open parentheses
    i = 0
    while True:
        i = _skip_space(s, i)
        if i >= len(s):
            if depth:
                raise ParseError("unbalanced '('")
            return names
        c = s[i]
        if c in "\"'`":
            i = _string_end(s, i)
        elif s.startswith("[[", i) or c == "$":
            m = VARIABLE.match(s, i)
            if not m:
                raise ParseError(f"bad variable at {i}")
            i = m.end()
        elif c == "[":  # a range or subquery: durations and variables only
            i = _closing(s, i, "[", "]")
        elif c == "{":  # a selector without a name outside, or the matchers after one
            end = _closing(s, i, "{", "}")
            names.extend(_matcher_names(s[i + 1:end - 1]))
            i = end
        elif c.isdigit() or (c == "." and i + 1 < len(s) and s[i + 1].isdigit()):
            m = NUMBER.match(s, i)
            i = m.end()
        elif IDENT.match(s, i):
            m = IDENT.match(s, i)
            word = m.group()
            j = _skip_space(s, m.end())
            follows_paren = j < len(s) and s[j] == "("
            lower = word.lower()
            if lower in LABEL_LIST_KEYWORDS:
                i = _closing(s, j, "(", ")") if follows_paren else j
            elif lower in KEYWORDS or follows_paren:
                i = m.end()  # a keyword, or a function (its arguments are read next)
            else:
                names.append(word)
                i = m.end()
        elif c in ")]}":
            depth -= 1
            if depth < 0 or c != ")":
                raise ParseError(f"unbalanced {c!r} at {i}")
            i += 1
        else:  # operators, commas, @
            depth += c == "("
            i += 1


def _split_args(s):
    """The top-level comma-separated arguments of s."""
    args, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in "\"'`":
            i = _string_end(s, i)
            continue
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(s[start:i])
            start = i + 1
        i += 1
    args.append(s[start:])
    return [a.strip() for a in args if a.strip()]


def template_metric_names(query):
    """The metric names a Grafana Prometheus variable query uses: label_values(selector, label)
    (label_values(label) and label_names() use none), query_result(expr), metrics(regex) (a
    regex over names: reported as written); anything else is read as PromQL."""
    q = query.strip()
    m = re.fullmatch(r"(label_values|label_names|query_result|metrics)\s*\((.*)\)", q, re.S)
    if not m:
        return metric_names(q)
    fn, inner = m.group(1), m.group(2)
    if fn == "query_result":
        return metric_names(inner)
    if fn == "metrics":
        return [f"metrics({inner.strip()})"] if inner.strip() else []
    args = _split_args(inner)
    if fn == "label_names":
        return metric_names(args[0]) if args else []
    # label_values: with one argument it is a label name.
    return metric_names(args[0]) if len(args) >= 2 else []


def _walk_panels(panels, path=()):
    for p in panels or []:
        title = p.get("title") or f"id {p.get('id')}"
        where = path + (f"{title!r} (id {p.get('id')})",)
        yield " > ".join(where), p
        yield from _walk_panels(p.get("panels"), where)


def expressions(dashboard):
    """(where, expr, is_template) for every PromQL expression in the dashboard."""
    out = []
    panels = list(dashboard.get("panels") or [])
    for r in dashboard.get("rows") or []:  # the pre-5.0 layout
        panels.extend(r.get("panels") or [])
    for where, p in _walk_panels(panels):
        for t in p.get("targets") or []:
            if isinstance(t, dict) and isinstance(t.get("expr"), str) and t["expr"].strip():
                out.append((f"panel {where} target {t.get('refId', '?')}", t["expr"], False))
    for v in (dashboard.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query")
        if not isinstance(q, str) or not q.strip():
            q = v.get("definition")
        if isinstance(q, str) and q.strip():
            out.append((f"variable ${v.get('name')}", q, True))
    for a in (dashboard.get("annotations") or {}).get("list") or []:
        if isinstance(a.get("expr"), str) and a["expr"].strip():
            out.append((f"annotation {a.get('name')!r}", a["expr"], False))
    return out


def names_of(dashboard):
    """{where: (expr, [names])}, failing loudly on an expression it cannot read."""
    result = []
    for where, expr, is_template in expressions(dashboard):
        try:
            names = template_metric_names(expr) if is_template else metric_names(expr)
        except ParseError as e:
            raise SystemExit(f"{where}: cannot read {expr!r}: {e}")
        result.append((where, expr, names))
    return result


SELF_TESTS = [
    ('sum by (cluster) (rate(firedrill_scheduler_fires_total{status="missed"}[5m]))',
     ["firedrill_scheduler_fires_total"]),
    ("time() - max by (drill) (firedrill_run_last_timestamp_seconds)",
     ["firedrill_run_last_timestamp_seconds"]),
    ("sum(rate(a_total[5m])) by (cluster) / on (cluster) group_left(region) b_info",
     ["a_total", "b_info"]),
    ("a * on (cluster, drill) group_right c", ["a", "c"]),
    ('changes(x{cluster=~"$cluster", drill=~"${drill:regex}"}[$__interval]) > bool 0', ["x"]),
    ('rate(y_total{a="b"}[$__rate_interval]) * 3600 offset 1h', ["y_total"]),
    ("max_over_time(z[1d:5m] @ end()) unless without (instance) w offset -5m", ["z", "w"]),
    ('label_replace(m1, "dst", "$1", "src", "(.*)") or label_join(m2, "d", ",", "a", "b")', ["m1", "m2"]),
    ('count_values("status", s) or topk(5, t) or quantile(0.95, q) or vector(0)', ["s", "t", "q"]),
    ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))", ["h_bucket"]),
    ('{__name__="by_name", job="x"} + {"dotted.name"} + {__name__=~"re.*"}',
     ["by_name", "dotted.name", '__name__=~"re.*"']),
    ('m3{label="has } brace, and ] bracket", other=\'q\'} # sum(comment_metric)\n + Inf - NaN + 1e3 + 0x1F + .5',
     ["m3"]),
    ("SUM BY (cluster) (M4) AND ON() m5", ["M4", "m5"]),
    ("recorded:rule:rate5m > 1", ["recorded:rule:rate5m"]),
    ("absent(firedrill_scheduler_leader) or 2 ^ -k", ["firedrill_scheduler_leader", "k"]),
    ("a[[interval]] + $var + ${var} + [[var]]", ["a"]),
]
SELF_TEMPLATE_TESTS = [
    ("label_values(firedrill_run_last_timestamp_seconds, cluster)", ["firedrill_run_last_timestamp_seconds"]),
    ('label_values(firedrill_run_last_timestamp_seconds{cluster=~"$cluster"}, drill)',
     ["firedrill_run_last_timestamp_seconds"]),
    ("label_values(cluster)", []),
    ("label_names()", []),
    ("query_result(topk(5, sum by (drill) (chaos_experiment_status)))", ["chaos_experiment_status"]),
    ("metrics(firedrill_.*)", ["metrics(firedrill_.*)"]),
]


def self_test():
    failures = 0
    for expr, want in SELF_TESTS:
        got = metric_names(expr)
        if got != want:
            failures += 1
            print(f"FAIL {expr!r}: got {got}, want {want}")
    for query, want in SELF_TEMPLATE_TESTS:
        got = template_metric_names(query)
        if got != want:
            failures += 1
            print(f"FAIL template {query!r}: got {got}, want {want}")
    for bad in ['m{a="b"', "sum(m", 'm{a="b}', "sum(m))", "m[5m"]:
        try:
            metric_names(bad)
            failures += 1
            print(f"FAIL {bad!r}: read without an error")
        except ParseError:
            pass
    # Nested rows, templating and annotations are all walked; --allowed names what is missing.
    dash = {
        "panels": [
            {"id": 1, "type": "row", "title": "R", "collapsed": True, "panels": [
                {"id": 2, "title": "inner", "targets": [{"refId": "A", "expr": "sum(inner_metric)"}]}]},
            {"id": 3, "title": "outer", "targets": [{"refId": "B", "expr": "outer_metric"}, {"refId": "C"}]},
        ],
        "templating": {"list": [
            {"name": "c", "type": "query", "query": {"query": "label_values(var_metric, c)"}},
            {"name": "d", "type": "query", "definition": "label_values(def_metric, d)", "query": ""},
            {"name": "ds", "type": "datasource", "query": "prometheus"},
        ]},
        "annotations": {"list": [{"name": "runs", "expr": "changes(annot_metric[5m]) > 0"}]},
    }
    got = sorted({n for _, _, ns in names_of(dash) for n in ns})
    want = ["annot_metric", "def_metric", "inner_metric", "outer_metric", "var_metric"]
    if got != want:
        failures += 1
        print(f"FAIL dashboard walk: got {got}, want {want}")
    bad = unknown(dash, {"outer_metric", "var_metric", "def_metric", "annot_metric"})
    if len(bad) != 1 or "'inner' (id 2)" not in bad[0] or "inner_metric" not in bad[0]:
        failures += 1
        print(f"FAIL --allowed: {bad}")
    total = len(SELF_TESTS) + len(SELF_TEMPLATE_TESTS) + 7
    print(f"self-test: {total - failures} passed, {failures} failed")
    return 1 if failures else 0


def unknown(dashboard, allowed):
    """One line per expression that uses a name not in allowed."""
    out = []
    for where, expr, names in names_of(dashboard):
        missing = sorted({n for n in names if n not in allowed})
        if missing:
            out.append(f"{where}: {', '.join(missing)} not allowed in: {' '.join(expr.split())}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dashboard", nargs="?", type=Path, default=DEFAULT_DASHBOARD)
    parser.add_argument("--allowed", type=Path, help="one allowed metric name a line")
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    dashboard = json.loads(args.dashboard.read_text())
    if "dashboard" in dashboard and "panels" not in dashboard:  # the API's envelope
        dashboard = dashboard["dashboard"]
    if args.allowed:
        allowed = {
            line.strip()
            for line in args.allowed.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")
        }
        bad = unknown(dashboard, allowed)
        for line in bad:
            print(line)
        return 1 if bad else 0
    for name in sorted({n for _, _, ns in names_of(dashboard) for n in ns}):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
