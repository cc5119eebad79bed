"""A two-sided CUSUM on standardised values whose in-control mean is known to be zero.

:class:`~driftloop.streams.detectors.DriftMonitor` standardises each block mean against its
reference, so "no change" means a mean of 0. River's Page-Hinkley compares each value with
its own running mean instead; right after a warm-up (a few blocks, as a new version or a
short stream gives) that mean follows a shift into the new regime and the test stalls: on
the question stream a jump of the error rate from 0.25 to 0.6 raised no alert in 15 blocks.
The tabular CUSUM of Page (1954) with a known target does not: it accumulates ``z - k`` (and
``-z - k``) from zero and alerts when either sum passes ``h``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["StandardCUSUM"]


class StandardCUSUM:
    """Page's two-sided CUSUM for values whose in-control mean is 0 and spread 1.

    Parameters
    ----------
    threshold
        ``h``: the cumulative excess that alerts.
    delta
        ``k``: the allowance subtracted from every value (half the shift to detect fast).
    min_instances
        Values needed before any alert.

    Examples
    --------
    >>> cusum = StandardCUSUM(threshold=5.0, delta=0.5)
    >>> [cusum.update(0.1).drift_detected for _ in range(50)].count(True)
    0
    >>> [cusum.update(3.0).drift_detected for _ in range(3)]
    [False, False, True]
    """

    def __init__(self, *, threshold: float = 20.0, delta: float = 0.5,
                 min_instances: int = 1) -> None:
        if threshold <= 0 or delta < 0 or min_instances < 1:
            raise ValueError(f"need threshold > 0, delta >= 0, min_instances >= 1; got "
                             f"{threshold}, {delta}, {min_instances}")
        self.threshold = threshold
        self.delta = delta
        self.min_instances = min_instances
        self._reset()

    def _reset(self) -> None:
        self._high = 0.0
        self._low = 0.0
        self._n = 0
        self.drift_detected = False

    def update(self, x: float) -> StandardCUSUM:
        if self.drift_detected:
            self._reset()
        self._n += 1
        self._high = max(0.0, self._high + x - self.delta)
        self._low = max(0.0, self._low - x - self.delta)
        self.drift_detected = (self._n >= self.min_instances
                               and max(self._high, self._low) > self.threshold)
        return self

    def update_quiet(self, values: Sequence[float]) -> int:
        """Take ``values`` in order while none of them alerts; return how many it took.

        The value that would alert is not taken: :meth:`update` it to see the alert. The same
        arithmetic as :meth:`update`, without a call per value (a worker's steady state).

        >>> cusum = StandardCUSUM(threshold=5.0, delta=0.5)
        >>> cusum.update_quiet([0.1] * 50 + [3.0, 3.0, 3.0, 0.0])
        52
        >>> cusum.update(3.0).drift_detected
        True
        """
        if self.drift_detected:
            return 0
        high, low, n = self._high, self._low, self._n
        delta, threshold, least = self.delta, self.threshold, self.min_instances
        taken = 0
        for x in values:
            up = high + x - delta
            down = low - x - delta
            up = up if up > 0.0 else 0.0  # max(0.0, .) as update has it, nan included
            down = down if down > 0.0 else 0.0
            if n + 1 >= least and (up if up >= down else down) > threshold:
                break
            high, low, n = up, down, n + 1
            taken += 1
        self._high, self._low, self._n = high, low, n
        return taken
