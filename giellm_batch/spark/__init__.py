"""Spark itself: the session with Delta, the one spark-submit command, Spark jobs run side by side.

Modules: session (build_spark), submit (the spark-submit argument list, the JDK lookup),
concurrent_jobs (actions on one session from driver threads).
May import: config, schemas.
"""
