"""The GIELLM format itself, independent of Spark and of any engine.

Modules: tasks (+ tasks.yaml: the task registry), prompts (prompt building), parsing (the
`‹label>IW:...` answer parser), grammar (grounded decoding's per-prompt grammar), regex_constraint
(regex decoding), metrics (scores against labelled data).
May import: nothing else in giellm_batch.
"""
