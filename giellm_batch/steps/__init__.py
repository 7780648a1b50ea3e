"""The per-record steps and the one inference chain that composes them.

Modules: base (BatchStep: declared input columns and output schema, checked before Spark plans),
plan (ExtractionPlan, built on the driver), segment, prompt, generate, parse (the batch steps),
chain (prompt -> dedup -> generate -> answers joined back -> parse, used by the job, evaluation,
benches and tests alike), progress (the driver's inference progress log).
May import: schemas, config, giellm, text, engine, isolation.
"""
