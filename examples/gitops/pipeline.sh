#!/usr/bin/env bash
# The PKI pipeline of a GitOps repository that commits a certplan plan and its
# whole output tree, secrets encrypted with age (`[secrets] age_recipients`).
# Any CI can run it from the repository's root; the user guide's GitOps recipe
# (book/src/recipes/gitops.md) explains each step, and certplan.yml beside
# this file is the same pipeline as a GitHub Actions workflow.
#
#   pipeline.sh review BASE    a pull request against the branch or commit BASE:
#                              check the plan, show its PKI diff against BASE
#                              and what `apply` would do to the committed tree.
#                              Needs no secret.
#   pipeline.sh apply          the main branch: check, apply, commit and push
#                              the files that changed. Needs the age identity
#                              when something must be signed.
#   pipeline.sh deploy [HOST...]
#                              install each host's files (every host of the
#                              tree when none is named) over ssh. Needs the age
#                              identity and ssh access to the hosts as root.
#
# Environment:
#   PLAN                   the plan (default: plan.toml)
#   OUT                    its output tree, committed (default: out)
#   CERTPLAN_AGE_IDENTITY  the age identity (`AGE-SECRET-KEY-1...`), from the
#                          CI's secret store; or CERTPLAN_AGE_IDENTITY_FILE
#   BRANCH                 where `apply` pushes its commit (default: main)
#   SSH_USER               who logs in to the hosts (default: root; another
#                          user runs tar with sudo)
set -euo pipefail

plan=${PLAN:-plan.toml}
out=${OUT:-out}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

review() {
    local base=${1:?usage: pipeline.sh review BASE}
    if ! git rev-parse --verify --quiet "$base^{commit}" > /dev/null; then
        echo "pipeline.sh: no commit \`$base\` here: fetch the base branch first" >&2
        exit 2
    fi

    # With the tree, check also knows how far a CA rotation has come.
    certplan check --deny warnings "$plan" --out "$out"

    # The PKI diff, for the reviewer: what the pull request adds, reissues
    # and removes, and which hosts and components it touches. A new plan
    # compares with /dev/null. The seven arguments are those of a git diff
    # driver, so that the title names the plan, not the temporary file (the
    # dots stand for hashes and modes, which certplan does not read). Exit
    # status 1 only says that the plans differ.
    local old=/dev/null status=0
    if git cat-file -e "$base:$plan" 2> /dev/null; then
        old=$tmp/base.toml
        git show "$base:$plan" > "$old"
    fi
    certplan diff "$plan" "$old" . . "$plan" . . || status=$?
    if ((status > 1)); then
        exit "$status"
    fi

    # What `apply` will do to the committed tree once this is merged,
    # renewals that came due and re-encryption included. `plan` reads no
    # secret: no identity here.
    certplan plan "$plan" --out "$out"

    if ! git diff --quiet "$base" HEAD -- "$out"; then
        echo "pipeline.sh: this pull request edits $out/ itself; only the pipeline's apply should write it" >&2
    fi
}

apply() {
    certplan check --deny warnings "$plan" --out "$out"

    # The identity comes from the environment, and is needed only when a
    # CA must sign something (a new or reissued certificate); otherwise
    # `apply` reads no secret. It decrypts in memory and writes secrets
    # encrypted only.
    local log=$tmp/apply.log
    certplan apply "$plan" --out "$out" | tee "$log"

    # A secret whose content did not change keeps its ciphertext, so this
    # commit holds exactly the files the plan's edit (or a renewal) changed.
    git add --all -- "$out"
    if git diff --cached --quiet; then
        echo "pipeline.sh: the tree already matched the plan; nothing to commit"
        return
    fi
    git -c user.name="certplan pipeline" -c user.email="certplan@localhost" \
        commit --quiet --file - <<EOF
certplan apply $plan

$(cat "$log")
EOF
    git push --quiet origin "HEAD:${BRANCH:-main}"
}

deploy() {
    local hosts=("$@") dir host untar="bsdtar -x --safe-writes -C /"
    if [[ ${SSH_USER:-root} != root ]]; then
        untar="sudo $untar"
    fi
    if ((${#hosts[@]} == 0)); then
        for dir in "$out"/hosts/*/; do
            hosts+=("$(basename "$dir")")
        done
    fi
    for host in "${hosts[@]}"; do
        echo "pipeline.sh: installing the files of $host" >&2
        # export checks the host's files against the plan and the tree's
        # state before it writes a byte, decrypts them in memory and streams
        # them as a tar archive: regular files only, owned by root, with their
        # modes. tar on the host creates missing directories and leaves the
        # ones it finds alone; nothing plaintext touches this machine's disk.
        # shellcheck disable=SC2029 # $untar is meant to expand here
        certplan export "$plan" --out "$out" --host "$host" --to - |
            ssh "${SSH_USER:-root}@$host" "$untar"
    done
    # Restarting the components that read new files is the hosts' business:
    # the pull request's `certplan plan` names them, in the order to restart.
}

case ${1:-} in
    review | apply | deploy)
        command=$1
        shift
        "$command" "$@"
        ;;
    *)
        echo "usage: pipeline.sh review BASE | apply | deploy [HOST...]" >&2
        exit 2
        ;;
esac
