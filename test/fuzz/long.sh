#!/bin/sh
# Longer fuzzing runs than the suite's fixed budget. Each property gets about FUZZ_RUNS cases
# (split among the properties of a file); FUZZ_SEED picks another seed (default: the suite's).
#   test/fuzz/long.sh                 # 100000 runs, suite seed
#   FUZZ_RUNS=1000000 FUZZ_SEED=$(date +%s) test/fuzz/long.sh test/fuzz/dockerfile.fuzz.test.ts
# A failure prints fast-check's seed and path; replay it with FUZZ_SEED=<seed> FUZZ_PATH=<path>.
set -eu
cd "$(dirname "$0")/../.."
export FUZZ_RUNS="${FUZZ_RUNS:-100000}"
[ $# -gt 0 ] || set -- test/fuzz
exec npx vitest run --config test/vitest.config.ts "$@"
