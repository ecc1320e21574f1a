"""The drift stage: a vendor API as it is after one or more drift profiles (contracts/drift/), for this run.

`PUT /_sim/drift {"profiles": [id, ...]}` puts the simulator's schema back as it was at start, then lays each
profile's overlay on it (a renamed, shortened or removed field, a new required field or picklist value,
smaller pages): the dialect serves the drifted API from the next request on, also in the middle of a
connector's cycle. `GET` shows the profiles in force, `DELETE` (and a reset) takes them away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from syncert.simulators.drift.profiles import DriftProfile, ProfileError, load_profiles
from syncert.simulators.http import ApiRequest, BadRequest, json_response
from syncert.simulators.stages.base import ControlHandler, Stage

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator

USAGE = 'drift is {"profiles": ["<profile id>", ...]} (the ids of contracts/drift/*.yaml for this dialect)'


class DriftStage(Stage):
    name = "drift"

    def __init__(self, simulator: Simulator):
        self.sim = simulator
        schema = simulator.schema
        self._pristine = (dict(schema.kinds), dict(schema.objects), dict(schema.limits))
        self.applied: list[DriftProfile] = []

    def reset(self) -> None:
        self._restore()

    def _restore(self) -> None:
        """The schema as it was at start (in place: the engine and the dialect hold the same dicts)."""
        schema = self.sim.schema
        for current, pristine in zip((schema.kinds, schema.objects, schema.limits), self._pristine, strict=True):
            current.clear()
            current.update(pristine)
        self.applied = []

    def _lay(self, profiles: list[DriftProfile]) -> None:
        self._restore()
        for profile in profiles:
            pending = profile.overlay(self.sim.schema)
            if pending:
                self._restore()
                raise ProfileError(f"{profile.id}: {', '.join(pending)} is not served live yet")
            self.applied.append(profile)

    def control_routes(self) -> dict[str, ControlHandler]:
        return {"GET drift": self._drift, "PUT drift": self._drift, "DELETE drift": self._drift}

    async def _drift(self, request: ApiRequest) -> Response:
        if request.method == "PUT":
            ids = request.json_object().get("profiles")
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise BadRequest("INVALID_REQUEST", USAGE)
            profiles = load_profiles()
            dialect = self.sim.dialect.name
            chosen = []
            for profile_id in ids:
                profile = profiles.get(profile_id)
                if profile is None or profile.dialect != dialect:
                    mine = sorted(p.id for p in profiles.values() if p.dialect == dialect)
                    raise BadRequest("INVALID_REQUEST", f"no {dialect} drift profile {profile_id!r}; they are "
                                                        f"{', '.join(mine)}")
                chosen.append(profile)
            previous = list(self.applied)
            try:
                self._lay(chosen)
            except ProfileError as error:
                self._lay(previous)  # a refused drift leaves the one in force as it was
                raise BadRequest("INVALID_REQUEST", str(error)) from None
        elif request.method == "DELETE":
            self._restore()
        return json_response({"profiles": [{"id": p.id, "kind": p.kind, "title": p.title} for p in self.applied]},
                             exact=True)
