#!/usr/bin/env python3
"""Checks docs/openapi.yaml against the code and against real answers (tests/server/openapi.sh).

  openapi_check.py routes YAML API_C
      the (method, path) pairs of routes[] in src/server/api.c, plus the console's paths, must
      be exactly the operations of YAML: every route served is described, every path described
      is served.
  openapi_check.py responses YAML RECDIR EXPECT_FILE
      RECDIR holds the recorded exchanges of the test (N.req: "METHOD TARGET"; N.reqbody: the
      JSON body sent, if any; N.headers: the response head; N.body: the response body). Each must fall on an operation of YAML, its
      status must be documented there, the headers it marks required must be present and every
      header it describes must match its schema, the media type must be one it lists, and a
      JSON body must validate (JSON Schema 2020-12) against the schema it gives for that status.
      A request answered 2xx must also have used only described parameters, valid ones, and
      sent a body that fits the described request body.
      EXPECT_FILE lists, one a line, "METHOD PATH STATUS  # why" pairs that the test does not
      exercise; every operation's documented 2xx and 400/401/403/404/409/412/415/422/429 must be
      exercised or listed, and nothing listed may be exercised (the list is exactly what is
      skipped).

Validation uses the python jsonschema package (Draft202012Validator), with the YAML document as
the root that resolves "#/components/..." references. Exits 1 with every problem listed.
"""

import copy
import json
import os
import re
import sys
import urllib.parse

import yaml

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
# The statuses every operation must show in the test where the description documents them.
CHECKED_STATUSES = {"400", "401", "403", "404", "409", "412", "415", "422", "429"}
# The console's paths, served by src/server/ui.c before the route table is consulted.
CONSOLE_ROUTES = [("GET", "/ui"), ("GET", "/ui/"), ("GET", "/ui/{file}")]


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def pointer(doc, ref):
    if not ref.startswith("#/"):
        raise ValueError("only local references are supported: %s" % ref)
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[part]
    return node


