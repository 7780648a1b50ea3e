"""giellm-batch: GIELLM information extraction over Japanese news with Spark, vLLM and Delta Lake.

Driver-side modules (config, tasks, pipeline, records, tables, spark_session, job, cli) never
import vllm or torch; executor-side code (engine, inference, segmentation steps) imports them
inside the functions Spark ships to workers.
"""
