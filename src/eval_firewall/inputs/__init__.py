"""What an audit reads: the values the engine's input layer prepares for it.

Data only. Reading annotation sheets and predictions files, running the prediction command,
loading models and searching the train rows for overlaps happen in
:mod:`eval_firewall.engine.prepare` before an audit runs; an audit gets their results here and
reads no file itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..records import Annotation, Prediction, Variant
from ..rows import Row

if TYPE_CHECKING:
    from ..datasets import LoadedDataset
    from ..embeddings import Embedder
    from ..overlap.finders import Overlaps

# The inputs an audit can ask for in its registry entry (audits/__init__.py):
# - "datasets": always there;
# - "annotations": the configured annotation sheets' lines;
# - "predictions": the perturbed prompts and the model's predictions for them;
# - "embedder": a sentence embedder, chosen by how many rows it will encode;
# - "overlap": the overlap search's result (each eval row's strongest hit, :mod:`.overlap.finders`),
#   searched with the run's cache and indexes.
Input = Literal["datasets", "annotations", "predictions", "embedder", "overlap"]


@dataclass(frozen=True)
class Predicted:
    """The invariance audit's input: the prompts (originals and variants), the model's
    predictions by prompt id, and where those came from (a predictions file or the command)."""

    variants: list[Variant]
    predictions: dict[str, Prediction]
    source: str


@dataclass(frozen=True)
class Inputs:
    """The inputs of one run (at the head, or at the ``--base`` revision).

    An input an audit did not ask for is None; ``annotations`` and ``predicted`` are None
    too when none are configured, and ``predicted`` is a string (why there are none) when the
    predictions could not be had (e.g. the prediction command was not allowed).
    """

    datasets: Sequence[LoadedDataset]
    annotations: Sequence[Annotation] | None = None
    predicted: Predicted | str | None = None
    embedder: Callable[[int], Embedder] | None = None
    overlap: Overlaps | None = None

    def of_role(self, role: str) -> list[LoadedDataset]:
        """The datasets with this role, in config order."""
        return [d for d in self.datasets if d.role == role]

    def rows(self, role: str) -> Sequence[Row]:
        """Every row of the datasets with this role (one dataset's rows as they are: a train
        index's rows are built only where read)."""
        datasets = self.of_role(role)
        if len(datasets) == 1:
            return datasets[0].rows
        return [r for d in datasets for r in d.rows]