def deref(doc, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        node = pointer(doc, node["$ref"])
        seen += 1
        if seen > 20:
            raise ValueError("reference loop")
    return node


def escape(part):
    return part.replace("~", "~0").replace("/", "~1")


# ---- routes ---------------------------------------------------------------------------------


def served_routes(api_c):
    with open(api_c, encoding="utf-8") as f:
        src = f.read()
    m = re.search(r"routes\[\]\s*=\s*\{(.*?)\n\};", src, re.S)
    if m is None:
        raise SystemExit("FAIL: no routes[] table in %s" % api_c)
    pairs = re.findall(r'\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"', m.group(1))
    if len(pairs) < 10:
        raise SystemExit("FAIL: routes[] of %s: only %d routes parsed" % (api_c, len(pairs)))
    return pairs + CONSOLE_ROUTES


def described_routes(doc):
    out = []
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                out.append((method.upper(), path))
    return out


def cmd_routes(yaml_path, api_c):
    doc = load(yaml_path)
    served = served_routes(api_c)
    described = described_routes(doc)
    problems = []
    for dup in sorted({r for r in served if served.count(r) > 1}):
        problems.append("route served twice: %s %s" % dup)
    for r in sorted(set(served) - set(described)):
        problems.append("served but not in %s: %s %s" % (os.path.basename(yaml_path), *r))
    for r in sorted(set(described) - set(served)):
        problems.append("in %s but not served: %s %s" % (os.path.basename(yaml_path), *r))
    for p in problems:
        print("FAIL: " + p)
    if problems:
        return 1
    print("routes: the %d routes served (%d of routes[], %d of the console) are exactly the "
          "operations described" % (len(served), len(served) - len(CONSOLE_ROUTES),
                                    len(CONSOLE_ROUTES)))
    return 0


# ---- responses ------------------------------------------------------------------------------


def make_validator_factory(doc):
    import jsonschema

    cls = jsonschema.Draft202012Validator
    fmt = getattr(cls, "FORMAT_CHECKER", None)

    def validator(ptr):
        # The whole document is the root schema, so that "#/components/schemas/..." resolves;
        # its other members (openapi, paths, ...) are unknown keywords, which JSON Schema
        # ignores. The root's $ref picks the schema to apply.
        root = dict(doc)
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        root["$ref"] = ptr
        return cls(root, format_checker=fmt)

    return validator


def parse_headers(text):
    """The last response head of a curl -D dump (after any 100 Continue): status, headers."""
    blocks = [b for b in re.split(r"\r?\n\r?\n", text) if b.strip()]
    if not blocks:
        return None, {}
    lines = blocks[-1].splitlines()
    m = re.match(r"HTTP/\S+\s+(\d{3})", lines[0])
    status = m.group(1) if m else None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers


def match_path(doc, path):
    """The template of doc's paths that PATH falls on (literal segments beat parameters) and
    the parameter values, percent-decoded."""
    segs = path.split("/")
    best = None
    for tmpl in doc.get("paths", {}):
        tsegs = tmpl.split("/")
        if len(tsegs) != len(segs):
            continue
        params, literal, ok = {}, 0, True
        for t, s in zip(tsegs, segs):
            if t.startswith("{") and t.endswith("}"):
                if s == "":
                    ok = False
                    break
                params[t[1:-1]] = urllib.parse.unquote(s)
            elif t == s:
                literal += 1
            else:
                ok = False
                break
        if ok and (best is None or literal > best[0]):
            best = (literal, tmpl, params)
    return (best[1], best[2]) if best else (None, None)


def operation_parameters(doc, tmpl, method):
    item = doc["paths"][tmpl]
    params = {}
    for p in item.get("parameters", []) + item[method].get("parameters", []):
        p = deref(doc, p)
        params[(p["in"], p["name"].lower() if p["in"] == "header" else p["name"])] = p
    return params


def coerce(value, schema):
    """A query or path string as the JSON value its schema asks for."""
    t = schema.get("type")
    if t == "integer" and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    return value


def cmd_responses(yaml_path, recdir, expect_file):
    doc = load(yaml_path)
    validator = make_validator_factory(doc)
    problems = []
    checked = {}  # schema pointer -> [(where, JSON body, python's verdict)]
    seen = {}  # (METHOD, template) -> set of statuses
    nrec = 0
    names = sorted((f[:-4] for f in os.listdir(recdir) if f.endswith(".req")), key=int)
    for n in names:
        with open(os.path.join(recdir, n + ".req"), encoding="utf-8") as f:
            method, target = f.read().split()[:2]
        with open(os.path.join(recdir, n + ".headers"), encoding="utf-8", errors="replace") as f:
            status, headers = parse_headers(f.read())
        with open(os.path.join(recdir, n + ".body"), "rb") as f:
            body = f.read()
        nrec += 1
        where = "#%s %s %s -> %s" % (n, method, target, status)
        if status is None:
            problems.append("%s: no HTTP answer recorded" % where)
            continue
        url = urllib.parse.urlsplit(target)
        tmpl, pvals = match_path(doc, url.path)
        if tmpl is None:
            problems.append("%s: the path is on no path of the description" % where)
            continue
        m = method.lower()
        op = doc["paths"][tmpl].get(m)
        if op is None:
            problems.append("%s: %s has no %s operation" % (where, tmpl, method))
            continue
        seen.setdefault((method, tmpl), set()).add(status)
        where = "#%s %s %s (%s %s) -> %s" % (n, method, target, method, tmpl, status)
        responses = op.get("responses", {})
        if status not in responses:
            problems.append("%s: status %s is not documented (documented: %s); body: %s"
                            % (where, status, ", ".join(sorted(responses)), body[:300]))
            continue
        rptr = "#/paths/%s/%s/responses/%s" % (escape(tmpl), m, status)
        resp = responses[status]
        if "$ref" in resp:
            rptr = resp["$ref"]
            resp = deref(doc, resp)
        params = operation_parameters(doc, tmpl, m)
        # A request that succeeded must have used only documented parameters, and valid ones.
        if status.startswith("2"):
            for name, value in pvals.items():
                p = params.get(("path", name))
                if p is None:
                    problems.append("%s: path parameter %s is not described" % (where, name))
                    continue
                errs = list(validator_for_inline(validator, doc, p["schema"], value))
                for e in errs:
                    problems.append("%s: path parameter %s=%r: %s" % (where, name, value, e))
            for name, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
                p = params.get(("query", name))
                if p is None:
                    problems.append("%s: query parameter %s is not described" % (where, name))
                    continue
                schema = deref(doc, p["schema"])
                for e in validator_for_inline(validator, doc, p["schema"], coerce(value, schema)):
                    problems.append("%s: query parameter %s=%r: %s" % (where, name, value, e))
            # The JSON body it sent must fit the request body the description gives.
            reqbody = os.path.join(recdir, n + ".reqbody")
            rb = op.get("requestBody")
            if os.path.exists(reqbody):
                if rb is None:
                    problems.append("%s: sent a body, but the operation takes none" % where)
                else:
                    rb = deref(doc, rb)
                    sptr = "#/paths/%s/%s/requestBody/content/application~1json/schema" % (
                        escape(tmpl), m)
                    if "application/json" not in rb.get("content", {}):
                        problems.append("%s: sent JSON, not a documented request type" % where)
                    else:
                        with open(reqbody, encoding="utf-8") as f:
                            sent = json.load(f)
                        for e in validator(sptr).iter_errors(sent):
                            problems.append("%s: request body at /%s: %s"
                                            % (where, "/".join(str(p) for p in e.absolute_path),
                                               e.message[:300]))
            elif op.get("requestBody", {}).get("required"):
                problems.append("%s: succeeded without the body the description requires"
                                % where)
        # Headers.
        for hname, h in resp.get("headers", {}).items():
            h = deref(doc, h)
            values = headers.get(hname.lower())
            if values is None:
                if h.get("required"):
                    problems.append("%s: required header %s is missing" % (where, hname))
                continue
            for v in values:
                for e in validator_for_inline(validator, doc, h.get("schema", {}), v):
                    problems.append("%s: header %s: %r: %s" % (where, hname, v, e))
        if "x-request-id" not in headers:
            problems.append("%s: no X-Request-Id" % where)
        # Body.
        content = resp.get("content")
        if not content:
            if body:
                problems.append("%s: documented without a body, got %r" % (where, body[:200]))
            continue
        ctype = (headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
        if ctype not in content:
            problems.append("%s: media type %r is not documented (documented: %s)"
                            % (where, ctype, ", ".join(content)))
            continue
        if ctype != "application/json":
            continue
        try:
            value = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            problems.append("%s: body is not JSON (%s): %r" % (where, e, body[:200]))
            continue
        sptr = "%s/content/application~1json/schema" % rptr
        python_valid = True
        for e in validator(sptr).iter_errors(value):
            python_valid = False
            path = "/".join(str(p) for p in e.absolute_path)
            problems.append("%s: body at /%s: %s (schema %s); body: %s"
                            % (where, path, e.message[:300],
                               "/".join(str(p) for p in e.absolute_schema_path)[-160:],
                               body[:400].decode("utf-8", "replace")))
        checked.setdefault(sptr, []).append((where, value, python_valid))

    problems.extend(conclave_check(doc, checked))

    # Coverage: every operation exercised; its success and its main errors too, or listed.
    expected_missing = {}
    with open(expect_file, encoding="utf-8") as f:
        for line in f:
            why = line.split("#", 1)[1].strip() if "#" in line else ""
            line = line.split("#", 1)[0].strip()
            if line:
                method, path, status = line.split()
                expected_missing[(method, path, status)] = why
    missing = set()
    for method, path in described_routes(doc):
        op = doc["paths"][path][method.lower()]
        got = seen.get((method, path), set())
        if not got:
            problems.append("operation %s %s was never exercised" % (method, path))
        for status in op.get("responses", {}):
            wanted = status.startswith("2") or status in CHECKED_STATUSES
            if wanted and status not in got:
                missing.add((method, path, status))
    for m in sorted(missing - set(expected_missing)):
        problems.append("documented but never exercised (exercise it or list it as skipped "
                        "with the reason): %s %s %s" % m)
    for m in sorted(set(expected_missing) - missing):
        problems.append("listed as skipped but exercised (or not documented): %s %s %s" % m)

    for p in problems:
        print("FAIL: " + p)
    if problems:
        print("%d problem(s) in %d recorded answers" % (len(problems), nrec))
        return 1
    nops = len(seen)
    print("responses: %d real answers on %d operations (%d status/operation pairs) match the "
          "description; skipped: %s" % (nrec, nops, sum(len(s) for s in seen.values()),
                                        "; ".join("%s %s %s (%s)" % (*k, v)
                                                  for k, v in sorted(expected_missing.items()))
                                        or "none"))
    return 0


def validator_for_inline(validator, doc, schema, value):
    """Errors of VALUE against SCHEMA, a schema object of DOC (parameters, headers)."""
    if "$ref" in schema and len(schema) == 1:
        return (e.message for e in validator(schema["$ref"]).iter_errors(value))
    import jsonschema

    root = dict(doc)
    root.update(copy.deepcopy(schema))
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    cls = jsonschema.Draft202012Validator
    return (e.message for e in cls(root).iter_errors(value))


def conclave_check(doc, checked):
    """Validates every recorded body again with conclave's own validator (`conclave schema
    check --at POINTER`, the binary in $CONCLAVE_BIN), and reports each body it judges
    differently from python's jsonschema: the description must mean the same to both."""
    import subprocess
    import tempfile

    binary = os.environ.get("CONCLAVE_BIN")
    if not binary:
        return ["CONCLAVE_BIN is not set: cannot validate with conclave's own validator"]
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = os.path.join(tmp, "openapi.json")
        with open(spec, "w", encoding="utf-8") as f:
            json.dump(doc, f)
        for k, (sptr, items) in enumerate(sorted(checked.items())):
            files = []
            for i, (_, value, _) in enumerate(items):
                files.append(os.path.join(tmp, "b%d_%d.json" % (k, i)))
                with open(files[-1], "w", encoding="utf-8") as f:
                    json.dump(value, f)
            pointer = sptr[1:] if sptr.startswith("#") else sptr
            r = subprocess.run([binary, "schema", "check", spec, *files, "--at", pointer,
                                "-o", "json"], capture_output=True, text=True, timeout=60)
            if r.returncode not in (0, 7):
                problems.append("conclave schema check --at %s: exit %d: %s"
                                % (pointer, r.returncode, r.stderr[:500]))
                continue
            verdicts = json.loads(r.stdout)
            for (where, _, python_valid), v in zip(items, verdicts):
                if v["valid"] != python_valid:
                    problems.append("%s: conclave's validator says %s, python's jsonschema %s "
                                    "(schema %s): %s"
                                    % (where, "valid" if v["valid"] else "invalid",
                                       "valid" if python_valid else "invalid", pointer,
                                       json.dumps(v["errors"])[:400]))
    return problems


def main(argv):
    if len(argv) >= 4 and argv[1] == "routes":
        return cmd_routes(argv[2], argv[3])
    if len(argv) >= 5 and argv[1] == "responses":
        return cmd_responses(argv[2], argv[3], argv[4])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
