"""The text-classification example: its split, tokenizer, bodies, training and predictions.

The page's functions and classes are loaded with `example_definitions` (nothing of the page
runs), then called on the quick run's data: 800 snippets of the corpus, MiniLM features.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch
from support import ROOT, quick_env

from gallery_lib import example_definitions
from gallery_lib.datasets import MiniLMFeatures, load_movie_snippets

EXAMPLE = ROOT / "examples" / "plot_text_classification.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    """The example's definitions, without running its cells."""
    return example_definitions(EXAMPLE)


@pytest.fixture(scope="module")
def quick(example: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The page's pipeline at its quick settings: split, baseline, tokenizer, features, model."""
    config = example.Config(subset=800, epochs=4)
    texts, labels = load_movie_snippets(config.data_source)
    chosen = np.random.default_rng(config.seed).permutation(len(texts))[: config.subset]
    texts, labels = [texts[i] for i in chosen], labels[chosen]
    splits = example.split_indices(len(texts), config.seed)
    split_texts = {name: [texts[i] for i in idx] for name, idx in splits.items()}
    split_labels = {name: labels[idx] for name, idx in splits.items()}
    baseline = example.fit_baseline(split_texts["train"], split_labels["train"])
    tokenizer = example.train_tokenizer(split_texts["train"], config.vocab_size, config.max_tokens)
    minilm = MiniLMFeatures(max_tokens=config.max_tokens)
    features = torch.from_numpy(minilm.cached(texts))
    inputs = {
        name: (example.token_ids(tokenizer, split_texts[name]), features[idx])
        for name, idx in splits.items()
    }
    log_dir = tmp_path_factory.mktemp("logs")
    model, trainer = example.train_classifier(inputs, split_labels, config, log_dir)

    def featurize(sentences: list[str]) -> tuple[torch.Tensor, ...]:
        return example.token_ids(tokenizer, sentences), torch.from_numpy(minilm(sentences))

    return SimpleNamespace(
        config=config,
        splits=splits,
        split_texts=split_texts,
        split_labels=split_labels,
        inputs=inputs,
        baseline_accuracy=baseline.score(split_texts["test"], split_labels["test"]),
        tokenizer=tokenizer,
        model=model,
        trainer=trainer,
        featurize=featurize,
    )


def test_split_is_disjoint_and_seeded(example: ModuleType) -> None:
    split = example.split_indices
    a, b = split(1000, 3), split(1000, 3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert sorted(np.concatenate(list(a.values())).tolist()) == list(range(1000))
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (800, 100, 100)
    assert not np.array_equal(split(1000, 4)["test"], a["test"])


def test_token_ids_are_padded_rows_of_max_tokens(example: ModuleType) -> None:
    tokenizer = example.train_tokenizer(["a good film", "a bad film"] * 50, 50, 6)
    ids = example.token_ids(tokenizer, ["a good film", "good " * 10])
    assert ids.shape == (2, 6) and ids.dtype == torch.int64
    assert ids[0, 3:].tolist() == [0, 0, 0]  # three real tokens, then padding (id 0)
    assert (ids[1] != 0).all()  # cut at 6 tokens


def test_bag_of_embeddings_ignores_padding_and_averages(example: ModuleType) -> None:
    bag = example.MeanOfEmbeddings(vocab_size=10, width=4)
    with torch.no_grad():
        bag.embedding.weight.copy_(torch.arange(40.0).reshape(10, 4))
    pooled = bag.pool(torch.tensor([[2, 4, 0, 0], [3, 0, 0, 0]]))
    expected = torch.stack([(bag.embedding.weight[2] + bag.embedding.weight[4]) / 2,
                            bag.embedding.weight[3]])  # fmt: skip
    torch.testing.assert_close(pooled, expected)


@pytest.mark.parametrize("model", ["scratch", "minilm"])
def test_each_body_maps_a_batch_to_two_logits(example: ModuleType, model: str) -> None:
    body = example.make_body(model, vocab_size=50)
    ids = torch.randint(1, 50, (3, 7))
    inputs = (ids, torch.randn(3, MiniLMFeatures.width)) if model == "minilm" else (ids,)
    logits = body(*inputs)
    assert logits.shape == (3, 2)
    logits.sum().backward()
    # DDP needs a gradient for every parameter at every step.
    assert all(p.grad is not None for p in body.parameters())


def test_quick_run_beats_the_baseline(example: ModuleType, quick: SimpleNamespace) -> None:
    assert len(quick.splits["test"]) == 80
    (result,) = quick.trainer.test(quick.model, datamodule=quick.trainer.datamodule, verbose=False)
    # 80 test snippets: 54 right or more happens by chance (p = 0.5) about once in 860 runs.
    assert result["test_acc"] >= 54 / 80, result
    assert result["test_acc"] > quick.baseline_accuracy, (
        f"the model ({result['test_acc']:.3f}) does not beat the tf-idf baseline "
        f"({quick.baseline_accuracy:.3f}) on the quick run's test split"
    )
    metrics_csv = Path(quick.trainer.logger.log_dir) / "metrics.csv"
    metrics = example.read_metrics(metrics_csv)
    assert {"train_acc", "val_acc", "val_loss"} <= set(metrics.columns)
    assert list(metrics["val_acc"].dropna().index) == list(range(quick.config.epochs))
    assert metrics["test_acc"].dropna().tolist() == [pytest.approx(result["test_acc"])]


def test_predict(example: ModuleType, quick: SimpleNamespace) -> None:
    predictions = example.predict(quick.model, quick.featurize, ["What a wonderful film.", "Dull."])
    assert [label in ("positive", "negative") for label, _ in predictions] == [True, True]
    assert all(0.0 <= p <= 1.0 for _, p in predictions)
    (single,) = example.predict(quick.model, quick.featurize, "What a wonderful film.")
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
    example: ModuleType, quick: SimpleNamespace, sentence: str, label: str
) -> None:
    ((predicted, probability),) = example.predict(quick.model, quick.featurize, sentence)
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
    example: ModuleType, quick: SimpleNamespace, bad: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        example.predict(quick.model, quick.featurize, bad)


def test_tokenizer_training_is_reproducible(example: ModuleType, quick: SimpleNamespace) -> None:
    texts = quick.split_texts["train"]
    first, second = (example.train_tokenizer(texts, 2000, 64) for _ in "ab")
    assert first.get_vocab() == second.get_vocab()
    assert first.encode(texts[0]).ids == second.encode(texts[0]).ids


@pytest.mark.parametrize("model", ["scratch", "minilm"])
def test_training_is_deterministic_under_a_seed(
    example: ModuleType, quick: SimpleNamespace, model: str, tmp_path: Path
) -> None:
    config = example.Config(model=model, epochs=2, subset=800)
    inputs = quick.inputs
    if model == "scratch":
        inputs = {name: tensors[:1] for name, tensors in inputs.items()}  # token ids only
    runs = [example.train_classifier(inputs, quick.split_labels, config, tmp_path)[0] for _ in "ab"]
    first, second = (run.state_dict() for run in runs)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    other_seed = example.Config(model=model, epochs=2, seed=1)
    other = example.train_classifier(inputs, quick.split_labels, other_seed, tmp_path)[0]
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
    flags += ["--vocab-size", "--max-tokens", "--weight-decay"]
    flags += ["--accelerator", "--devices", "--num-nodes", "--strategy"]  # Lightning's scaling
    for flag in flags:
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("flag", "value", "choices"),
    [("--data-source", "imdb", ["vader", "rotten_tomatoes", "sst2"]),
     ("--model", "bert", ["minilm", "scratch"])],
)  # fmt: skip
def test_cli_unknown_choice_fails_with_the_choices(
    example: ModuleType, flag: str, value: str, choices: list[str], capsys: pytest.CaptureFixture
) -> None:
    from gallery_lib import example_config

    with pytest.raises(SystemExit) as stopped:
        example_config(example.Config, args=[flag, value])
    assert stopped.value.code == 2
    output = capsys.readouterr()
    for word in [flag, value, *choices]:
        assert word in output.err + output.out


