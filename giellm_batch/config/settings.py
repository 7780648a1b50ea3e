"""The job's settings: one frozen dataclass per YAML section, every field documented.

Plain data, built and validated by `config.load_config` (which re-exports these names); the
hashes that key results and the prompt cache (`JobConfig.pipeline_hash`) are defined here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from giellm_batch.giellm.tasks import TaskRegistry, TaskSpec
from giellm_batch.isolation.process import IsolationLimits

InputFormat = Literal["livedoor", "jsonl", "parquet", "delta"]
INPUT_FORMATS: tuple[str, ...] = typing.get_args(InputFormat)
Decoding = Literal["grounded", "regex", "free"]
SpanBoundaries = Literal["morphemes", "noun_phrases", "characters"]


class ConfigError(ValueError):
    """A configuration problem; the message lists every problem and how to fix it."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


@dataclass(frozen=True)
class SparkSettings:
    """How the driver builds its SparkSession (ignored where spark-submit already set a value)."""

    master: str = "local[*]"  # used only when spark-submit gave no --master
    app_name: str = "giellm-batch"
    shuffle_partitions: int = 8  # small default: sample-sized data; raise on clusters
    conf: dict[str, str] = field(default_factory=dict)  # extra spark.* settings, passed through


@dataclass(frozen=True)
class ColumnMapping:
    """Input column names (jsonl/parquet/delta); the Livedoor reader fills them itself."""

    id: str = "id"
    body: str = "body"
    title: str = "title"
    url: str = "url"
    published_at: str = "published_at"
    category: str = "category"


# input.skip_finished_files_from when not configured: decided by the input's store (InputSettings.manifest_from).
MANIFEST_BY_STORE = -2
MANIFEST_FROM_LOCAL = 50_000  # files: where the manifest pays on a local disk


def is_local_path(path: str) -> bool:
    """A path on the local file system: no scheme, or file: (not an object store or another file system)."""
    scheme = path.partition(":")[0].lower() if "://" in path or path.startswith("file:") else ""
    return scheme in ("", "file")


@dataclass(frozen=True)
class InputSettings:
    """Where the articles come from."""

    path: str = ""  # file, directory or Delta table path; relative paths resolve against the config file
    format: InputFormat = "livedoor"
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    # Livedoor/JSONL input of at least this many files: files the `input_files` table records as
    # finished (every record done or quarantined) are skipped unread while their length and
    # modification time are unchanged (input/manifest.py). Below it every file is read every run.
    # 0: always use the manifest; -1: never. Left out: by where the input is (`manifest_from`).
    skip_finished_files_from: int = MANIFEST_BY_STORE

    def manifest_from(self) -> int:
        """The `skip_finished_files_from` in effect: the configured value, else by the input's store.

        Local disk: MANIFEST_FROM_LOCAL files. Reading a local file costs ~0.2 ms, so below ~20,000
        files reading them all costs less than the manifest's own listing, lookup and commit
        (~3 s a night, docs/measurements.md). Any other scheme (s3a://, gs://, abfs://, hdfs://...):
        0, the manifest from the first file. There each file read is at least one request to the
        store (a GET, ~10-50 ms and billed), so reading every file every night would make a night's
        requests and time grow with the whole archive instead of with the night's news."""
        if self.skip_finished_files_from != MANIFEST_BY_STORE:
            return self.skip_finished_files_from
        return MANIFEST_FROM_LOCAL if is_local_path(self.path) else 0


@dataclass(frozen=True)
class OutputSettings:
    """Where the Delta tables go: one directory per table under `warehouse`."""

    warehouse: str = "warehouse"
    # A run refreshes its warehouse lock's heartbeat while it runs; a lock whose heartbeat is older
    # than this is a dead run's and is taken over by the next run (see warehouse/locking.py).
    lock_stale_seconds: float = 120.0


@dataclass(frozen=True)
class ObjectStoreSettings:
    """How `s3a://` paths (input, warehouse) are reached: by Spark's S3A connector, by the driver's own
    files (lock, intents, reports) and by the JVM-free readers (`giellm-batch sql --engine duckdb`).

    Credentials are never set here, so they never land in a config copy, a table or a report: S3A
    and delta-rs take them from the standard chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
    AWS_SESSION_TOKEN in the environment, then the instance or pod role). Any other S3A key
    (`spark.hadoop.fs.s3a.*`) can still be given under `spark.conf`; it wins over these."""

    endpoint: str = ""  # an S3-compatible store's URL, e.g. http://minio.internal:9000; empty = AWS S3
    region: str = ""  # the signing region, e.g. eu-west-1; empty = the AWS SDK's own lookup
    path_style: bool = False  # bucket in the URL path, not the host name: most S3-compatible stores need true
    # auto: a run with an s3a:// path adds org.apache.hadoop:hadoop-aws at the Hadoop version pip's
    # pyspark bundles (and the AWS SDK it pulls, ~690 MB once into the Ivy cache); provided: the
    # cluster's Spark already has S3A (EMR, Dataproc, Databricks, an image with the jars in place).
    hadoop_aws: Literal["auto", "provided"] = "auto"


