"""The job's settings: YAML in conf/ loaded once into a typed, validated JobConfig.

Modules: job_config (load_config, JobConfig, every validation with a message saying what to fix),
settings (one dataclass per YAML section, every field documented).
May import: giellm (the task registry), isolation (the per-record bounds). Nothing that touches Spark.
"""
