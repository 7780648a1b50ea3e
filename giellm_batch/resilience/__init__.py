"""Resilience tooling: kill the real job at any moment and check that a plain rerun recovers.

`chaos` starts `spark-submit jobs/extract.py` with the command `giellm-batch spark-submit` runs
(spark/submit.py), SIGKILLs its whole process tree (driver JVM, Python driver, Python workers and
their engines) at a chosen moment, reruns the same command and compares every table with a clean
run's. Used by `bench/chaos.py` and the chaos test. It imports from the extraction core; the core never imports it.
"""
