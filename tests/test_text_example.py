"""The text-classification example: data parsing, bad inputs, determinism, the baseline claim.

The example runs once in quick mode (a subset of 800 snippets, MiniLM features) and its
functions are then called from the namespace it left behind.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import torch
from support import ROOT, quick_env

EXAMPLE = ROOT / "examples" / "plot_text_classification.py"


@pytest.fixture(scope="module")
def example() -> dict[str, Any]:
    """The globals of the example after a quick run in this process."""
    saved = dict(os.environ)
    os.environ.update(GALLERY_QUICK="1", MPLBACKEND="Agg")
    try:
        return runpy.run_path(str(EXAMPLE), run_name="text_example")
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_vader_counts_after_dropping_zeros(example: dict[str, Any]) -> None:
    texts, labels = example["load_corpus"]("vader")
    assert len(texts) == len(labels) == 10_605 - 37
    assert int(labels.sum()) == 5242
    assert int((labels == 0).sum()) == 5326
    assert all(isinstance(t, str) and t for t in texts)


def test_parse_ground_truth(example: dict[str, Any]) -> None:
    texts, ratings = example["parse_ground_truth"]("1\t2.5\tGood.\r\n2\t-0.4\tMeh \r\n\r\n")
    assert texts == ["Good.", "Meh"]
    np.testing.assert_allclose(ratings, [2.5, -0.4])
    with pytest.raises(ValueError, match="line 1 has 2 tab-separated fields, expected 3"):
        example["parse_ground_truth"]("1\tno rating")


def test_split_is_disjoint_and_seeded(example: dict[str, Any]) -> None:
    split = example["split_indices"]
    a, b = split(1000, 3), split(1000, 3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(1000))
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (800, 100, 100)
    assert not np.array_equal(split(1000, 4)["test"], a["test"])


def test_unknown_data_source(example: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown data_source 'imdb': choose one of vader"):
        example["load_corpus"]("imdb")


def test_hub_source_without_datasets_says_how_to_fix(
    example: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ImportError, match=r"pip install datasets"):
        example["load_corpus"]("rotten_tomatoes")


def test_predict(example: dict[str, Any]) -> None:
    predictions = example["predict"](["What a wonderful film.", "Dull."])
    assert [label in ("positive", "negative") for label, _ in predictions] == [True, True]
    assert all(0.0 <= p <= 1.0 for _, p in predictions)
    (single,) = example["predict"]("What a wonderful film.")
    assert single == pytest.approx(predictions[0])


@pytest.mark.parametrize(
    ("sentence", "label"),
    [
        ("What a wonderful film.", "positive"),
        ("A brilliant, moving masterpiece.", "positive"),
        ("I loved every minute of it.", "positive"),
        ("Dull.", "negative"),
        ("A terrible, boring waste of time.", "negative"),
    ],
)
def test_predict_gets_obvious_sentences_right(
    example: dict[str, Any], sentence: str, label: str
) -> None:
    ((predicted, probability),) = example["predict"](sentence)
    assert predicted == label, f"{sentence!r}: {predicted} (p(positive) = {probability:.2f})"


@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        ("", ValueError, "sentence 0 is empty"),
        (["fine", "   "], ValueError, "sentence 1 is empty"),
        (42, TypeError, "expects a string or a non-empty list of strings"),
        ([], TypeError, "expects a string or a non-empty list of strings"),
        (["fine", None], TypeError, "sentence 1 is a NoneType, expected a string"),
    ],
)
def test_predict_refuses_bad_input(
    example: dict[str, Any], bad: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        example["predict"](bad)


def test_quick_run_printed_sane_results(example: dict[str, Any]) -> None:
    assert example["config"].subset == 800
    # 80 test snippets: 54 right or more happens by chance (p = 0.5) about once in 860 runs.
    test_size = len(example["splits"]["test"])
    assert test_size == 80
    assert example["test_accuracy"] >= 54 / test_size, example["test_accuracy"]
    assert example["test_accuracy"] > example["baseline_accuracy"], (
        f"the model ({example['test_accuracy']:.3f}) does not beat the tf-idf baseline "
        f"({example['baseline_accuracy']:.3f}) on the quick run's test split"
    )
    assert example["confusion"].sum() == len(example["splits"]["test"])
    assert set(example["read_metrics"](example["logger"])) >= {"train_acc", "val_acc", "val_loss"}


def test_tokenizer_training_is_reproducible(example: dict[str, Any]) -> None:
    texts = example["split_texts"]["train"]
    first, second = (example["train_tokenizer"](texts, vocab_size=2000) for _ in "ab")
    assert first.get_vocab() == second.get_vocab()
    assert first.encode(texts[0]).ids == second.encode(texts[0]).ids


@pytest.mark.parametrize("model", ["scratch", "minilm"])
def test_training_is_deterministic_under_a_seed(example: dict[str, Any], model: str) -> None:
    config = example["Config"](model=model, epochs=2, subset=800)
    inputs = example["split_inputs"]
    if model == "scratch":
        inputs = {name: tensors[:1] for name, tensors in inputs.items()}  # token ids only
    vocab = example["tokenizer"].get_vocab_size()
    runs = [
        example["train_classifier"](inputs, example["split_labels"], config, vocab)[0] for _ in "ab"
    ]
    first, second = (run.state_dict() for run in runs)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = example["train_classifier"](
        inputs, example["split_labels"], example["Config"](model=model, epochs=2, seed=1), vocab
    )[0]
    assert not all(torch.equal(first[k], other.state_dict()[k]) for k in first)


def test_cli_help_lists_the_settings() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--help"],
        env=quick_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    flags = ["--data-source", "--model", "--epochs", "--batch-size", "--threads", "--seed"]
    flags += ["--accelerator", "--devices", "--num-nodes", "--strategy"]  # Lightning's scaling
    for flag in flags:
        assert flag in result.stdout


def test_cli_unknown_data_source_fails_clearly() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--data-source", "imdb"],
        env=quick_env(MPLBACKEND="Agg"),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode != 0
    assert "unknown data_source 'imdb'" in result.stderr


@pytest.mark.slow
def test_minilm_model_beats_the_baseline_on_a_subset(example: dict[str, Any]) -> None:
    """The page's claim on 3000 snippets (fresh split, tokenizer and features), all epochs."""
    config = example["Config"](subset=3000, seed=0)
    texts, labels = example["load_corpus"]("vader")
    chosen = np.random.default_rng(1).permutation(len(texts))[: config.subset]
    texts, labels = [texts[i] for i in chosen], labels[chosen]
    splits = example["split_indices"](len(texts), config.seed)
    split_texts = {name: [texts[i] for i in idx] for name, idx in splits.items()}
    split_labels = {name: labels[idx] for name, idx in splits.items()}
    baseline = example["fit_baseline"](split_texts["train"], split_labels["train"])
    baseline_accuracy = baseline.score(split_texts["test"], split_labels["test"])
    tokenizer = example["train_tokenizer"](split_texts["train"])
    features = example["MiniLMFeatures"]()
    inputs = {
        name: (
            torch.tensor([e.ids for e in tokenizer.encode_batch(split_texts[name])]),
            torch.from_numpy(features.cached(split_texts[name])),
        )
        for name in splits
    }
    model, trainer, _ = example["train_classifier"](
        inputs, split_labels, config, tokenizer.get_vocab_size()
    )
    result = trainer.test(model, datamodule=trainer.datamodule, verbose=False)[0]
    print(f"test accuracy {result['test_acc']:.3f}, baseline {baseline_accuracy:.3f}")
    assert result["test_acc"] > baseline_accuracy + 0.01
