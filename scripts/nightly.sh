#!/usr/bin/env bash
# Nightly wrapper for cron: runs the extraction job, keeps a log per run, exits non-zero on failure.
#
#   # m h dom mon dow  command
#   30 2 * * *  /opt/giellm-batch/scripts/nightly.sh /etc/giellm/prod.yaml >> /var/log/giellm/cron.log 2>&1
#
# Environment: GIELLM_LOG_DIR (default ./logs), SPARK_SUBMIT_ARGS (e.g. "--master yarn --deploy-mode client"),
# GIELLM_OPTIMIZE_WEEKDAY (1-7, default 7: run `giellm-batch optimize` after Sunday's run),
# GIELLM_FAIL_ON_DRIFT=1 (exit 4 when the run succeeded but drifted from the previous runs, so cron
# alerts; the run's report is <warehouse>/_reports/latest.html either way).
set -euo pipefail
cd "$(dirname "$0")/.."
config="${1:-conf/local.yaml}"
log_dir="${GIELLM_LOG_DIR:-logs}"
mkdir -p "$log_dir"
log="$log_dir/extract-$(date -u +%Y%m%dT%H%M%SZ).log"
bin=".venv/bin"
export PATH="$PWD/$bin:$PATH"

echo "$(date -u +%FT%TZ) giellm-batch nightly: config=$config log=$log"
# The project's one spark-submit command (giellm_batch/spark/submit.py: Delta --packages, the driver's
# JVM options). SPARK_SUBMIT_ARGS come after the project's options: one given again there wins.
# shellcheck disable=SC2086
if "$bin/giellm-batch" spark-submit ${SPARK_SUBMIT_ARGS:-} \
    -- jobs/extract.py --config "$config" ${GIELLM_FAIL_ON_DRIFT:+--fail-on-drift} >"$log" 2>&1; then
  summary=$(grep -E '^\{"run_id"' "$log" | tail -n 1)
  echo "$(date -u +%FT%TZ) succeeded: $summary"
else
  status=$?
  if [ "$status" = 4 ]; then
    echo "$(date -u +%FT%TZ) DRIFT: the run succeeded but drifted; see runs.drift_warnings and the run report" >&2
  else
    echo "$(date -u +%FT%TZ) FAILED (exit $status); see $log and the runs table (status, error)" >&2
  fi
  tail -n 20 "$log" >&2
  exit "$status"
fi
if [ "$(date -u +%u)" = "${GIELLM_OPTIMIZE_WEEKDAY:-7}" ]; then
  warehouse=$(python3 -c "import sys; from giellm_batch.config.job_config import load_config; print(load_config(sys.argv[1]).output.warehouse)" "$config")
  "$bin/giellm-batch" optimize --warehouse "$warehouse" >>"$log" 2>&1
  echo "$(date -u +%FT%TZ) optimized $warehouse"
fi
