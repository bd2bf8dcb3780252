# Sourced by scripts/test for --stress N: the flake check. Builds the tests once, keeps every
# CPU busy with stress-ng, runs the whole test suite (FIREGRID_TEST=1) N times, and reports
# every failure with its test name and round. The load is stopped (by its process id) at the
# end, also on Ctrl-C.

stress_rounds() {
  local rounds=$1 cpus log_dir round failures=0 load_pid
  cpus=$(nproc)
  log_dir=$(mktemp -d -t firegrid-stress.XXXXXX)
  echo "==> building the tests"
  cargo test --workspace --locked --no-run >"$log_dir/build.log" 2>&1 || {
    echo "scripts/test --stress: the tests do not build (log: $log_dir/build.log)"
    return 1
  }
  # Every CPU at 100 %: the tests compete with the load for each of them.
  stress-ng --cpu "$cpus" --cpu-load 100 --quiet >"$log_dir/stress-ng.log" 2>&1 &
  load_pid=$!
  trap 'kill "$load_pid" 2>/dev/null' EXIT INT TERM
  echo "==> load: stress-ng --cpu $cpus --cpu-load 100 (pid $load_pid)"
  local summary=()
  for round in $(seq 1 "$rounds"); do
    local log="$log_dir/round-$round.log" start=$SECONDS
    echo "==> round $round of $rounds"
    FIREGRID_TEST=1 cargo test --workspace --locked --no-fail-fast >"$log" 2>&1
    local status=$? load
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    local passed failed names
    passed=$(grep -ho 'test result: .*' "$log" | sed -E 's/.* ([0-9]+) passed.*/\1/' | paste -sd+ | bc)
    failed=$(grep -ho 'test result: .*' "$log" | sed -E 's/.* ([0-9]+) failed.*/\1/' | paste -sd+ | bc)
    names=$(grep -E '^test .* \.\.\. FAILED$' "$log" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/')
    summary+=("round $round: ${passed:-0} passed, ${failed:-0} failed, $((SECONDS - start)) s, load average $load (log: $log)")
    if [ "$status" != 0 ] || [ "${failed:-0}" != 0 ]; then
      failures=$((failures + 1))
      if [ -n "$names" ]; then
        while read -r n; do summary+=("  FAILED in round $round: $n"); done <<<"$names"
      else
        summary+=("  FAILED in round $round: cargo test exited $status without a failing test (a test binary crashed?)")
      fi
    fi
  done
  kill "$load_pid" 2>/dev/null
  wait "$load_pid" 2>/dev/null
  trap - EXIT INT TERM
  echo
  echo "== Stress summary ($rounds rounds, $cpus CPUs kept busy by stress-ng) =="
  printf '%s\n' "${summary[@]}"
  if [ "$failures" != 0 ]; then
    echo "scripts/test --stress: FAILED in $failures of $rounds rounds (logs in $log_dir)"
    return 1
  fi
  echo "scripts/test --stress: $rounds rounds, no failure"
}
