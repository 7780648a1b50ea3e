"""spark-submit entry point for evaluation: `spark-submit --packages <delta> jobs/evaluate.py FILE --config ...`."""

from giellm_batch.run.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
