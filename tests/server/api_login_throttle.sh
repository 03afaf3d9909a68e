# Login throttling (issue 17 item 3, docs/security.md) on a real node: after the free failures
# an account is refused with 429 and Retry-After before its password is checked (even the right
# password), the lock doubles, and ends; an unknown email is treated exactly like a known one
# (same answers at every step); a success clears the account; many accounts tried from one
# address lock the address.
source "$(dirname "$0")/../lib/lib.sh"
source "$(dirname "$0")/../lib/node_lib.sh"
make_test_db api_login_throttle
"$BIN" migrate up >/dev/null
PW=throttle-password-1
create_user known@example.com "$PW" >/dev/null
start_node 1

try() { # try EMAIL PASSWORD: one login; sets code, body
  api POST /v1/auth/login "{\"email\": $(jesc "$1"), \"password\": $(jesc "$2")}"
}
# Five free failures, then the sixth locks for 1 s: the same answers for a known and an unknown
# email at every step.
for email in nobody@example.com known@example.com; do
  for i in 1 2 3 4 5 6; do
    try "$email" wrong-password-1
    expect_code 401
  done
  try "$email" wrong-password-1
  expect_code 429
  expect_json .error too_many_requests
  expect_header Retry-After '^1$'
done
# Locked: even the right password is refused, without a session.
try known@example.com "$PW"
expect_code 429
sleep 1.1
# The lock ended: the next failure locks for 2 s.
try known@example.com wrong-password-1
expect_code 401
try known@example.com "$PW"
expect_code 429
expect_header Retry-After '^2$'
sleep 2.1
# The right password now works and clears the account's count: five free failures again.
try known@example.com "$PW"
expect_code 200
for i in 1 2 3 4 5; do
  try known@example.com wrong-password-1
  expect_code 401
done
try known@example.com "$PW"
expect_code 200

# The address: 20 free failures across accounts; the 18 failures above (6 + 6 + 1 + 5) came from
# this address too (refused attempts are not failures), so a few more lock it.
n=0
for i in $(seq 1 30); do
  try "spray$i@example.com" wrong-password-1
  [[ $code == 429 ]] && break
  expect_code 401
  n=$((n + 1))
done
expect_code 429
expect_header Retry-After '^[1-9][0-9]*$'
echo "the address was locked after $n more failures"
((n >= 1 && n <= 20)) || fail "the address locked after $n failures on fresh accounts"
# A fresh account from the locked address is refused too, before any check.
try fresh@example.com wrong-password-1
expect_code 429
test_done "api login throttle"
