#!/usr/bin/env bash
# lint.sh — the rules of docs/architecture.md that the compiler does not check (make lint,
# run by make check): the layering, the gate registry, function lengths, whitespace.
# Ends with "N passed, M failed"; exits non-zero if a rule is broken.
set -u
cd "$(dirname "$0")/.."
passed=0 failed=0
rule() {   # rule NAME OFFENDERS
    if [ -n "$2" ]; then
        failed=$((failed + 1))
        echo "FAIL lint: $1"
        printf '%s\n' "$2" | head -n 20 | sed 's/^/  /'
    else
        passed=$((passed + 1))
    fi
}
C_FILES=$(ls runtime/core/*.[ch] runtime/lua/*.[ch] interp/*.[ch] tests/c/*.[ch])

# 1. the core (and its tests) include no Lua or binding header (the Makefile also compiles
#    the core without the Lua include path)
rule "runtime/core and tests/c include no Lua or binding header" \
    "$(grep -nE '#include *[<"](lua|lauxlib|lualib|lua_[a-z_]+)\.h[>"]' runtime/core/*.[ch] tests/c/*.[ch])"

# 2. one gate registry: no comparison of a gate's name with a literal outside gate_table.c
rule "gate names are compared only in runtime/core/gate_table.c (use the registry's fields)" \
    "$(grep -nE 'strn?cmp\([^,]*(->|\.)name, *"' $C_FILES | grep -v '^runtime/core/gate_table.c:')"

# 3. functions under 120 lines, except those listed with a reason in scripts/long_functions.txt
long=$(for f in runtime/core/*.c runtime/lua/*.c interp/*.c; do
    awk -v F="$f" '/^[A-Za-z]/ { sig = $0 }
        $0 == "{" { start = NR; name = sig }
        $0 == "}" && start { if (NR - start > 120) { n = sig; sub(/\(.*/, "", name); k = split(name, w, /[ *]+/);
                                 printf "%s:%s %d lines\n", F, w[k], NR - start }; start = 0 }' "$f"
done | while read -r where len rest; do
    grep -q "^$where " scripts/long_functions.txt || echo "$where $len $rest"
done)
rule "functions over 120 lines not in scripts/long_functions.txt" "$long"

# 4. whitespace and line length
rule "no tabs in C and Lua sources" "$(grep -nP '\t' $C_FILES stdlib/qd/*.lua stdlib/qd/protocols/*.lua | head)"
rule "no trailing blanks" "$(grep -nE ' +$' $C_FILES stdlib/qd/*.lua stdlib/qd/protocols/*.lua scripts/*.sh tests/*.sh tests/*/*.sh | head)"
rule "C lines of at most 140 columns" "$(awk 'length > 140 { print FILENAME ":" FNR ": " length " columns" }' $C_FILES)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
