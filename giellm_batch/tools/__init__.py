"""Operator commands besides the job: doctor, analytics SQL, the table reference.

Modules: doctor (checks a machine can run the job), sql (runs the sql/ files), schema_doc
(docs/tables.md from the schemas).
May import: everything but cli and resilience.
"""
