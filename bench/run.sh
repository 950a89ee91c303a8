#!/usr/bin/env bash
# certplan benchmark harness (not part of the test suite).
#
#   bash bench/run.sh            # every workload; takes a while (see bench/README.md)
#   bash bench/run.sh --quick    # fewer runs, smaller N: a few minutes once certplan is fast
#
# Options:
#   --quick          N = 10, 100 for the comparisons, RSA at N = 10, "big" N = 2000
#   --runs N         at most N timed runs per workload (default 5; quick 3)
#   --budget S       seconds of timed runs per workload before runs are cut (default 300; quick 60)
#   --keep           keep the scratch directory (plans, scripts, output trees)
#   -h, --help       this text
# Environment:
#   CERTPLAN=PATH    benchmark this binary instead of building the repository's
#   BENCH_TMPDIR=DIR where output trees are written (default $TMPDIR or /tmp);
#                    the disk matters: certplan syncs what it writes
#   BENCH_E_SIZES="10 100", BENCH_R_SIZES="10", BENCH_STATIC_N=1000,
#   BENCH_BIG_N=5000, BENCH_OPENSSL_MAX_N=100 override the sizes (to try the
#   harness on small ones, or to leave out the slow openssl script)
#
# For each workload the sides (certplan, the cfssl script, the openssl script,
# the raw-crypto baseline) run alternately in one loop (A B C, C B A, ...), each
# as a whole process timed with bash's $EPOCHREALTIME; before every run its
# output directory is reset and `sync` flushes what earlier runs left dirty.
# The first run of each side is a warm-up under `/usr/bin/time -v`, which gives
# the peak memory ("Maximum resident set size"). Medians and ratios come from
# the same loop. The table is printed and written to bench/results/latest.md.
set -euo pipefail
export LC_ALL=C

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"

QUICK=0
KEEP=0
MAX_RUNS=""
BUDGET=""
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
while (($#)); do
    case "$1" in
        --quick) QUICK=1 ;;
        --keep) KEEP=1 ;;
        --runs) MAX_RUNS="${2:?--runs needs a number}"; shift ;;
        --budget) BUDGET="${2:?--budget needs seconds}"; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if ((QUICK)); then
    E_SIZES=(10 100)        # ECDSA full apply against cfssl and openssl
    R_SIZES=(10)            # RSA full apply against cfssl -P2 and raw crypto
    OPENSSL_MAX_N=10        # the openssl script only up to this N (it is slow)
    STATIC_N=1000           # "nothing to do" and "one SAN added"
    BIG_N=2000              # the big full apply and `check`
    MAX_RUNS="${MAX_RUNS:-3}"
    BUDGET="${BUDGET:-60}"
    STATIC_RUNS=10
else
    E_SIZES=(10 100 1000)
    R_SIZES=(10 100)
    OPENSSL_MAX_N=100
    STATIC_N=1000
    BIG_N=5000
    MAX_RUNS="${MAX_RUNS:-5}"
    BUDGET="${BUDGET:-300}"
    STATIC_RUNS=20
fi
# Overrides, for trying the harness itself on small sizes.
read -r -a E_SIZES <<<"${BENCH_E_SIZES-${E_SIZES[*]}}"
read -r -a R_SIZES <<<"${BENCH_R_SIZES-${R_SIZES[*]}}"
STATIC_N="${BENCH_STATIC_N:-$STATIC_N}"
OPENSSL_MAX_N="${BENCH_OPENSSL_MAX_N:-$OPENSSL_MAX_N}"
BIG_N="${BENCH_BIG_N:-$BIG_N}"

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools

