"""Helpers for tests and benchmarks: a probe `JaxModule` with a known answer, a quiet Lightning
`Trainer`, and exact comparisons of training states.

A subpackage imported on its own (it imports Lightning): `from gallery_lib.testing import ...`.
"""

from ._lightning import QUIET as QUIET
from ._lightning import quiet_lightning_trainer as quiet_lightning_trainer
from ._probes import TRUE_BIAS as TRUE_BIAS
from ._probes import TRUE_WEIGHTS as TRUE_WEIGHTS
from ._probes import LinearRegressionProbe as LinearRegressionProbe
from ._probes import ProbeState as ProbeState
from ._probes import hand_written_fit as hand_written_fit
from ._trees import assert_trees_equal as assert_trees_equal
from ._trees import to_numpy as to_numpy

__all__ = [
    "QUIET",
    "TRUE_BIAS",
    "TRUE_WEIGHTS",
    "LinearRegressionProbe",
    "ProbeState",
    "assert_trees_equal",
    "hand_written_fit",
    "quiet_lightning_trainer",
    "to_numpy",
]
