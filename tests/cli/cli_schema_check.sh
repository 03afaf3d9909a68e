# `conclave schema check` (docs/cli.md): validates documents against a schema file with the
# nodes' validator and no server: exit 0 when all are valid, 7 naming each failure with its
# pointer, -o json with every verdict; --at picks a subschema (references inside the file
# still resolve, the root's own keywords do not apply); --format-assertion and --strict; a
# schema that does not compile, a missing file and a bad --at are refused with what to fix.
source "$(dirname "$0")/../lib/lib.sh"
cd "$TMP"
cat >s.json <<'J'
{"$defs": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}},
 "type": "object", "required": ["port"],
 "properties": {"port": {"$ref": "#/$defs/port"}, "mail": {"format": "email"}}}
J
echo '{"port": 80, "mail": "not a mail"}' >ok.json
echo '{"port": 70000}' >bad.json
echo '{}' >empty.json
run "$BIN" schema check s.json ok.json
expect_status 0
expect_eq "$out" "ok.json: valid" "a valid document"
run "$BIN" schema check s.json ok.json bad.json empty.json
expect_status 7
expect_out "bad.json: invalid"
expect_out "at /port: must be <= 65535, got 70000 (maximum)"
expect_out "empty.json: invalid"
run "$BIN" schema check s.json ok.json --format-assertion
expect_status 7
expect_out "at /mail: must be a valid email (format)"
echo 8080 >port.json
run "$BIN" schema check s.json port.json --at '/$defs/port'
expect_status 0
run "$BIN" schema check s.json bad.json empty.json -o json
expect_status 7
jq -e 'length == 2 and (.[0].valid | not) and .[0].errors[0].path == "/port" and
  (.[1].errors[0].keyword == "required")' <<<"$out" >/dev/null || fail "-o json verdicts: $out"
run "$BIN" schema check s.json port.json --at '/$defs/nothing'
expect_status 7
expect_out 'does not point at a schema'
run "$BIN" schema check s.json port.json --at 'defs'
expect_status 2
expect_out '--at takes a JSON Pointer'
echo '{"type": "object", "x-vendor": 1}' >vendor.json
run "$BIN" schema check vendor.json empty.json
expect_status 0
run "$BIN" schema check vendor.json empty.json --strict
expect_status 7
expect_out 'x-vendor'
run "$BIN" schema check s.json missing.json
expect_status 3
expect_out 'missing.json'
run "$BIN" schema check s.json
expect_status 2
test_done cli_schema_check