ensure_tools() {
    local -a packages=()
    command -v cfssl >/dev/null && command -v cfssljson >/dev/null || packages+=(golang-cfssl)
    [[ -x /usr/bin/time ]] || packages+=(time)
    command -v openssl >/dev/null || packages+=(openssl)
    command -v python3 >/dev/null || packages+=(python3)
    command -v xargs >/dev/null || packages+=(findutils)
    if ((${#packages[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            die "missing tools; install them with: sudo apt-get install -y ${packages[*]}"
        fi
        log "installing ${packages[*]}"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
    fi
    command -v cargo >/dev/null || die "cargo is needed to build certplan and bench/rawcrypto"
}

target_dir() { # MANIFEST
    cargo metadata --format-version 1 --no-deps --manifest-path "$1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])'
}

# ---------------------------------------------------------------- scratch

BASE_TMP="${BENCH_TMPDIR:-${TMPDIR:-/tmp}}"
WORK="$(mktemp -d "$BASE_TMP/certplan-bench.XXXXXX")"
cleanup() {
    local rc=$?
    if ((rc)) && [[ -s ${RAW:-} ]]; then
        # Keep what was measured before the failure.
        mkdir -p "$BENCH/results"
        cp "$RAW" "$BENCH/results/failed-raw.tsv"
        cp "$META" "$BENCH/results/failed-meta.env" 2>/dev/null || true
        log "failed (exit $rc); samples so far in bench/results/failed-raw.tsv"
    fi
    if ((KEEP)); then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$WORK/bin" "$WORK/logs" "$WORK/plans" "$WORK/graveyard"

# An output tree from an earlier run is moved aside, never deleted while
# anything is timed: ext4 passes over inodes freed in the last minutes when
# it allocates new ones, so deleting tens of thousands of files right before
# a run makes that run's file creation many times slower (seen here: an
# N=1000 apply went from 1.9 s to 8.4 s, nearly all of it in the kernel's
# inode allocator). The graveyard goes with the scratch directory at the end.
retire() { # PATH...
    local path
    for path in "$@"; do
        [[ -e $path ]] && mv "$path" "$WORK/graveyard/$(basename "$path").${EPOCHREALTIME/./}"
    done
    return 0
}
RAW="$WORK/raw.tsv"
META="$WORK/meta.env"
: >"$RAW"
: >"$META"
meta() { printf '%s=%q\n' "$1" "$2" >>"$META"; }

ensure_tools

# The binaries are copied into the scratch directory, so a rebuild of the
# repository during the run does not change what is measured.
if [[ -n "${CERTPLAN:-}" ]]; then
    cp "$CERTPLAN" "$WORK/bin/certplan"
    meta CERTPLAN_BUILD "given: $CERTPLAN"
else
    log "building certplan (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet)
    cp "$(target_dir "$ROOT/Cargo.toml")/release/certplan" "$WORK/bin/certplan"
    meta CERTPLAN_BUILD "cargo build --release"
fi
log "building bench/rawcrypto"
(cd "$ROOT" && cargo build --release --quiet --manifest-path "$BENCH/rawcrypto/Cargo.toml")
cp "$(target_dir "$BENCH/rawcrypto/Cargo.toml")/release/rawcrypto" "$WORK/bin/rawcrypto"
CP="$WORK/bin/certplan"
RC="$WORK/bin/rawcrypto"

# ---------------------------------------------------------------- measuring

declare -A PREP CMD
TIMEFORMAT='%3U %3S' # what bash's `time` prints: user and system seconds
MEASURE_RUNS=""      # when set, the round limit of the next measure()
now_us() { local t="$EPOCHREALTIME"; echo "${t/./}"; }

run_side() { # WORKLOAD SIDE -> prints "WALL_US CPU_US" (CPU: user + system of the process tree)
    local wl="$1" side="$2" rc=0 t0 t1 cpu
    eval "${PREP[$side]:-:}"
    sync
    t0="${EPOCHREALTIME/./}"
    { time eval "${CMD[$side]}" >/dev/null 2>>"$WORK/logs/$wl.$side.log" || rc=$?; } 2>"$WORK/cpu.txt"
    t1="${EPOCHREALTIME/./}"
    if ((rc)); then
        tail -n 20 "$WORK/logs/$wl.$side.log" >&2 || true
        die "$wl: $side failed (exit $rc): ${CMD[$side]}"
    fi
    cpu="$(awk '{printf "%d", ($1 + $2) * 1000000}' "$WORK/cpu.txt")"
    echo "$((t1 - t0)) $cpu"
}

# measure WORKLOAD SIDE... : one warm-up run of each side under
# /usr/bin/time -v (peak memory), then as many alternating timed rounds as
# fit into the budget (at least one, at most MAX_RUNS / $RUNS).
measure() {
    local wl="$1"
    shift
    local -a sides=("$@")
    local side rc t0 t1 us cpu total=0 mem
    log "$wl: warm-up (${sides[*]})"
    for side in "${sides[@]}"; do
        eval "${PREP[$side]:-:}"
        sync
        rc=0
        t0="${EPOCHREALTIME/./}"
        /usr/bin/time -v -o "$WORK/time.txt" bash -c "${CMD[$side]}" \
            >/dev/null 2>>"$WORK/logs/$wl.$side.log" || rc=$?
        t1="${EPOCHREALTIME/./}"
        if ((rc)); then
            tail -n 20 "$WORK/logs/$wl.$side.log" >&2 || true
            die "$wl: $side failed (exit $rc): ${CMD[$side]}"
        fi
        mem="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.txt")"
        cpu="$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%d", s * 1000000}' "$WORK/time.txt")"
        printf '%s\t%s\twarmup_cpu_us\t%s\n' "$wl" "$side" "$cpu" >>"$RAW"
        printf '%s\t%s\tmem_kb\t%s\n' "$wl" "$side" "$mem" >>"$RAW"
        printf '%s\t%s\twarmup_us\t%s\n' "$wl" "$side" $((t1 - t0)) >>"$RAW"
        total=$((total + t1 - t0))
    done
    local limit="${MEASURE_RUNS:-$MAX_RUNS}" n
    MEASURE_RUNS=""
    n=$((BUDGET * 1000000 / (total > 0 ? total : 1)))
    ((n > limit)) && n=$limit
    if ((n < 1)); then
        # One round is longer than the budget: the warm-up is the only sample.
        log "$wl: one round takes $((total / 1000000)) s, over the budget; using the warm-up run"
        for side in "${sides[@]}"; do
            awk -F'\t' -v w="$wl" -v s="$side" '$1==w && $2==s && $3 == "warmup_us" {print w"\t"s"\ttime_us\t"$4} $1==w && $2==s && $3 == "warmup_cpu_us" {print w"\t"s"\tcpu_us\t"$4}' \
                "$RAW" >>"$RAW.tmp"
        done
        cat "$RAW.tmp" >>"$RAW"
        rm -f "$RAW.tmp"
        return
    fi
    log "$wl: $n alternating round(s)"
    local i
    for ((i = 0; i < n; i++)); do
        local -a order=("${sides[@]}")
        if ((i % 2)); then # A B C, then C B A: no side always runs first
            order=()
            for ((j = ${#sides[@]} - 1; j >= 0; j--)); do order+=("${sides[j]}"); done
        fi
        for side in "${order[@]}"; do
            read -r us cpu < <(run_side "$wl" "$side")
            [[ -n $us ]] || die "$wl: $side was not timed"
            printf '%s\t%s\ttime_us\t%s\n%s\t%s\tcpu_us\t%s\n' "$wl" "$side" "$us" "$wl" "$side" "$cpu" >>"$RAW"
        done
    done
}

# ---------------------------------------------------------------- workloads

genplan() { # WORKERS KEY [EXTRA_SAN] -> path of the plan
    local f="$WORK/plans/$2-$1${3:+-san}.toml"
    python3 "$BENCH/genplan.py" --workers "$1" --key "$2" ${3:+--extra-san "$3"} >"$f"
    "$CP" check "$f" >/dev/null 2>&1 || die "the generated plan $f does not check"
    echo "$f"
}

# scripts NAME PLAN [--only ID] : generates the cfssl/openssl scripts of PLAN
# (never timed) into $WORK/NAME/scripts.
scripts() {
    local name="$1" plan="$2"
    shift 2
    local d="$WORK/$name"
    mkdir -p "$d/empty"
    "$CP" inspect "$plan" --out "$d/empty" --format json >"$d/inspect.json"
    python3 "$BENCH/genscripts.py" --inspect "$d/inspect.json" --dir "$d/scripts" \
        --cfssl-out "$d/cfssl" --openssl-out "$d/openssl" "$@"
}

raw_args() { # NAME -> rawcrypto arguments for the plan's key and counts
    local KEY CAS LEAVES KEYPAIRS
    # shellcheck disable=SC1090
    source "$WORK/$1/scripts/counts.env"
    echo "--key $KEY --cas $CAS --leaves $LEAVES --keypairs $KEYPAIRS"
}

# full_apply KEY N [certplan-only]: certplan apply from empty, against the
# cfssl script (sequential for ECDSA, two jobs at a time for RSA), the
# openssl script (same), and the raw-crypto baseline on 1 and 2 threads.
full_apply() {
    local key="$1" n="$2" only="${3:-}"
    local wl="apply-$key-$n"
    local plan
    plan="$(genplan "$n" "$key")"
    scripts "$wl" "$plan"
    local d="$WORK/$wl" mode=seq
    [[ $key == rsa-* ]] && mode=par
    PREP=() CMD=()
    PREP[certplan]="retire '$d/out'"
    CMD[certplan]="'$CP' apply '$plan' --out '$d/out'"
    PREP[cfssl]="retire '$d/cfssl'"
    CMD[cfssl]="bash '$d/scripts/cfssl-$mode.sh'"
    PREP[openssl]="retire '$d/openssl'"
    CMD[openssl]="bash '$d/scripts/openssl-$mode.sh'"
    CMD[raw1]="'$RC' $(raw_args "$wl") --threads 1"
    CMD[raw2]="'$RC' $(raw_args "$wl") --threads 2"
    meta "MODE_$wl" "$mode"
    local -a sides=(certplan)
    if [[ -z $only ]]; then
        sides+=(cfssl)
        ((n <= OPENSSL_MAX_N)) && sides+=(openssl)
    fi
    sides+=(raw1 raw2)
    measure "$wl" "${sides[@]}"
    if [[ -z $only ]]; then
        # The scripts must have issued what certplan issued.
        local which=cfssl
        ((n <= OPENSSL_MAX_N)) && which=cfssl,openssl
        if ! python3 "$BENCH/compare.py" --sides "$which" "$d/scripts/sample.tsv" "$d/out" \
            >"$WORK/logs/$wl.compare.log" 2>&1; then
            cat "$WORK/logs/$wl.compare.log" >&2
            die "$wl: the scripts' certificates differ from certplan's"
        fi
        meta "COMPARE_$wl" "$(tail -n 1 "$WORK/logs/$wl.compare.log")"
        retire "$d/cfssl" "$d/openssl"
    fi
}

# ---------------------------------------------------------------- run

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta DATE "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta QUICK "$QUICK"
meta NPROC "$(nproc)"
meta CPU "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
meta MEM_KB "$(awk '/MemTotal/ {print $2}' /proc/meminfo)"
meta KERNEL "$(uname -r)"
meta FS "$(df -T "$WORK" | awk 'NR==2 {print $2}')"
meta LOAD_START "$(cut -d' ' -f1-3 /proc/loadavg)"
meta CERTPLAN_REV "${CERTPLAN_REV:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}"
meta CFSSL_VERSION "cfssl $(cfssl version 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)"
meta OPENSSL_VERSION "$(openssl version)"
meta BUDGET "$BUDGET"
meta MAX_RUNS "$MAX_RUNS"
meta BIG_N "$BIG_N"
meta STATIC_N "$STATIC_N"

for n in "${E_SIZES[@]}"; do full_apply ecdsa-p256 "$n"; done
for n in "${R_SIZES[@]}"; do full_apply rsa-2048 "$n"; done

# The static workloads run on an N = STATIC_N tree; measure its full apply
# too (certplan alone when the comparisons skipped that N): the linear check
# of the big apply needs it.
if [[ ! " ${E_SIZES[*]} " =~ " $STATIC_N " ]]; then
    full_apply ecdsa-p256 "$STATIC_N" certplan-only
fi
base="$WORK/apply-ecdsa-p256-$STATIC_N"
plan="$(genplan "$STATIC_N" ecdsa-p256)"
"$CP" apply "$plan" --out "$base/out" >/dev/null

# Nothing to do.
wl="noop-$STATIC_N"
PREP=() CMD=()
CMD[certplan]="'$CP' apply '$plan' --out '$base/out'"
MEASURE_RUNS=$STATIC_RUNS
measure "$wl" certplan

# One SAN added to the API server: certplan re-signs one certificate (its key
# is kept); a cfssl user re-runs the one `cfssl gencert` of the API server.
wl="san-$STATIC_N"
san_plan="$(genplan "$STATIC_N" ecdsa-p256 extra-api.bench.example.com)"
d="$WORK/$wl"
mkdir -p "$d/empty"
"$CP" inspect "$san_plan" --out "$d/empty" --format json >"$d/inspect.json"
for part in all one; do
    python3 "$BENCH/genscripts.py" --inspect "$d/inspect.json" --dir "$d/$part" \
        --cfssl-out "$d/cfssl" --openssl-out "$d/openssl" \
        $([[ $part == one ]] && echo --only cert/apiserver)
done
# The CAs the one certificate is signed by (not timed).
mkdir -p "$d/cfssl"
xargs -d '\n' -n1 bash -o pipefail -c <"$d/all/cfssl-cas.cmds" >/dev/null 2>>"$WORK/logs/$wl.cas.log"
PREP=() CMD=()
# Before each timed run, an untimed apply of the plan without the SAN puts the
# tree back (cheaper than copying it).
PREP[certplan]="'$CP' apply '$plan' --out '$base/out' >/dev/null"
CMD[certplan]="'$CP' apply '$san_plan' --out '$base/out'"
CMD[cfssl]="bash '$d/one/cfssl-seq.sh'"
MEASURE_RUNS=$STATIC_RUNS
measure "$wl" certplan cfssl
"$CP" apply "$plan" --out "$base/out" >/dev/null
"$CP" plan "$san_plan" --out "$base/out" >"$WORK/logs/$wl.plan.txt" 2>&1 || true
meta SAN_PLAN "$(tail -n 1 "$WORK/logs/$wl.plan.txt")"

# The cost of one signature (the allowance of the "one SAN added" target).
meta SIGN_MS_ecdsa "$("$RC" --key ecdsa-p256 --sign-only 500 2>/dev/null)"
meta SIGN_MS_rsa "$("$RC" --key rsa-2048 --sign-only 100 2>/dev/null)"

# The big full apply (certplan and raw crypto only), then `check` and a run
# with nothing to do on its tree.
full_apply ecdsa-p256 "$BIG_N" certplan-only
big="$WORK/apply-ecdsa-p256-$BIG_N"
big_plan="$WORK/plans/ecdsa-p256-$BIG_N.toml"
"$CP" apply "$big_plan" --out "$big/out" >/dev/null
PREP=() CMD=()
CMD[certplan]="'$CP' check '$big_plan'"
MEASURE_RUNS=$STATIC_RUNS
measure "check-$BIG_N" certplan
CMD[certplan]="'$CP' apply '$big_plan' --out '$big/out'"
MEASURE_RUNS=$STATIC_RUNS
measure "noop-$BIG_N" certplan

meta LOAD_END "$(cut -d' ' -f1-3 /proc/loadavg)"

mkdir -p "$BENCH/results"
python3 "$BENCH/report.py" --raw "$RAW" --meta "$META" --out "$BENCH/results/latest.md"
cp "$RAW" "$BENCH/results/latest-raw.tsv"
cp "$META" "$BENCH/results/latest-meta.env"
log "wrote bench/results/latest.md (samples: latest-raw.tsv, latest-meta.env)"
