"""The Delta warehouse: tables, key-based MERGE writes, the writer lock, write intents, staging, maintenance.

Modules: tables (create/upgrade tables, write_rows, reads), locking (one writer per warehouse,
leases and takeover), intents (write intents: a run that died mid-write is detected), staging
(step outputs materialised once per run), maintenance (OPTIMIZE/VACUUM).
May import: schemas, config, isolation, spark, storage.
"""
