"""The configured input -> canonical RAW_ARTICLE rows, one per record, accepted or rejected with a reason.

Modules: files (what Spark lists and reads, size limits, unread files), decoding (one record's
bytes -> a row), read_step (the read steps: DecodeFilesStep, ValidateTableStep), reading
(read_articles), manifest (the input_files table: files finished and unchanged are not read again).
May import: schemas, config, isolation, spark, storage, warehouse, text, steps (the step base).
"""
