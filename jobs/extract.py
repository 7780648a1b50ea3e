"""spark-submit entry point: `spark-submit --packages <delta> jobs/extract.py --config conf/local.yaml`.

`giellm-batch spark-submit -- jobs/extract.py --config conf/local.yaml` runs the same with the
project's options (giellm_batch/spark/submit.py). Only wires things together; see giellm_batch.run.job
for the steps and `--help` for the options.
"""

from giellm_batch.run.job import main

if __name__ == "__main__":
    raise SystemExit(main())
