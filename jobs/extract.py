"""spark-submit entry point: `spark-submit --packages <delta> jobs/extract.py --config conf/local.yaml`.

Only wires things together; see giellm_batch.run.job for the steps and `--help` for the options.
"""

from giellm_batch.run.job import main

if __name__ == "__main__":
    raise SystemExit(main())