@dataclass(frozen=True)
class ModelSettings:
    """Which checkpoint vLLM loads."""

    path: str = ""  # local HF directory, or a hub id when source == "hub"
    source: Literal["local", "hub"] = "local"
    name: str = ""  # recorded as model_id in the tables; defaults to the directory name
    revision: str = ""  # recorded for provenance (hub revision or your own version tag)
    # A LoRA adapter folder (`giellm-batch finetune` with method: lora) that vLLM serves on top of
    # `path` without merging; empty = the base model alone. Its folder name joins the model_id.
    adapter: str = ""
    max_lora_rank: int = 16  # vLLM's LoRA slot size: at least the adapter's r


@dataclass(frozen=True)
class EngineSettings:
    """vLLM engine and decoding settings. Decoding is always greedy."""

    max_new_tokens: int = 128  # hard bound per output; hitting it marks the parse `partial`
    max_model_len: int = 1024  # context length given to vLLM; longer prompts are quarantined
    dtype: str = "auto"  # "bfloat16"/"float16" on GPU; "auto" lets vLLM pick (bf16/fp32 on CPU)
    kv_cache_memory_bytes: int = 0  # explicit KV-cache size; 0 = use gpu_memory_utilization
    gpu_memory_utilization: float = 0.9
    tensor_parallel_size: int = 1
    max_num_seqs: int = 256
    enable_prefix_caching: bool = True  # the sentence leads every prompt, so tasks share a prefix
    enforce_eager: bool = False  # skip graph compilation: a much faster engine start (short runs, tests)
    # grounded: every span can only be a substring of its sentence (one grammar per prompt; exact
    # offsets); regex: outputs always parse, spans are free text; free: no constraint. Quality and
    # speed of each: docs/measurements.md.
    decoding: Decoding = "grounded"
    # Grounded decoding: where a span may start and end. morphemes: only where one of the sentence's
    # MeCab morphemes does (a name is whole words, never half of one); noun_phrases: only at the
    # edges of runs of nouns, prefixes and suffixes (東京都千代田区, never 東京都 inside it);
    # characters: anywhere.
    # docs/quality.md measures both on real text.
    span_boundaries: SpanBoundaries = "morphemes"
    # Optional safety bounds for constrained decoding, 0 = none (the default: max_new_tokens bounds
    # an output, and a cut one is `partial`). A bound cuts correct outputs that need more, so keep it
    # far above what your sentences need; plumbing tests use small ones for speed.
    max_items: int = 0  # most items per output
    max_span_chars: int = 0  # longest span in characters (regex decoding; grounded spans fit the sentence)
    batch_size: int = 512  # prompts prepared and added to the engine at a time (one slice)
    seed: int = 0
    quantization: str = ""  # e.g. "awq"; empty = none


@dataclass(frozen=True)
class SegmentationSettings:
    """Sentence splitting."""

    max_sentence_chars: int = 300  # longer sentences are split at a morpheme boundary, never cut
    min_sentence_chars: int = 2  # shorter fragments (stray punctuation) are dropped from prompts
    # Longer article bodies are quarantined whole, with a reason naming this bound (real news
    # articles are far shorter; a multi-megabyte body is a broken export, not an article).
    max_article_chars: int = 200_000
    # Characters per MeCab call: longer text is tagged in windows, offsets kept exact. MeCab
    # segfaults on one call of ~190,000+ characters of some inputs (text/segmentation.py).
    mecab_max_chars: int = 20_000


