"""Train the text example's classifier for a few steps with Lightning's DDP strategy.

Run as a script: `python text_ddp_probe.py OUT DEVICES`. It trains both bodies of the example
(`scratch` and `minilm`, dropout off) through the example's own `train_classifier`, with
`strategy="ddp"` on `DEVICES` CPU processes (gloo) and a per-process batch of
`GLOBAL_BATCH // DEVICES`, so that 1 and 2 processes see the same global batches: Lightning
gives the training loader a `DistributedSampler` seeded by `seed_everything`, whose
permutation does not depend on the number of processes, and rank r takes every other index
of it. The inputs are real snippets, tokenized by a BPE tokenizer that every process trains
for itself, and random stand-ins for the MiniLM features. Process r adds r to every initial
parameter of its network, so DDP's start-up broadcast must overwrite process 1's.

Every process writes `OUT.<model>.<devices>.<rank>.npz`: its initial and trained parameters
(`init:<name>`, `param:<name>`), the logged (synchronised) metrics, the number of optimizer
steps, and a digest of its tokenizer's vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from gallery_lib import example_definitions
from gallery_lib.datasets import load_movie_snippets

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plot_text_classification.py"
GLOBAL_BATCH, STEPS, EPOCHS, N_EVAL, VOCAB = 16, 3, 2, 32, 1500


def inputs_and_labels(example):
    """Token ids of real snippets, random stand-in features, their labels; the vocab digest."""
    texts, labels = load_movie_snippets("vader")
    tokenizer = example.train_tokenizer(texts[:2000], VOCAB, example.Config().max_tokens)
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()))
    sizes = {"train": GLOBAL_BATCH * STEPS, "val": N_EVAL, "test": N_EVAL}
    generator = torch.Generator().manual_seed(0)
    inputs, split_labels, start = {}, {}, 0
    for name, size in sizes.items():
        chosen = slice(start, start + size)
        ids = example.token_ids(tokenizer, texts[chosen])
        features = torch.randn(size, example.MiniLMFeatures.width, generator=generator)
        inputs[name], split_labels[name] = (ids, features), labels[chosen]
        start += size
    return inputs, split_labels, hashlib.sha256(vocab.encode()).hexdigest()


def main(out: str, devices: int) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ.get("LOCAL_RANK", 0))
    example = example_definitions(EXAMPLE)
    inputs, labels, vocab_digest = inputs_and_labels(example)

    initial: dict[str, np.ndarray] = {}

    def make_body(model: str, vocab_size: int) -> torch.nn.Module:
        if model == "minilm":
            body = example.MiniLMAndEmbeddings(vocab_size, dropout=0.0)
        else:
            body = example.MeanOfEmbeddings(vocab_size, dropout=0.0)
        with torch.no_grad():  # process 1 starts elsewhere: DDP's broadcast must undo it
            for parameter in body.parameters():
                parameter.add_(float(rank))
        initial.update({f"init:body.{k}": v.numpy().copy() for k, v in body.state_dict().items()})
        return body

    example.make_body = make_body  # what `train_classifier` builds: the example's, no dropout
    for model in ("scratch", "minilm"):
        config = example.Config(
            model=model,
            epochs=EPOCHS,
            batch_size=GLOBAL_BATCH // devices,
            accelerator="cpu",
            devices=str(devices),
            strategy="ddp",
            vocab_size=VOCAB,
        )
        initial.clear()
        model_inputs = inputs if model == "minilm" else {k: v[:1] for k, v in inputs.items()}
        log_dir = Path(f"{out}.logs.{devices}")
        classifier, trainer = example.train_classifier(model_inputs, labels, config, log_dir)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        (test,) = trainer.test(classifier, datamodule=trainer.datamodule, verbose=False)
        metrics |= test
        params = {f"param:{k}": v.numpy() for k, v in classifier.state_dict().items()}
        np.savez(
            f"{out}.{model}.{devices}.{rank}.npz",
            **params,
            **initial,
            **metrics,
            steps=trainer.global_step,
            vocab=vocab_digest,
        )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
