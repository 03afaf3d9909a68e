# `conclave completion bash|zsh` (docs/cli.md, "Shell completion"): the bash script, loaded
# into a real bash, completes commands, subcommands, options (the command's and the global
# ones) and the values of -o, --consistency and --scope, taken from the commands' help texts;
# the zsh script passes zsh's parser and loads under compinit; any other shell, or none, is a
# usage error that prints nothing on stdout.
source "$(dirname "$0")/../lib/lib.sh"

"$BIN" completion bash >"$TMP/conclave.bash" || fail "completion bash exited $?"
# complete_words WORDS...: what the script offers for the last word of "conclave WORDS...".
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=(conclave "$@"); COMP_CWORD=$#; _conclave
    printf "%s\n" "${COMPREPLY[@]}"' _ "$TMP/conclave.bash" "$@" | sort | tr '\n' ' '
}
expect_eq "$(complete_words ge)" "get " "commands"
expect_eq "$(complete_words pro)" "project " "commands"
expect_eq "$(complete_words co)" "completion " "completion itself"
expect_eq "$(complete_words project "")" "create delete list " "project's subcommands"
expect_eq "$(complete_words cluster t)" "transfer " "cluster's subcommands"
expect_eq "$(complete_words audit "")" "checkpoint export replay verify " "audit's subcommands"
expect_eq "$(complete_words get k --con)" "--config --consistency " "get's and the global options"
expect_eq "$(complete_words get k --consistency l)" "linearizable " "--consistency values"
expect_eq "$(complete_words get k -o "")" "json table value " "-o values"
expect_eq "$(complete_words apikey create --sc)" "--scope " "apikey's options"
expect_eq "$(complete_words apikey create --scope r)" "read read-write " "--scope values"
expect_eq "$(complete_words put k --ca)" "--cacert " "global options after a command"
expect_eq "$(complete_words completion "")" "bash zsh " "completion's shells"
none=$(complete_words get k --nothing-like-this)
[[ -z ${none// /} ]] || fail "an unknown option prefix offers nothing, got <$none>"
touch "$TMP/ca-file.pem"
expect_eq "$(cd "$TMP" && complete_words get k --cacert ca-f)" "ca-file.pem " "--cacert takes a file"

"$BIN" completion zsh >"$TMP/_conclave" || fail "completion zsh exited $?"
zsh -n "$TMP/_conclave" || fail "the zsh script does not parse"
zsh -f -c "autoload -U compinit && compinit -u -D && source '$TMP/_conclave' && (( \${+functions[_conclave]} ))" ||
  fail "the zsh script does not define _conclave under compinit"
grep -q '^compdef _conclave conclave$' "$TMP/_conclave" || fail "the zsh script does not register itself"
grep -q 'project) subs=(create list delete)' "$TMP/_conclave" || fail "zsh: project's subcommands"

for bad in fish "" "bash zsh"; do
  set +e
  # shellcheck disable=SC2086
  "$BIN" completion $bad >"$TMP/bad.out" 2>"$TMP/bad.err"
  st=$?
  set -e
  expect_eq "$st" 2 "completion '$bad'"
  [[ ! -s $TMP/bad.out ]] || fail "completion '$bad' printed a script"
  grep -q 'usage: conclave completion bash|zsh' "$TMP/bad.err" || fail "completion '$bad': $(cat "$TMP/bad.err")"
done
test_done cli_completion
