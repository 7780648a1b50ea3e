"""What a run leaves for its operators: the runs table, drift checks, the HTML run report.

Modules: runs (RunSummary, the runs row, engine figures, lost runs), drift (the run's profile and
its comparison with earlier runs), report (the HTML report), charts (its SVG charts).
May import: schemas, config, spark, storage, warehouse.
"""
