"""Build a tiny, random-weight, vLLM-loadable smoke-test model.

Why this exists: the real GIELLM checkpoints live on the Hugging Face Hub, and no model
hub is reachable from the machines this project is built and tested on.  The tests and the
quickstart still need a *real* model directory that ``vllm.LLM(model=dir)`` can load, so
that the whole pipeline (prompt building, batched generation, structured outputs, parsing,
scoring) runs end to end.

This module writes such a directory: a LLaMA-architecture causal LM with seeded random
weights plus a byte-level BPE tokenizer trained on the fly (``tokenizers``) over the given
texts.  Byte-level means every string round-trips, including the GIELLM markup (``‹``,
``>``, ``:``, ``;``, full-width ``：`` ``；``, newlines) and any Japanese.  The model's
outputs are meaningless; it only exercises the machinery.

Usage: ``python -m giellm_batch.training.tiny_model --out /tmp/tinymodel --corpus data/``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MARKER_NAME = "giellm_tiny_model.json"
MARKER_FORMAT = 1
SPECIAL_TOKENS: tuple[str, ...] = ("<s>", "</s>", "<unk>", "<pad>")
BOS, EOS, UNK, PAD = SPECIAL_TOKENS
# Markup the project's prompts and outputs use; always part of the training corpus.
MARKUP_STRINGS: tuple[str, ...] = ("‹", ">", ":", ";", "\n", "：", "；", "/", "無い")
# Used by main() when no --corpus is given, so the quickstart works with no data at all.
FALLBACK_TEXTS: tuple[str, ...] = (
    "山田太郎は東京の大学で物理学を学んでいる。",
    "株式会社サンプルは大阪に新しい工場を建設すると発表した。",
    "昨日の試合では日本代表が二対一で勝利した。",
    "新しいスマートフォンの電池はとても長持ちする。",
)


@dataclass(frozen=True)
class TinyModelSpec:
    """Shape of the random model.  head_dim (hidden_size / num_heads) must be 64 on vLLM CPU."""

    vocab_size: int = 2000
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 2
    max_position_embeddings: int = 1024
    seed: int = 0
    # One token per character (bytes only for characters the corpus never showed): a span in the
    # output is then the same token sequence as in the input, which a small model learns to copy.
    char_level: bool = False
    # Output layer = input embedding. Why: copying a token from the input is then the identity map
    # from an attended embedding to its own logit, which a model trained from scratch finds sooner.
    tie_embeddings: bool = False


def texts_sha256(texts: Sequence[str]) -> str:
    """Digest of the training texts (length-prefixed, so the split points count)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", errors="surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _marker(spec: TinyModelSpec, texts: Sequence[str]) -> dict[str, Any]:
    return {"format": MARKER_FORMAT, "spec": asdict(spec), "texts_sha256": texts_sha256(texts)}


def built_marker(out_dir: Path) -> dict[str, Any] | None:
    """The build marker of the model in `out_dir` (spec, texts digest), or None if it has none."""
    try:
        found = json.loads((Path(out_dir) / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _is_up_to_date(out_dir: Path, marker: dict[str, Any]) -> bool:
    found = built_marker(out_dir)
    keys = ("format", "spec", "texts_sha256")
    return found is not None and all(found.get(k) == marker[k] for k in keys)


def _train_tokenizer(texts: Sequence[str], spec: TinyModelSpec) -> Any:
    """Train a byte-level BPE ``tokenizers.Tokenizer`` that prepends ``<s>``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if spec.char_level:  # merges never cross a character boundary
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([*texts, *MARKUP_STRINGS], trainer=trainer)
    bos_id = tokenizer.token_to_id(BOS)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    return tokenizer


def _write_model(tmp: Path, texts: Sequence[str], spec: TinyModelSpec) -> int:
    """Write tokenizer and model files into ``tmp``; return the actual vocabulary size."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    if spec.hidden_size % spec.num_heads:
        raise ValueError("hidden_size must be a multiple of num_heads")
    tokenizer = _train_tokenizer(texts, spec)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, unk_token=UNK, pad_token=PAD
    )
    fast.model_max_length = spec.max_position_embeddings
    fast.save_pretrained(str(tmp))
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": UNK, "pad_token": PAD}
    (tmp / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n", encoding="utf-8")
    vocab_size = int(tokenizer.get_vocab_size())  # may be < spec.vocab_size on a tiny corpus
    ids = {name: int(tokenizer.token_to_id(tok)) for name, tok in (("bos", BOS), ("eos", EOS), ("pad", PAD))}
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=ids["bos"],
        eos_token_id=ids["eos"],
        pad_token_id=ids["pad"],
        tie_word_embeddings=spec.tie_embeddings,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config).float().eval()
    model.generation_config = GenerationConfig(
        bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["pad"]
    )
    model.save_pretrained(str(tmp))
    return vocab_size


def build_tiny_model(
    out_dir: Path, texts: Sequence[str], spec: TinyModelSpec = TinyModelSpec(), force: bool = False
) -> Path:
    """Build the model into ``out_dir`` (atomically) unless an identical build is there."""
    out_dir = Path(out_dir)
    marker = _marker(spec, texts)
    if not force and _is_up_to_date(out_dir, marker):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        marker["vocab_size_actual"] = _write_model(tmp, texts, spec)
        (tmp / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    swap_in_directory(tmp, out_dir)
    return out_dir


def swap_in_directory(tmp: Path, out_dir: Path) -> None:
    """Replace `out_dir` by the finished folder `tmp` (same parent) so readers never see half a model."""
    try:
        for path in tmp.iterdir():  # mkdtemp and safetensors create owner-only files
            path.chmod(0o644)
        tmp.chmod(0o755)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            out_dir.rename(old / out_dir.name)
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_corpus(dirs: Sequence[Path]) -> list[str]:
    """All ``*.txt`` files under ``dirs`` (recursively, sorted), read as UTF-8."""
    files = sorted(p for d in dirs for p in Path(d).rglob("*.txt") if p.is_file())
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m giellm_batch.training.tiny_model",
        description=(
            "Build a tiny LLaMA-architecture model with RANDOM weights and a byte-level BPE "
            "tokenizer trained on the given texts, saved as a Hugging Face directory that "
            "vllm.LLM(model=DIR) loads on CPU. Its outputs and labels are meaningless: it only "
            "exercises the pipeline (tests, quickstart) where no model hub is reachable. "
            "Re-running with the same inputs is a no-op."
        ),
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="output model directory")
    parser.add_argument(
        "--corpus",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="folder whose *.txt files (recursively) train the tokenizer; repeatable "
        "(default: a few built-in Japanese sentences)",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if DIR is up to date")
    parser.add_argument(
        "--vocab-size",
        type=int,
        default=TinyModelSpec.vocab_size,
        help="maximum tokenizer vocabulary size (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=TinyModelSpec.seed,
        help="seed for the random weights (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    for d in args.corpus:
        if not d.is_dir():
            parser.error(f"--corpus {d}: not a directory")
    texts = read_corpus(args.corpus) if args.corpus else list(FALLBACK_TEXTS)
    spec = TinyModelSpec(vocab_size=args.vocab_size, seed=args.seed)
    out = build_tiny_model(args.out, texts, spec, force=args.force)
    print(f"tiny model ready: {out} ({len(texts)} training texts; weights are random)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
