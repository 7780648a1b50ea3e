"""Every Spark schema of the project, in one place, with each output table's merge keys.

Result tables carry `pipeline_hash` in their keys: the same article processed by another model
or another task definition is a different result and is kept side by side, while a rerun of
the same pipeline merges onto the same keys and adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)


def _schema(*fields: tuple[str, object]) -> StructType:
    return StructType([StructField(name, dtype, True) for name, dtype in fields])  # type: ignore[arg-type]


S, INT, L, B = StringType(), IntegerType(), LongType(), BooleanType()

# Canonical input record, before and after validation (input/reading.py).
RAW_ARTICLE = _schema(
    ("record_key", S), ("source", S), ("article_id", S), ("url", S), ("title", S),
    ("published_at", S), ("category", S), ("body", S), ("content_hash", S),
    ("reject_reason", S), ("payload", S),
)

# One sentence of an accepted article (segmentation step output).
SENTENCE = _schema(
    ("article_id", S), ("sentence_idx", INT), ("text", S), ("char_start", INT), ("char_end", INT),
    ("n_morphemes", INT),
)

# The segmentation step's output: sentences, plus one row with `reject_reason` (sentence_idx -1)
# per article that cannot be made to fit the model context.
SEGMENTED = StructType([*SENTENCE.fields, StructField("reject_reason", S, True)])

# One prompt to answer: a sentence x task (prompt step output). `prompt_key` identifies the engine
# call: equal keys get one engine call (deduplication); `sentence_key` keeps a sentence's prompts
# next to each other so the engine's prefix cache shares the sentence across tasks. `error` is set
# (and `prompt` null) when the prompt could not be built: that request gets an `error` extraction
# row without an engine call.
PROMPT_REQUEST = _schema(
    ("article_id", S), ("sentence_idx", INT), ("task", S), ("prompt_key", S), ("sentence_key", S), ("prompt", S),
    ("error", S),
)

# The generation step's output: one row per distinct prompt sent to an engine, with the engine's
# placement (which worker process, which GPU addresses) for checks and the run's statistics.
GENERATION = _schema(
    ("prompt_key", S), ("raw_output", S), ("finish_reason", S), ("n_prompt_tokens", INT),
    ("n_output_tokens", INT), ("error", S), ("engine_id", S), ("task_gpus", S), ("engine_gpus", S),
    ("spark_task_id", L), ("engine_starts", INT), ("engine_ms", DoubleType()),
    # epoch seconds: when the Spark task started, when this row was emitted (stage span, idle share)
    ("task_started_at", DoubleType()), ("emitted_at", DoubleType()),
)

# The inference step's output: one row per sentence x task, items still as JSON.
EXTRACTION_STAGE = _schema(
    ("article_id", S), ("sentence_idx", INT), ("task", S), ("prompt", S), ("raw_output", S),
    ("finish_reason", S), ("n_output_tokens", INT), ("parse_status", S), ("text_label", S),
    ("text_label_known", B), ("flags", ArrayType(S)), ("n_items", INT), ("items_json", S), ("error", S),
)

SPAN = StructType([
    StructField("role", S), StructField("text", S), StructField("char_start", INT),
    StructField("char_end", INT), StructField("grounded", B), StructField("snapped", B),
    StructField("pos", S), StructField("pos_ok", B),
    StructField("key", S),  # entity_keys.span_key(text): NFKC, width/case/space-folded, for grouping
])
# The JSON layout of `items_json`, produced by grounding.items_to_json.
ITEMS = ArrayType(StructType([
    StructField("item_idx", INT), StructField("label", S), StructField("label_known", B),
    StructField("spans", ArrayType(SPAN)),
]))

# Provenance on every result row: what produced it (see docs/tables.md).
PROVENANCE_COLUMNS = ("pipeline_hash", "model_id", "model_revision", "task_hash", "decoding_hash",
                      "package_version", "run_id")
_PROVENANCE = tuple((name, S) for name in PROVENANCE_COLUMNS)
_ITEM_KEY = (("article_id", S), ("published_date", DateType()), ("sentence_idx", INT), ("task", S),
             ("item_idx", INT))
_DATE = ("published_date", DateType())


@dataclass(frozen=True)
class TableSpec:
    name: str
    schema: StructType
    keys: tuple[str, ...]
    description: str
    # Result tables are partitioned by the article's publication date (its own calendar day, as
    # written in the source): nightly and date-bounded queries prune to the days they touch.
    partition_by: tuple[str, ...] = ("published_date",)
    # Columns besides the keys that queries filter on; see `stats_columns`.
    filtered_by: tuple[str, ...] = ()

    @property
    def stats_columns(self) -> tuple[str, ...]:
        """The columns Delta keeps min/max statistics of per file (data skipping): keys, run_id and
        `filtered_by`. Why not Delta's default (the first 32 columns): statistics over long text
        (prompts, raw outputs, bodies) cost every commit CPU time and skip nothing."""
        names = self.schema.fieldNames()
        wanted = [*self.keys, "run_id", *self.filtered_by]
        return tuple(dict.fromkeys(c for c in wanted if c in names and c not in self.partition_by))


TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("articles", _schema(
        ("article_id", S), ("url", S), ("title", S), ("published_at", S), ("published_date", DateType()),
        ("category", S), ("body", S), ("content_hash", S), ("n_sentences", INT), ("source", S),
        *_PROVENANCE, ("processed_at", TimestampType()),
    ), ("article_id", "pipeline_hash"), "accepted articles; written last, so a row marks the article done",
        filtered_by=("category", "content_hash")),
    TableSpec("sentences", _schema(
        ("article_id", S), _DATE, ("sentence_idx", INT), ("text", S), ("char_start", INT), ("char_end", INT),
        ("n_morphemes", INT), *_PROVENANCE,
    ), ("article_id", "sentence_idx", "pipeline_hash"), "sentences with offsets into the article body"),
    TableSpec("extractions", _schema(
        ("article_id", S), _DATE, ("sentence_idx", INT), ("task", S), ("text_label", S), ("text_label_known", B),
        ("raw_output", S), ("parse_status", S), ("flags", ArrayType(S)), ("n_items", INT),
        ("finish_reason", S), ("n_output_tokens", INT), ("error", S), ("prompt", S), *_PROVENANCE,
    ), ("article_id", "sentence_idx", "task", "pipeline_hash"), "one row per sentence x task",
        filtered_by=("text_label", "parse_status")),
    TableSpec("entities", _schema(
        *_ITEM_KEY, ("text_label", S), ("label", S), ("label_known", B), ("span", S),
        ("char_start", INT), ("char_end", INT), ("grounded", B), ("snapped", B), ("pos", S), ("pos_ok", B),
        *_PROVENANCE, ("span_key", S),
    ), ("article_id", "sentence_idx", "task", "item_idx", "pipeline_hash"), "named entities (pair items)",
        filtered_by=("label", "span_key")),
    TableSpec("sentiment_words", _schema(
        *_ITEM_KEY, ("text_label", S), ("label", S), ("label_known", B), ("span", S),
        ("char_start", INT), ("char_end", INT), ("grounded", B), ("snapped", B), ("pos", S), ("pos_ok", B),
        *_PROVENANCE, ("span_key", S),
    ), ("article_id", "sentence_idx", "task", "item_idx", "pipeline_hash"), "sentiment words with polarity",
        filtered_by=("label", "span_key")),
    TableSpec("relations", _schema(
        *_ITEM_KEY, ("text_label", S), ("head", S), ("head_start", INT), ("head_end", INT),
        ("relation", S), ("relation_known", B), ("tail", S), ("tail_start", INT), ("tail_end", INT),
        ("grounded", B), *_PROVENANCE, ("head_key", S), ("tail_key", S),
    ), ("article_id", "sentence_idx", "task", "item_idx", "pipeline_hash"), "relation triples",
        filtered_by=("relation", "head_key", "tail_key")),
    TableSpec("events", _schema(
        *_ITEM_KEY, ("text_label", S), ("event_type", S), ("event_type_known", B),
        ("arguments", ArrayType(SPAN)), ("grounded", B), *_PROVENANCE,
    ), ("article_id", "sentence_idx", "task", "item_idx", "pipeline_hash"), "event tuples",
        filtered_by=("event_type",)),
    TableSpec("quarantine", _schema(
        ("record_key", S), ("stage", S), ("reason", S), ("article_id", S), ("source", S),
        ("payload", S), *_PROVENANCE, ("quarantined_at", TimestampType()), ("content_hash", S),
    ), ("record_key", "stage", "pipeline_hash"), "input that could not be processed, with reason and stage", (),
        ("article_id",)),
    TableSpec("runs", _schema(
        ("run_id", S), ("started_at", TimestampType()), ("finished_at", TimestampType()), ("status", S),
        ("config_path", S), ("config_hash", S), ("pipeline_hash", S), ("model_id", S),
        ("model_revision", S), ("tasks", ArrayType(S)), ("input_path", S), ("articles_in", L),
        ("articles_skipped", L), ("articles_deferred", L), ("articles_processed", L), ("articles_quarantined", L),
        ("sentences", L), ("prompts", L), ("parse_ok", L), ("parse_partial", L), ("parse_invalid", L),
        ("engine_errors", L), ("wall_seconds", DoubleType()), ("package_version", S), ("error", S),
        ("engine_calls", L), ("dedup_hits", L), ("engines", L), ("engine_seconds", DoubleType()),
        ("inference_seconds", DoubleType()), ("prompts_per_second", DoubleType()), ("engines_json", S),
        ("outputs_at_item_bound", L), ("profile_json", S), ("drift_warnings", ArrayType(S)),
        ("step_seconds_json", S), ("engine_idle_share", DoubleType()), ("files_skipped", L),
    ), ("run_id",), "one row per run with its counts and engine figures", (),
        ("started_at", "status", "pipeline_hash")),
    TableSpec("input_files", _schema(
        ("file_path", S), ("file_length", L), ("file_modified_at", TimestampType()), ("records", L),
        ("pipeline_hash", S), ("run_id", S), ("recorded_at", TimestampType()),
    ), ("file_path", "file_length", "file_modified_at", "pipeline_hash"),
        "input files whose every record is finished (done or quarantined): later runs skip them unread "
        "while their length and modification time are unchanged (input/manifest.py)", ()),
    TableSpec("prompt_cache", _schema(
        ("prompt_key", S), ("task", S), ("raw_output", S), ("finish_reason", S), ("n_prompt_tokens", INT),
        ("n_output_tokens", INT), ("pipeline_hash", S), ("model_id", S), ("run_id", S),
        ("cached_at", TimestampType()),
    ), ("prompt_key",), "engine outputs by prompt (dedup across runs); errors are never cached", ()),
)}

# The tables a run writes an article's results to before its `articles` row (run/writing.py writes
# them side by side, in any order): where an interrupted run can leave rows of an unfinished article.
ARTICLE_RESULT_TABLES = ("sentences", "extractions", "entities", "sentiment_words", "relations", "events")

# `giellm-batch evaluate` results: one row per (evaluation, task).
EVALUATIONS = _schema(
    ("eval_id", S), ("evaluated_at", TimestampType()), ("dataset", S), ("mode", S), ("task", S),
    ("sequences", L), ("tl_accuracy", DoubleType()), ("wl_accuracy", DoubleType()),
    ("all_accuracy", DoubleType()), ("gold_items", L), ("matched_items", L), ("extra_items", L),
    ("statuses_json", S), ("skipped_records", L), ("model_id", S), ("pipeline_hash", S),
)
