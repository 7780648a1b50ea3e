#!/usr/bin/env bash
# Spark GPU discovery script: prints the GPUs this executor/worker may use, in Spark's
# ResourceInformation JSON, e.g. {"name": "gpu", "addresses": ["0", "1"]}.
# Set spark.executor.resource.gpu.discoveryScript (or spark.worker.resource.gpu.discoveryScript on a
# standalone worker) to this file.
set -euo pipefail
addresses=$(nvidia-smi --query-gpu=index --format=csv,noheader | sed -e 's/^ *//' -e 's/.*/"&"/' | paste -sd, -)
echo "{\"name\": \"gpu\", \"addresses\": [${addresses}]}"
