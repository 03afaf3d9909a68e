# Installing and packaging (packaging/CMakeLists.txt; docs/operations.md, "Installing"), from
# the build under test:
#   - cmake --install into a staging root puts the binary, the migrations, the man page, the
#     docs, the copyright and the systemd unit where the issue and Debian expect them;
#   - the installed binary runs, and `conclave migrate` finds the installed migrations by
#     itself (../share/conclave/migrations beside bin/) and applies them to a real database;
#   - cpack builds the .deb: its control names the package, its library dependencies (from
#     dpkg-shlibdeps) and adduser; its maintainer scripts parse and create the conclave user
#     and directories; its files are the installed ones;
#   - lintian reports nothing but the tags packaging/debian/lintian-overrides justifies.
source "$(dirname "$0")/../lib/lib.sh"
BUILD=$(dirname "$(readlink -f "$BIN")")
[[ -f $BUILD/CPackConfig.cmake ]] || fail "no CPackConfig.cmake in $BUILD"
for tool in cpack dpkg-deb dpkg-shlibdeps lintian; do
  command -v "$tool" >/dev/null || fail "$tool is missing: run scripts/deps"
done

# ---- cmake --install --------------------------------------------------------------------
ROOT=$TMP/root
DESTDIR=$ROOT cmake --install "$BUILD" --prefix /usr >"$TMP/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -n 20 "$TMP/install.log")"
for f in usr/bin/conclave usr/share/man/man1/conclave.1.gz usr/share/doc/conclave/copyright \
  usr/share/doc/conclave/changelog.gz usr/share/doc/conclave/README.md \
  usr/share/doc/conclave/operations.md usr/share/doc/conclave/console.md \
  usr/share/doc/conclave/console/conflict.png usr/lib/systemd/system/conclave@.service \
  usr/share/conclave/migrations/001_create_users.up.sql usr/share/lintian/overrides/conclave; do
  [[ -f $ROOT/$f ]] || fail "cmake --install did not install /$f"
done
n_src=$(find "$SRC/migrations" -name '*.sql' | wc -l)
n_inst=$(find "$ROOT/usr/share/conclave/migrations" -name '*.sql' | wc -l)
expect_eq "$n_inst" "$n_src" "installed migrations"
zcat "$ROOT/usr/share/man/man1/conclave.1.gz" | grep -q '^\.TH CONCLAVE 1' || fail "the man page is not conclave(1)"
"$ROOT/usr/bin/conclave" version | grep -qx "conclave $(sed -n 's/^project(conclave VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")" ||
  fail "the installed binary's version: $("$ROOT/usr/bin/conclave" version 2>&1)"
# The installed binary applies the installed migrations, with no --dir and no environment.
make_test_db package
run env -u CONCLAVE_MIGRATIONS_DIR "$ROOT/usr/bin/conclave" migrate up
expect_status 0
run env -u CONCLAVE_MIGRATIONS_DIR "$ROOT/usr/bin/conclave" migrate version
expect_status 0
expect_eq "$out" "$(ls "$SRC/migrations" | sed -n 's/^0*\([0-9]*\)_.*\.up\.sql$/\1/p' | sort -n | tail -n 1)" "version after migrate up with the installed binary"

# ---- the .deb ---------------------------------------------------------------------------
rm -rf "$BUILD/packages"
(cd "$BUILD" && cpack -G DEB) >"$TMP/cpack.log" 2>&1 || fail "cpack failed: $(tail -n 20 "$TMP/cpack.log")"
DEB=$(ls "$BUILD"/packages/conclave_*.deb)
[[ -f $DEB ]] || fail "cpack made no .deb: $(tail -n 5 "$TMP/cpack.log")"
dpkg-deb -f "$DEB" Package Version Section Depends >"$TMP/control"
grep -qx 'Package: conclave' "$TMP/control" || fail "control: $(cat "$TMP/control")"
grep -q '^Depends: adduser, .*libpq5.*libraft2.*' "$TMP/control" || fail "Depends: $(cat "$TMP/control")"
dpkg-deb -e "$DEB" "$TMP/control.d"
for s in postinst postrm; do
  [[ -x $TMP/control.d/$s ]] || fail "the .deb has no executable $s"
  sh -n "$TMP/control.d/$s" || fail "$s does not parse"
done
grep -q 'adduser --system --group' "$TMP/control.d/postinst" || fail "postinst makes no system user"
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|; /\/$/d' | sort >"$TMP/deb.files"
(cd "$ROOT" && find . -type f | sed 's|^\.||' | sort) >"$TMP/installed.files"
diff "$TMP/installed.files" "$TMP/deb.files" >"$TMP/files.diff" ||
  fail "the .deb's files differ from cmake --install's: $(head -n 20 "$TMP/files.diff")"

lintian --fail-on error,warning,info --no-tag-display-limit "$DEB" >"$TMP/lintian.out" 2>&1 ||
  fail "lintian: $(grep -v 'running with root privileges' "$TMP/lintian.out" | head -n 30)"
if grep -E '^[EWI]: ' "$TMP/lintian.out"; then
  fail "lintian reported the tags above (fix them, or justify them in packaging/debian/lintian-overrides)"
fi
test_done package
