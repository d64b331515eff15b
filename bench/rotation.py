"""What the benches share: measuring methods in turns, each repetition starting with the next method,
so that load from elsewhere on the machine falls on every method alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping


def rotated_samples(methods: Mapping[str, Callable[[int], float]], repetitions: int) -> dict[str, list[float]]:
    """Each method's seconds per repetition; `methods[name](i)` does repetition i and returns its time."""
    samples: dict[str, list[float]] = {name: [] for name in methods}
    order = list(methods)
    for i in range(repetitions):
        shift = i % len(order)
        for name in order[shift:] + order[:shift]:
            samples[name].append(methods[name](i))
    return samples
