"""giellm-batch: GIELLM information extraction over Japanese news with Spark, vLLM and Delta Lake.

Driver-side code (config, run, warehouse, monitoring, spark, cli) never imports vllm or torch;
executor-side code (engine, steps) imports them inside the functions Spark ships to workers.
docs/architecture.md maps the subpackages.
"""
