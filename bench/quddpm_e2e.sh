#!/usr/bin/env bash
# bench/quddpm_e2e.sh — QuDDPM end to end, qd against PyTorch (issue 5; docs/results.md,
# "Time per epoch and the comparison with PyTorch").
#
# For each task the whole protocol (data, forward sets, the T backward steps trained one at a
# time, generation from the training and from fresh Haar inputs, metrics) runs twice on the
# same reduced budget (the task's settings, fewer epochs per step, all T steps):
#   qd     examples/quddpm_<task>.lua --epochs E --seed S --threads T --quiet --out DIR
#   torch  bench/quddpm_torch.py <task> --epochs E --seed S --threads T --mmd gram|dm
# and prints a table: wall time of each, the ratio, and the final metrics of both (so one
# can see that both learn at this budget). The PyTorch side is batched over the ensemble and
# uses the faster of its two circuit forms ("kron"); its MMD is run both ways: from Gram
# matrices as the reference code ("gram", the main comparison) and from the average states
# as qd itself does for these sizes ("dm", shown next to it). Circle uses the exact
# Wasserstein loss (scipy's linear_sum_assignment, as the reference code).
#
# Times: "qd" = the whole qd process (start-up, data, run, writing run.json and the .npy
# files), measured around the command; "torch" = the protocol inside the Python process
# (everything after `import torch`), so the ratio does not count Python's ~0.6 s start-up
# against torch; the process times with start-up are printed too. With --rounds R every
# pair runs R times, interleaved, and each figure is the minimum over the rounds.
#
#   bash bench/quddpm_e2e.sh [--rounds R] [--threads T] [--seed S] [--epochs E]
#                            [--tasks "cluster1 cluster2 circle noise tfim"] [--no-dm]
#
# Default budget (epochs per step): cluster1 300, cluster2 300, circle 100, noise 200,
# tfim 300 (--epochs E sets all of them); one round takes about 5-6 minutes (torch ~95%).
# Environment: QD_BUILD (build directory, default build), PYTHON (default /usr/bin/python3).
# Exit status: nonzero only if a run failed (not for a missed speed target).
# Not part of `make check`; `make bench` runs it with one round (section 6 of bench/run.sh).
set -u
cd "$(dirname "$0")/.." || exit 1
B=${QD_BUILD:-build}
PY=${PYTHON:-/usr/bin/python3}
rounds=1
threads=1
seed=1
epochs_all=0
tasks="cluster1 cluster2 circle noise tfim"
dm=1
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --epochs) epochs_all=$2; shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --no-dm) dm=0; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "quddpm_e2e.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$rounds" "$threads" "$seed" "$epochs_all"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "quddpm_e2e.sh: numeric option expected, got '$v'" >&2; exit 2; }
done
if [ "$rounds" -lt 1 ] || [ "$threads" -lt 1 ]; then
  echo "quddpm_e2e.sh: --rounds and --threads must be >= 1" >&2; exit 2
fi

declare -A EPOCHS=([cluster1]=300 [cluster2]=300 [circle]=100 [noise]=200 [tfim]=300)
qd_cmd() {  # task -> the qd example and its task options
  case "$1" in
    cluster1) echo "examples/quddpm_cluster.lua --n 1" ;;
    cluster2) echo "examples/quddpm_cluster.lua --n 2" ;;
    circle) echo "examples/quddpm_circle.lua" ;;
    noise) echo "examples/quddpm_noise.lua" ;;
    tfim) echo "examples/quddpm_tfim.lua" ;;
    *) return 1 ;;
  esac
}
for t in $tasks; do
  qd_cmd "$t" >/dev/null || { echo "quddpm_e2e.sh: unknown task $t" >&2; exit 2; }
done

out="$B/bench/e2e"
mkdir -p "$out"
fails=0
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads

echo "== QuDDPM end to end, qd vs PyTorch  $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "   CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc --all) cores;" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
make --no-print-directory BUILD="$B" -j2 "$B/qd" >/dev/null || { echo "quddpm_e2e: building $B/qd failed"; exit 1; }
echo "   $("$B/qd" -e 'print("qd " .. qd.version .. ", " .. qd.blas_info())')"
if ! tv=$("$PY" -c 'import torch, scipy; print("torch", torch.__version__, "scipy", scipy.__version__)' 2>&1); then
  echo "   SKIPPED: $PY with torch and scipy not found (apt-get install python3-torch python3-scipy)"
  exit 1
fi
echo "   $tv"
echo "   seed $seed, $threads thread(s), $rounds round(s); output in $out"

now() { date +%s.%N; }
run_timed() {  # file-for-seconds, command...; returns the command's status
  local f=$1; shift
  local s e st
  s=$(now)
  "$@"
  st=$?
  e=$(now)
  echo "$s $e" | awk '{printf "%.4f\n", $2 - $1}' >>"$f"
  return $st
}