@dataclass(frozen=True)
class ExecutionSettings:
    """How the inference stage is placed on the cluster and fed."""

    # GPUs each inference Spark task asks for through a stage-level ResourceProfile; its engine is pinned
    # to the addresses Spark assigns (TaskContext.resources()). 0 = CPU engines, no GPU request.
    gpus_per_engine: int = 0
    cpus_per_engine: int = 1  # CPU cores each inference Spark task reserves (with gpus_per_engine > 0)
    gpu_resource_name: str = "gpu"  # the resource name your executors' GPU discovery script reports
    # Inference partition size in prompts: smaller gives steadier progress and load balance across
    # engines, larger fewer Spark tasks. The engine is cached per worker, so many partitions cost little.
    prompts_per_partition: int = 4000
    dedup: bool = True  # send each distinct prompt to the engine once; reuse outputs across runs (prompt_cache)
    progress_interval_seconds: float = 30.0  # how often the driver logs prompts done, prompts/s and ETA
    # Runs whose articles to process hold at most this many characters of body text keep their step
    # outputs (sentences, prompts, answers, parsed rows) in the driver's memory instead of staging
    # files: a night's few articles skip a write, commit and listing per step. The driver then holds
    # about 3 bytes x characters x (1 + 3 x tasks), twice (Python and JVM), ~40 MB at the default
    # with 4 tasks (~100-200 news articles), plus the engine's answers (at most engine.max_new_tokens
    # each, twice). 0 = always stage files.
    driver_staging_max_chars: int = 300_000
    # Per-record isolation (isolation/process.py): each batch of per-record work (decode, segment, prompt,
    # tokenize + grammar, parse) runs in a forked child process, so a record that crashes native
    # code, hangs or exhausts memory is quarantined (stage crash / timeout / memory) and the rest
    # of the batch completes. false: work in the Python worker itself (no such protection).
    isolate_records: bool = True
    record_timeout_seconds: float = 60.0  # no single record's work in one step may take longer
    record_memory_bytes: int = 4 << 30  # memory one batch's child may take beyond its Python worker

    def isolation(self) -> IsolationLimits:
        return IsolationLimits(self.isolate_records, self.record_timeout_seconds, self.record_memory_bytes)


@dataclass(frozen=True)
class MonitoringSettings:
    """Drift checks (each run against the previous successful runs of the same pipeline) and the run report."""

    drift_window: int = 5  # previous successful runs (with prompts) the run is compared with; 0 = no checks
    min_prompts: int = 50  # runs with fewer prompts are neither checked nor used as reference (too noisy)
    max_ok_rate_drop: float = 0.10  # parse-ok rate below the reference mean by more than this
    max_quarantine_share_rise: float = 0.10  # quarantined / articles in, above the reference by more
    max_items_change: float = 0.5  # items per sentence (per task) differs by more than this factor of the reference
    max_label_divergence: float = 0.15  # Jensen-Shannon divergence (bits, 0..1) of a task's text-label mix
    max_ungrounded_share_rise: float = 0.10  # spans not found in their sentence, above the reference by more
    report: bool = True  # write <warehouse>/_reports/<run_id>.html and latest.html after each run


@dataclass(frozen=True)
class JobConfig:
    """Everything one run needs; built by `load_config`."""

    source: str  # the YAML file this came from
    spark: SparkSettings
    input: InputSettings
    output: OutputSettings
    model: ModelSettings
    engine: EngineSettings
    segmentation: SegmentationSettings
    tasks: tuple[str, ...]  # task names to run, from the registry
    task_registry: TaskRegistry
    execution: ExecutionSettings = field(default_factory=ExecutionSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    object_store: ObjectStoreSettings = field(default_factory=ObjectStoreSettings)

    def paths(self) -> tuple[str, ...]:
        """The locations this run reads and writes (which decide the connectors it needs)."""
        return (self.input.path, self.output.warehouse)

    @property
    def model_id(self) -> str:
        base = self.model.name or Path(self.model.path).name
        return f"{base}+{Path(self.model.adapter).name}" if self.model.adapter else base

    def selected_tasks(self) -> list[TaskSpec]:
        return [self.task_registry.tasks[name] for name in self.tasks]

    def task_hash(self) -> str:
        """Prompt profiles + the selected task definitions (IW, labels, item shape)."""
        return _digest({
            # A task without its own span_boundaries hashes as it did before the field existed, so
            # warehouses written then are still this pipeline's when nothing else changed.
            "tasks": [{k: v for k, v in dataclasses.asdict(t).items() if k != "span_boundaries" or v}
                      for t in self.selected_tasks()],
            "profiles": {k: dataclasses.asdict(v) for k, v in self.task_registry.profiles.items()},
        })

    def decoding_hash(self) -> str:
        """Decoding and segmentation settings that change what the model is asked and may answer."""
        eng = self.engine
        return _digest({
            # Spans anywhere ("characters") was the only grounded decoding before span_boundaries.
            "decoding": [eng.max_new_tokens, eng.decoding, eng.max_items, eng.max_span_chars,
                         *([eng.span_boundaries] if eng.span_boundaries != "characters" else [])],
            # The bounds decide what is quarantined, not what a processed article yields: changing
            # them must not make finished articles look unfinished.
            "segmentation": {k: v for k, v in dataclasses.asdict(self.segmentation).items()
                             if k not in ("max_article_chars", "mecab_max_chars")},
        })

    def pipeline_hash(self) -> str:
        """Identifies what produced a result: model + task definitions + decoding.

        Results carry it so a rerun with the same pipeline skips finished articles, while a
        different model or prompt version is kept side by side.
        """
        return _digest([self.model_id, self.model.revision, self.task_hash(), self.decoding_hash()])


def _digest(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
