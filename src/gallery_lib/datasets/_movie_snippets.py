"""`load_movie_snippets`: human-rated movie-review snippets, as texts and 0/1 sentiment labels."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np

from .._fetch import cache_dir, fetch_sdist

SENTIMENT_LABELS: tuple[str, str] = ("negative", "positive")
"""The class names of the movie-snippet labels, indexed by label (0: negative, 1: positive)."""

MOVIE_SNIPPET_SOURCES: tuple[str, ...] = ("vader", "rotten_tomatoes", "sst2")
"""The corpora `load_movie_snippets` reads: `vader` offline, the two others from the Hub."""

_VADER_SDIST = ("vaderSentiment", "3.3.2")
_VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
_VADER_INNER_ARCHIVE = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
_VADER_MOVIES = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
_HUB_CORPORA = {
    "rotten_tomatoes": ("cornell-movie-review-data/rotten_tomatoes", "text"),
    "sst2": ("stanfordnlp/sst2", "sentence"),
}


def parse_ground_truth(raw: str) -> tuple[list[str], np.ndarray]:
    """Parse VADER's ground-truth lines, `id<TAB>mean rating<TAB>text`.

    Args:
        raw: The file's text; blank lines are skipped, `\\r\\n` line ends are accepted.

    Returns:
        The texts (stripped) and their mean ratings (float64, from -4 to +4).

    Raises:
        ValueError: A line does not have exactly three tab-separated fields; the message
            gives its line number.

    Examples:
        >>> texts, ratings = parse_ground_truth("1\\t2.5\\tGood.\\n2\\t-0.4\\tMeh \\n")
        >>> texts, ratings.tolist()
        (['Good.', 'Meh'], [2.5, -0.4])
    """
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


def _vader_snippets(cache: str | Path | None) -> tuple[list[str], np.ndarray]:
    sdist = fetch_sdist(*_VADER_SDIST, _VADER_SHA256, cache=cache_dir(cache))
    with tarfile.open(sdist) as outer:
        member = outer.extractfile(_VADER_INNER_ARCHIVE)
        if member is None:
            raise FileNotFoundError(f"{sdist} has no file {_VADER_INNER_ARCHIVE}")
        inner_bytes = member.read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        member = inner.extractfile(_VADER_MOVIES)
        if member is None:
            raise FileNotFoundError(f"{_VADER_INNER_ARCHIVE} has no file {_VADER_MOVIES}")
        raw = member.read().decode("utf-8")
    texts, ratings = parse_ground_truth(raw)
    keep = ratings != 0
    return [t for t, k in zip(texts, keep, strict=True) if k], (ratings[keep] > 0).astype(np.int64)


def _hub_snippets(name: str) -> tuple[list[str], np.ndarray]:
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            f"source={name!r} reads the Hugging Face Hub with the `datasets` package, "
            "which is not installed: `pip install datasets` (and be online), or use "
            "source='vader', which works offline."
        ) from error
    repo, column = _HUB_CORPORA[name]
    texts, labels = [], []
    for split in datasets.load_dataset(repo).values():
        for row in split:
            if row["label"] in (0, 1):  # SST-2's test split is unlabelled (-1)
                texts.append(row[column])
                labels.append(row["label"])
    return texts, np.asarray(labels, dtype=np.int64)


def load_movie_snippets(
    source: str = "vader", cache: str | Path | None = None
) -> tuple[list[str], np.ndarray]:
    """Movie-review snippets and their sentiment labels (1: positive, 0: negative).

    `vader` (the default, offline): the 10,605 snippets of rotten-tomatoes reviews that
    C.J. Hutto and E. Gilbert had rated by people from -4 to +4 (*VADER: A Parsimonious
    Rule-based Model for Sentiment Analysis of Social Media Text*, ICWSM 2014). They ship the
    mean ratings in the source distribution of `vaderSentiment` 3.3.2 on PyPI (MIT licence,
    member `movieReviewSnippets_GroundTruth.txt` of
    `additional_resources/hutto_ICWSM_2014.tar.gz`). The sdist is fetched through pip, checked
    against a pinned sha256 ([`fetch_sdist`][gallery_lib.fetch_sdist]) and read without
    unpacking. A mean rating above zero is positive, below zero negative; the 37 snippets
    rated exactly zero are dropped, which leaves 10,568.

    `rotten_tomatoes` and `sst2` read the Hugging Face Hub (online, `pip install datasets`);
    all their labelled splits are returned together.

    Args:
        source: One of [`MOVIE_SNIPPET_SOURCES`][gallery_lib.datasets.MOVIE_SNIPPET_SOURCES].
        cache: Folder of the downloaded sdist (default: [`cache_dir`][gallery_lib.cache_dir]).

    Returns:
        The texts, and their labels as an int64 array of the same length.

    Raises:
        ValueError: `source` is not one of the known corpora.
        ImportError: A Hub corpus was asked for and `datasets` is not installed.

    Examples:
        >>> texts, labels = load_movie_snippets()
        >>> len(texts), int(labels.sum())
        (10568, 5242)
    """
    if source == "vader":
        return _vader_snippets(cache)
    if source in _HUB_CORPORA:
        return _hub_snippets(source)
    raise ValueError(
        f"unknown source {source!r}: choose one of {', '.join(MOVIE_SNIPPET_SOURCES)}."
    )
