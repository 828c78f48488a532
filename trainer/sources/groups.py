"""The rows of an evaluation table: one per subset, sharing the real images where a dataset pools them."""

from __future__ import annotations

from dataclasses import dataclass

from .sample import Sample


def shared_real_pool(samples: list[Sample]) -> set[str]:
    """Subsets that hold only real images while every other subset holds only fakes.

    That is how hub datasets with a `generator` column store real images (e.g. `Real`); the
    paper's tables then have one R.Acc column and each generator's F.Acc. Empty when not so.
    """
    kinds: dict[str, set[int]] = {}
    for s in samples:
        kinds.setdefault(s.subset, set()).add(s.label)
    real = {name for name, labels in kinds.items() if labels == {0}}
    fake = {name for name, labels in kinds.items() if labels == {1}}
    return real if real and fake and len(real) + len(fake) == len(kinds) else set()


@dataclass(frozen=True)
class EvalGroup:
    name: str
    indices: tuple[int, ...]  # into the sample list


def evaluation_groups(samples: list[Sample]) -> tuple[list[EvalGroup], str | None]:
    """The rows of an evaluation table and, when real images are shared, the heading's note.

    With a shared real pool every generator's row is its fakes plus all real images, so its
    R.Acc is the one R.Acc column and its AP and Acc use all real images as negatives.
    """
    by_subset: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        by_subset.setdefault(s.subset, []).append(i)
    pool = shared_real_pool(samples)
    if not pool:
        return [EvalGroup(name, tuple(idx)) for name, idx in sorted(by_subset.items())], None
    reals = tuple(i for name in sorted(pool) for i in by_subset[name])
    groups = [EvalGroup(name, tuple(sorted(idx + list(reals)))) for name, idx in sorted(by_subset.items())
              if name not in pool]
    note = (f"every generator's R.Acc, Acc and AP use all {len(reals)} real images "
            f"({', '.join(sorted(pool))}) as negatives")
    return groups, note
