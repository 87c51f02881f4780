# Helpers for the VM scenario scripts (busybox sh). Sourced as /vmtest/lib.sh.
# Result lines: "PASS name" / "FAIL name: reason"; summary() prints the closing
# "N passed, N failed" line that scripts/vm-test.sh looks for.

VM_PASSED=0
VM_FAILED=0

pass() {
    echo "PASS $1"
    VM_PASSED=$((VM_PASSED + 1))
}

fail() {
    echo "FAIL $1: $2"
    VM_FAILED=$((VM_FAILED + 1))
}

# check NAME REASON-IF-FALSE CMD...: PASS if CMD succeeds, else FAIL with the reason.
check() {
    _name=$1 _why=$2
    shift 2
    if "$@"; then pass "$_name"; else fail "$_name" "$_why"; fi
}

# verdict STATUS NAME REASON: PASS if STATUS is 0 (use as: cond1 && cond2; verdict $? ...).
verdict() {
    if [ "$1" = 0 ]; then pass "$2"; else fail "$2" "$3"; fi
}

summary() {
    echo "$VM_PASSED passed, $VM_FAILED failed"
}

info() { echo "INFO $*"; }

# Seconds since boot with 10 ms resolution (busybox date has no %N).
now_s() {
    read -r _up _ </proc/uptime
    echo "$_up"
}

# fcmp A OP B: floating-point comparison with awk (OP one of < <= > >= ==).
fcmp() {
    awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
        if (a == "" || b == "") exit 1
        a += 0; b += 0
        if (op == "<") r = a < b; else if (op == "<=") r = a <= b
        else if (op == ">") r = a > b; else if (op == ">=") r = a >= b
        else r = a == b
        exit !r }'
}

fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }

# json_str KEY JSON: the string value of "KEY":"..." (escapes kept).
# judgebox prints one JSON object on one line; keys used here are unique in it.
json_str() {
    printf '%s\n' "$2" | sed -n 's/.*"'"$1"'":"\(\([^"\\]\|\\.\)*\)".*/\1/p' | head -n1
}

# json_num KEY JSON: the number value of "KEY":N (empty if null/absent).
json_num() {
    printf '%s\n' "$2" | sed -n 's/.*"'"$1"'":\(-\{0,1\}[0-9][0-9.eE+-]*\).*/\1/p' | head -n1
}

# Show (indented) the first lines of a file, for failure context.
show() {
    [ -s "$1" ] || return 0
    head -n "${2:-15}" "$1" | sed 's/^/    | /'
}
