#!/usr/bin/env bash
# Benchmarks, with the targets from the issues:
#   validate of a 50-drill file as a whole process   (target < 20 ms)
#   plan of 1,000 drills over one year               (target < 200 ms)
#   one safety verdict over 100,000 pods              (target < 100 ms)
# Criterion measures the library calls; hyperfine times the release binary as users run it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v hyperfine >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine
fi

# Criterion first: it also writes the generated drill files to target/bench-data/.
cargo bench -p firedrill --bench config_and_plan
cargo bench -p firedrill-safety --bench verdict
cargo build --release -q

bin=target/release/firedrill
data=target/bench-data
hyperfine --warmup 5 --runs 50 -N \
  "$bin validate --config $data/drills-50.yaml" \
  "$bin plan --config $data/drills-1000.yaml --from 2026-11-23T00:00:00Z --until 2027-11-23T00:00:00Z --format json"
