#!/usr/bin/env bash
# Where certplan's time goes, for the workloads whose targets are furthest:
# full apply of N=100 RSA-2048 and N=5000 ECDSA, plus the N=1000 "nothing to
# do" and "one SAN added" runs. Not part of the test suite; companion of
# bench/run.sh (which measures, this one explains).
#
#   bash bench/profile.sh [--big N] [--keep]
#
# For each workload, three runs of certplan alone:
#   1. on the disk, under `perf stat`: wall time, CPU time (task-clock), CPU use
#   2. on the disk, under `strace -f -c -w`: wall time spent in each syscall
#      (strace slows the run; the proportions are what count)
#   3. on tmpfs (/dev/shm), under `perf record -g`: wall time without the disk,
#      and the CPU profile (by shared object and by symbol)
# Writes bench/results/profile.md. Installs linux-perf and strace when missing.
set -euo pipefail
export LC_ALL=C

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BENCH")"
BIG=5000
KEEP=0
while (($#)); do
    case "$1" in
        --big) BIG="${2:?--big needs a number}"; shift ;;
        --keep) KEEP=1 ;;
        -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "profile.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[profile %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf 'profile.sh: %s\n' "$*" >&2; exit 1; }

missing=()
command -v perf >/dev/null || missing+=(linux-perf)
command -v strace >/dev/null || missing+=(strace)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
    [[ $(id -u) -eq 0 ]] || die "install: sudo apt-get install -y ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

DISK="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/certplan-profile.XXXXXX")"
SHM=""
if [[ -d /dev/shm && -w /dev/shm ]]; then SHM="$(mktemp -d /dev/shm/certplan-profile.XXXXXX)"; fi
cleanup() {
    if ((KEEP)); then log "kept $DISK ${SHM}"; else rm -rf "$DISK" ${SHM:+"$SHM"}; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "${CERTPLAN:-}" ]]; then
    cp "$CERTPLAN" "$DISK/certplan"
else
    log "building certplan (cargo build --release)"
    (cd "$ROOT" && cargo build --release --quiet)
    td="$(cargo metadata --format-version 1 --no-deps --manifest-path "$ROOT/Cargo.toml" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
    cp "$td/release/certplan" "$DISK/certplan"
fi
CP="$DISK/certplan"

OUT="$BENCH/results/profile.md"
mkdir -p "$BENCH/results"
REPORT="$DISK/profile.md"
{
    echo "# Where certplan's time goes"
    echo
    echo "\`bash bench/profile.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), certplan \`${CERTPLAN_REV:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}\`;"
    echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load average at start $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Disk runs on $(df -T "$DISK" | awk 'NR==2 {print $2}'), the profiled run on tmpfs."
    echo
} >"$REPORT"

