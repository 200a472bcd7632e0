#!/usr/bin/env bash
# run.sh — the fuzz driver (issue 10): runs tests/fuzz/regress.lua, then the API fuzzer
# (api.lua) and the file fuzzers (files.lua) in chunks, each a subprocess in its own
# temporary directory with its own seed (derived from the base seed), under `timeout`.
# A chunk fails if its process dies (signal, sanitizer report, leak report), hangs (the
# timeout, or a call over the per-call CPU bound), or reports a bad result; each failure
# prints the reproducer command and the last call the fuzzer logged.
#
#   bash tests/fuzz/run.sh QD_BINARY SECONDS [SEED]
#
# Environment: FUZZ_CHUNK (seconds per chunk, default 20), FUZZ_CHUNKS (number of chunks;
# default SECONDS / FUZZ_CHUNK), FUZZ_CALLS / FUZZ_FILES (a fixed count of calls / inputs
# per chunk instead of a time budget: the run is then the same on any machine — make
# check uses this), FUZZ_KEEP=1 (keep the work directory). Ends with "N passed, M failed"
# (chunks, plus regress.lua's own count); exits 1 if anything failed.
set -u
QD=${1:?usage: run.sh QD_BINARY SECONDS [SEED]}
SECONDS_TOTAL=${2:?usage: run.sh QD_BINARY SECONDS [SEED]}
BASE=${3:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
QD=$(cd "$(dirname "$QD")" && pwd)/$(basename "$QD")
CH=${FUZZ_CHUNK:-20}
NCH=${FUZZ_CHUNKS:-$(( (SECONDS_TOTAL + CH - 1) / CH ))}
[ "$NCH" -ge 1 ] || NCH=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/qd-fuzz.XXXXXX")
# allocator_may_return_null: a request ASan cannot serve returns NULL (qd must then raise
# "not enough memory"), not an ASan abort; distinct exit codes for sanitizer reports
export ASAN_OPTIONS=${ASAN_OPTIONS:-allocator_may_return_null=1:exitcode=86:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=87}
export LSAN_OPTIONS=${LSAN_OPTIONS:-exitcode=86}
export QD_THREADS=${QD_THREADS:-1}
export QD_PROGRESS=quiet
cd "$WORK" || exit 1

passed=0; failed=0
calls=0; errors=0; raw=0; skipped=0; files=0; ferrors=0; resumes=0
crashes=0; hangs=0; sanitizer=0; bad=0

field() {  # field NAME LINE -> the number after NAME= (0 if absent)
  local v
  v=$(echo "$2" | sed -nE "s/.*[ ]$1=([0-9]+).*/\1/p")
  echo "${v:-0}"
}

echo "fuzz: $QD, $SECONDS_TOTAL s, base seed $BASE, $NCH chunks, work directory $WORK"

# regression scripts first (each a former crash; open ones print SKIP)
mkdir -p regress && (cd regress && "$QD" "$HERE/regress.lua" >out.txt 2>err.txt)
rc=$?
grep -E '^(SKIP|FAIL)' regress/out.txt
rl=$(grep -E '^[0-9]+ passed, [0-9]+ failed' regress/out.txt | tail -n 1)
if [ -n "$rl" ] && [ "$rc" -eq 0 ]; then
  passed=$((passed + $(echo "$rl" | cut -d' ' -f1)))
else
  failed=$((failed + 1))
  echo "FAIL regress.lua (exit $rc): $QD $HERE/regress.lua"
  tail -n 20 regress/out.txt regress/err.txt
  [ -n "$rl" ] && passed=$((passed + $(echo "$rl" | cut -d' ' -f1)))
fi

# the corpus of real run directories for files.lua (made once)
mkdir -p corpus
(cd corpus && "$QD" "$HERE/../../examples/01_quddpm_forward.lua" --small --quiet --out "$WORK/corpus/fwd" >/dev/null 2>&1)
(cd corpus && "$QD" "$HERE/../../examples/quddpm_cluster.lua" --small --quiet --stop-after 1 --out "$WORK/corpus/ckpt" >/dev/null 2>&1)
[ -f corpus/ckpt/checkpoint.json ] || echo "note: no checkpoint corpus (the example failed); files.lua runs without it"

for i in $(seq 1 "$NCH"); do
  seed=$((BASE * 1000 + i))
  # two chunks of API calls for one of files
  if [ $((i % 3)) -eq 0 ]; then kind=files; else kind=api; fi
  d="$WORK/$kind-$seed"; mkdir -p "$d"
  if [ "$kind" = api ]; then
    args=(--seed "$seed" --seconds "$CH")
    [ -n "${FUZZ_CALLS:-}" ] && args=(--seed "$seed" --seconds 100000 --calls "$FUZZ_CALLS")
    script="$HERE/api.lua"; logf="$d/fuzz-api.log"
  else
    args=(--seed "$seed" --seconds "$CH" --corpus "$WORK/corpus")
    [ -n "${FUZZ_FILES:-}" ] && args=(--seed "$seed" --seconds 100000 --files "$FUZZ_FILES" --corpus "$WORK/corpus")
    script="$HERE/files.lua"; logf="$d/fuzz-files.log"
  fi
  limit=$((CH * 3 + 120)); [ -n "${FUZZ_CALLS:-}${FUZZ_FILES:-}" ] && limit=600
  (cd "$d" && exec timeout -s KILL "$limit" "$QD" "$script" "${args[@]}" >out.txt 2>err.txt)
  rc=$?
  stat=$(grep -aE "^$kind: " "$d/out.txt" | tail -n 1)
  if [ "$kind" = api ]; then
    calls=$((calls + $(field calls "$stat")))
    errors=$((errors + $(field errors "$stat")))
    raw=$((raw + $(field raw "$stat")))
    skipped=$((skipped + $(field skipped "$stat")))
  else
    files=$((files + $(field files "$stat")))
    ferrors=$((ferrors + $(field errors "$stat")))
    resumes=$((resumes + $(field resumes "$stat")))
  fi
  what=""
  if grep -aqE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$d/err.txt"; then
    sanitizer=$((sanitizer + 1)); crashes=$((crashes + 1)); what="sanitizer report"
  elif [ "$rc" -eq 137 ] || [ "$rc" -eq 124 ]; then
    hangs=$((hangs + 1)); what="hang (killed after $limit s)"
  elif [ "$rc" -ge 128 ]; then
    crashes=$((crashes + 1)); what="crash (signal $((rc - 128)))"
  elif [ "$rc" -eq 86 ] || [ "$rc" -eq 87 ]; then
    sanitizer=$((sanitizer + 1)); crashes=$((crashes + 1)); what="sanitizer exit $rc"
  elif [ "$rc" -eq 3 ]; then
    h=$(field hangs "$stat"); b=$(field bad "$stat")
    hangs=$((hangs + h)); bad=$((bad + b)); what="$h calls over the time bound, $b bad results"
  elif [ "$rc" -ne 0 ] || [ -z "$stat" ]; then
    crashes=$((crashes + 1)); what="fuzzer died (exit $rc)"
  fi
  if [ -z "$what" ]; then
    passed=$((passed + 1))
    echo "ok   $kind seed $seed: $stat"
  else
    failed=$((failed + 1))
    last=$(grep -av '^skip ' "$logf" 2>/dev/null | tail -n 1)
    k=$(echo "$last" | sed -nE 's/^(call|file) #([0-9]+).*/\2/p')
    echo "FAIL $kind seed $seed: $what"
    if [ "$kind" = api ]; then
      echo "  reproduce: cd \$(mktemp -d) && $QD $script --seed $seed --calls ${k:-N}"
    else
      echo "  reproduce: cd \$(mktemp -d) && $QD $script --seed $seed --files ${k:-N} --corpus DIR  (DIR: see files.lua; input kept in $d/last-input.*)"
    fi
    echo "  last call: ${last:0:1500}"
    grep -aE '^(HANG|BAD)' "$d/out.txt" | head -n 5 | cut -c1-1500 | sed 's/^/  /'
    grep -aE 'ERROR: |runtime error:|^    #[0-9] ' "$d/err.txt" | grep -v 'liblua' | head -n 12 | sed 's/^/  /'
    tail -n 3 "$d/err.txt" | sed 's/^/  stderr: /'
    FUZZ_KEEP=1
  fi
done

echo "calls tried: $calls (errors raised: $errors, of which unchecked Lua errors: $raw; known crashes skipped: $skipped)"
echo "files tried: $files (errors raised: $ferrors; resumed runs: $resumes)"
echo "crashes: $crashes (sanitizer reports: $sanitizer), hangs: $hangs, bad results: $bad"
if [ "${FUZZ_KEEP:-0}" = 1 ]; then echo "work directory kept: $WORK"; else cd / && rm -rf "$WORK"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
