#!/usr/bin/env bash
# Runs every libFuzzer harness (tests/fuzz) for FUZZ_SECONDS (default 30)
# over a scratch copy of its committed seed corpus, as part of the tests:
# fails if any harness crashes. The seed is fixed so that a test run does
# not fail on new ground that it happened to explore: finding new bugs is
# the job of long campaigns (scripts/fuzz-campaign.sh), whose finds become
# committed seeds and tests. Needs clang and libclang-rt-14-dev
# (scripts/install-deps.sh). Long campaigns: scripts/fuzz-campaign.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-30} FUZZ_SEED=${FUZZ_SEED:-1} FUZZ_SCRATCH=1 exec bash scripts/fuzz-campaign.sh "$@"