# profile NAME PREP CMD_ARGS... : PREP is run (in bash) before every run with
# $OUTDIR set to the run's output directory; CMD_ARGS use @OUT@ for it.
profile() {
    local name="$1" prep="$2"
    shift 2
    local -a args=("$@")
    local base wall cpu
    run_args() { local a; for a in "${args[@]}"; do printf '%s\0' "${a//@OUT@/$1}"; done; }
    log "$name"
    {
        echo "## $name"
        echo
        echo "\`certplan ${args[*]//@OUT@/OUT}\`"
        echo
    } >>"$REPORT"

    # 1. disk, perf stat
    OUTDIR="$DISK/out-$name" bash -c "$prep"
    sync
    mapfile -d '' -t cmd < <(run_args "$DISK/out-$name")
    perf stat -x, -e task-clock -o "$DISK/stat.txt" "$CP" "${cmd[@]}" >/dev/null 2>"$DISK/err.txt" ||
        { cat "$DISK/err.txt" >&2; die "$name failed"; }
    local t0 t1
    OUTDIR="$DISK/out-$name" bash -c "$prep"
    sync
    t0="${EPOCHREALTIME/./}"
    "$CP" "${cmd[@]}" >/dev/null 2>&1
    t1="${EPOCHREALTIME/./}"
    cpu="$(awk -F, '$3 == "task-clock" {printf "%.3f", $1 / 1000}' "$DISK/stat.txt")"
    wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e6}')"

    # 2. disk, strace
    OUTDIR="$DISK/out-$name" bash -c "$prep"
    sync
    strace -f -c -w -o "$DISK/strace.txt" "$CP" "${cmd[@]}" >/dev/null 2>&1 || true

    # 3. tmpfs, perf record
    local shm_wall="—"
    if [[ -n $SHM ]]; then
        OUTDIR="$SHM/out-$name" bash -c "$prep"
        mapfile -d '' -t cmd < <(run_args "$SHM/out-$name")
        t0="${EPOCHREALTIME/./}"
        perf record -q -F 997 -g -o "$DISK/perf.data" "$CP" "${cmd[@]}" >/dev/null 2>&1 || true
        t1="${EPOCHREALTIME/./}"
        shm_wall="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e6}') s (under perf record)"
        rm -rf "$SHM/out-$name"
    fi

    {
        echo "| measure | value |"
        echo "|---|---|"
        echo "| wall time on disk | $wall s |"
        echo "| CPU time (task-clock, all threads) | $cpu s |"
        echo "| CPU use (CPU ÷ wall; 2.0 = both cores busy) | $(awk -v c="$cpu" -v w="$wall" 'BEGIN {printf "%.2f", c / w}') |"
        echo "| wall time on tmpfs | $shm_wall |"
        echo
        echo "Syscalls by wall time (strace -f -c -w, disk run; top 10):"
        echo
        echo '```text'
        sed -n '1,12p' "$DISK/strace.txt"
        grep -E 'total' "$DISK/strace.txt" || true
        echo '```'
        echo
        if [[ -s $DISK/perf.data ]]; then
            echo "CPU samples by shared object (tmpfs run):"
            echo
            echo '```text'
            perf report -i "$DISK/perf.data" --no-children --sort dso --stdio 2>/dev/null |
                grep -E '^ +[0-9]' | sed -n '1,8p' || true
            echo '```'
            echo
            echo "CPU samples by symbol (tmpfs run; top 20, self time):"
            echo
            echo '```text'
            perf report -i "$DISK/perf.data" --no-children --sort dso,sym --stdio -g none 2>/dev/null |
                grep -E '^ +[0-9]' | sed -n '1,20p' | cut -c1-160 || true
            echo '```'
            echo
        fi
    } >>"$REPORT"
    rm -rf "$DISK/out-$name" "$DISK/perf.data"
}

plan() { # WORKERS KEY [SAN]
    local f="$DISK/$2-$1${3:+-san}.toml"
    python3 "$BENCH/genplan.py" --workers "$1" --key "$2" ${3:+--extra-san "$3"} >"$f"
    echo "$f"
}

p_rsa="$(plan 100 rsa-2048)"
p_big="$(plan "$BIG" ecdsa-p256)"
p_1000="$(plan 1000 ecdsa-p256)"
p_san="$(plan 1000 ecdsa-p256 extra-api.bench.example.com)"
"$CP" apply "$p_1000" --out "$DISK/base-1000" >/dev/null
if [[ -n $SHM ]]; then cp -a "$DISK/base-1000" "$SHM/base-1000"; fi
export DISK SHM

profile "N=100 RSA-2048 full apply" 'rm -rf "$OUTDIR"' apply "$p_rsa" --out @OUT@
profile "N=$BIG ECDSA full apply" 'rm -rf "$OUTDIR"' apply "$p_big" --out @OUT@
profile "N=1000 nothing to do" \
    'rm -rf "$OUTDIR"; case "$OUTDIR" in "$SHM"/*) cp -a "$SHM/base-1000" "$OUTDIR";; *) cp -a "$DISK/base-1000" "$OUTDIR";; esac' \
    apply "$p_1000" --out @OUT@
profile "N=1000 one SAN added" \
    'rm -rf "$OUTDIR"; case "$OUTDIR" in "$SHM"/*) cp -a "$SHM/base-1000" "$OUTDIR";; *) cp -a "$DISK/base-1000" "$OUTDIR";; esac' \
    apply "$p_san" --out @OUT@

cp "$REPORT" "$OUT"
cat "$OUT"
log "wrote bench/results/profile.md"