@pytest.mark.slow
def test_minilm_model_beats_the_baseline_on_a_subset(example: ModuleType, tmp_path: Path) -> None:
    """The page's claim on 3000 snippets (fresh split, tokenizer and features), all epochs."""
    config = example.Config(subset=3000, seed=0)
    texts, labels = load_movie_snippets("vader")
    chosen = np.random.default_rng(1).permutation(len(texts))[: config.subset]
    texts, labels = [texts[i] for i in chosen], labels[chosen]
    splits = example.split_indices(len(texts), config.seed)
    split_texts = {name: [texts[i] for i in idx] for name, idx in splits.items()}
    split_labels = {name: labels[idx] for name, idx in splits.items()}
    baseline = example.fit_baseline(split_texts["train"], split_labels["train"])
    baseline_accuracy = baseline.score(split_texts["test"], split_labels["test"])
    tokenizer = example.train_tokenizer(split_texts["train"], config.vocab_size, config.max_tokens)
    features = MiniLMFeatures(max_tokens=config.max_tokens)
    inputs = {
        name: (
            example.token_ids(tokenizer, split_texts[name]),
            torch.from_numpy(features.cached(split_texts[name])),
        )
        for name in splits
    }
    model, trainer = example.train_classifier(inputs, split_labels, config, tmp_path)
    result = trainer.test(model, datamodule=trainer.datamodule, verbose=False)[0]
    print(f"test accuracy {result['test_acc']:.3f}, baseline {baseline_accuracy:.3f}")
    assert result["test_acc"] > baseline_accuracy + 0.01
