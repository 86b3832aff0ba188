"""A program compiled through the gallery's compilation cache; run as a script, it prints JSON.

`python compile_cache_probe.py ROOT` turns the cache on under the cache root `ROOT` (every
program cached, whatever its compile time), runs `program` and prints the cache's folder, what
the cache did, and the sha256 of the result's bytes.
"""

from __future__ import annotations

import hashlib
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np


@jax.jit
def program(x: jax.Array) -> jax.Array:
    """A few dozen operations: a loop of dense layers and its gradient, for a fixed input."""

    def loss(w: jax.Array) -> jax.Array:
        h = x
        for _ in range(8):
            h = jnp.tanh(h @ w)
        return jnp.sum(h**2)

    return jax.grad(loss)(jnp.eye(16) * 0.9 + 0.01)


def program_input() -> jax.Array:
    return jnp.linspace(-1.0, 1.0, 8 * 16).reshape(8, 16)


def digest(array: jax.Array) -> str:
    return hashlib.sha256(np.asarray(array).tobytes()).hexdigest()


def main(root: str) -> None:
    from gallery_lib import enable_compile_cache, watch_compile_cache

    folder = enable_compile_cache(cache=root, min_compile_time_s=0.0)
    with watch_compile_cache() as events:
        result = program(program_input())
    print(
        json.dumps(
            {
                "folder": str(folder),
                "hits": events.hits,
                "writes": events.writes,
                "digest": digest(result),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
