# shellcheck shell=bash
# Helpers for the shell tests of deploy/ (sourced). A test prints its steps,
# fails with a message (exit 1), or skips (exit 77, SKIP_RETURN_CODE in CMake).

step() { echo "--- $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
pass() { echo "PASS"; exit 0; }

# new_temp_dir NAME: sets T to a fresh temp dir, removed when the test exits
# (kept with KEEP_TEST_DIRS=1). Not in a subshell: the trap must be ours.
new_temp_dir() {
  T=$(mktemp -d "${TMPDIR:-/tmp}/hsync-$1.XXXXXX")
  if [ -z "${KEEP_TEST_DIRS:-}" ]; then
    # shellcheck disable=SC2064
    trap "rm -rf '$T'" EXIT
  fi
}

# expect_mode OCTAL PATH: the file's permission bits are exactly OCTAL.
expect_mode() {
  local got
  got=$(stat -c %a "$2")
  [ "$got" = "$1" ] || fail "$2 has mode $got, expected $1"
}

# expect_failure TEXT CMD...: CMD exits non-zero and says TEXT (stdout+stderr).
expect_failure() {
  local want="$1" out
  shift
  if out=$("$@" 2>&1); then
    fail "expected '$*' to fail; it printed: $out"
  fi
  [[ "$out" == *"$want"* ]] || fail "'$*' failed without saying '$want': $out"
}