for t in $tasks; do
  E=${EPOCHS[$t]}
  [ "$epochs_all" -gt 0 ] && E=$epochs_all
  d="$out/$t"
  rm -rf "$d" && mkdir -p "$d"
  echo "$E" >"$d/epochs"
  variants="gram"
  if [ "$t" = circle ]; then variants="wass"; elif [ "$dm" = 1 ]; then variants="gram dm"; fi
  echo
  echo "-- $t: $E epochs/step; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  cut -d' ' -f1 /proc/loadavg >>"$d/load"
  for r in $(seq 1 "$rounds"); do
    # shellcheck disable=SC2046  # the task options are words
    if run_timed "$d/qd_seconds" "$B/qd" $(qd_cmd "$t") --epochs "$E" --seed "$seed" --threads "$threads" \
        --quiet --out "$d/qd_r$r" >"$d/qd_r$r.log" 2>&1; then
      echo "   round $r qd    $(tail -n 1 "$d/qd_seconds") s"
    else
      echo "   round $r qd    FAILED (see $d/qd_r$r.log)"; fails=$((fails + 1))
    fi
    for v in $variants; do
      m=$v; [ "$v" = wass ] && m=gram
      if run_timed "$d/torch_${v}_seconds" "$PY" bench/quddpm_torch.py "$t" --epochs "$E" --seed "$seed" \
          --threads "$threads" --mmd "$m" --quiet --out "$d/torch_${v}_r$r.json" >"$d/torch_${v}_r$r.log" 2>&1; then
        echo "   round $r torch ($v) $(tail -n 1 "$d/torch_${v}_seconds") s"
      else
        echo "   round $r torch ($v) FAILED (see $d/torch_${v}_r$r.log)"; fails=$((fails + 1))
      fi
    done
  done
  cut -d' ' -f1 /proc/loadavg >>"$d/load"
done

echo
# shellcheck disable=SC2086  # the task list is words
"$PY" - "$out" "$rounds" "$threads" "$seed" $tasks <<'EOF' || fails=$((fails + 1))
import glob, json, math, os, sys
out, rounds, threads, seed, tasks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]

def mins(f):
    try:
        v = [float(x) for x in open(f).read().split()]
        return min(v) if v else math.nan
    except OSError:
        return math.nan

def load_json(pattern):
    fs = sorted(glob.glob(pattern))
    return json.load(open(fs[0])) if fs else None

KEYS = {"cluster1": ["F0", "mmd"], "cluster2": ["F0", "mmd"], "circle": ["wass", "y2"],
        "noise": ["p_hat", "mmd"], "tfim": ["magnetization", "mmd"]}
print(f"== end-to-end wall time, {threads} thread(s), seed {seed}, "
      + (f"minimum of {rounds} rounds" if rounds > 1 else "1 round"))
print("   qd = whole process; torch = protocol after the imports (with Python start-up and imports"
      " in brackets); ratio = torch / qd")
hdr = (f"{'task':9s} {'ep/step':>7s} {'epochs':>6s} {'load':>9s} {'qd s':>8s} {'torch s (gram)':>20s}"
       f" {'ratio':>7s} {'torch s (dm)':>20s} {'ratio':>7s}")
print(hdr)
print("-" * len(hdr))
rows = []
for t in tasks:
    d = os.path.join(out, t)
    E = int(open(os.path.join(d, "epochs")).read())
    load = open(os.path.join(d, "load")).read().split()
    qd_s = mins(os.path.join(d, "qd_seconds"))
    qdj = load_json(os.path.join(d, "qd_r1", "run.json"))
    qd_spe = min((json.load(open(f))["timing"]["seconds_per_epoch"]
                  for f in glob.glob(os.path.join(d, "qd_r*", "run.json"))), default=math.nan)
    cells = {}
    for v in ("gram", "dm", "wass"):
        js = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(d, f"torch_{v}_r*.json")))]
        if js:
            prot = min(j["timing"]["protocol_seconds"] for j in js)
            js[0]["timing"]["seconds_per_epoch"] = min(j["timing"]["seconds_per_epoch"] for j in js)
            cells[v] = (prot, mins(os.path.join(d, f"torch_{v}_seconds")), js[0])
    T = qdj["settings"]["T"] if qdj else 0
    def cell(v):
        if v not in cells:
            return f"{'-':>20s} {'-':>7s}"
        prot, proc, _ = cells[v]
        return f"{prot:9.2f} ({proc:8.2f}) {prot / qd_s:6.1f}x"
    main = "wass" if "wass" in cells else "gram"
    print(f"{t:9s} {E:7d} {E * T:6d} {'-'.join(load):>9s} {qd_s:8.2f} {cell(main)} {cell('dm')}")
    rows.append((t, qdj, cells, qd_spe))
print()
print("final metrics at t = 0 (train / test; target = the value on the training target set S_0)")
for t, qdj, cells, _ in rows:
    for name, m in [("qd", qdj and qdj["metrics"])] + [(f"torch {v}", c[2]["metrics"]) for v, c in cells.items()]:
        if not m:
            print(f"  {t:9s} {name:11s} (no result)")
            continue
        s = "  ".join(f"{k} {m[k + '_train']:.4g} / {m[k + '_test']:.4g}" for k in KEYS[t])
        tg = m.get("target", {})
        tgs = ", ".join(f"{k} {v:.4g}" for k, v in tg.items() if k in KEYS[t])
        print(f"  {t:9s} {name:11s} {s}" + (f"   (target {tgs})" if tgs else ""))
for t, qdj, cells, qs in rows:
    for v, c in cells.items():
        print(f"RESULT {t} epochs_per_step={c[2]['settings']['epochs']} qd_s={mins(os.path.join(out, t, 'qd_seconds')):.3f}"
              f" torch_{v}_protocol_s={c[0]:.3f} torch_{v}_process_s={c[1]:.3f}"
              f" qd_us_per_epoch={qs * 1e6:.1f} torch_{v}_us_per_epoch={c[2]['timing']['seconds_per_epoch'] * 1e6:.1f}")
EOF

echo
if [ "$fails" -eq 0 ]; then echo "quddpm_e2e: all runs completed"; else echo "quddpm_e2e: $fails run(s) failed"; fi
[ "$fails" -eq 0 ]
