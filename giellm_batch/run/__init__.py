"""The extraction job on the driver: options, the steps in order, the rows each table receives.

Modules: job (the CLI arguments and `main` behind jobs/extract.py), driver (run_job: lock, steps,
runs row, report; `process` shows the order), job_steps (select_input, segment, extract, set_aside),
writing (write_results), selection (what a run processes), records (output rows per table),
dedup (the prompt_cache table), evaluate (scoring a model on labelled data through the same chain).
May import: every subpackage below it (see pyproject.toml [tool.giellm-batch.layout]); never
tools, training, resilience or cli.
"""
