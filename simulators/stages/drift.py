"""The drift stage: where schema drift transforms requests and responses (a pass-through until drift lands).

Drift changes what a vendor API looks like for one run: it will overlay the simulator's own schema
(`Simulator.schema`) and rewrite requests on their way in and responses on their way out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncert.simulators.stages.base import Stage

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator


class DriftStage(Stage):
    name = "drift"

    def __init__(self, simulator: Simulator):
        self.sim = simulator
