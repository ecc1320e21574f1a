"""The drift stage: a vendor API as it is after one or more drift profiles (contracts/drift/), for this run.

`PUT /_sim/drift {"profiles": [id, ...]}` puts the simulator's schema back as it was at start, then lays each
profile's overlay on it (a renamed, shortened or removed field, a new required field or picklist value,
smaller pages, a narrowed scope): the dialect serves the drifted API from the next request on, also in the middle
of a connector's cycle (a trigger can lay one between two pages). `GET` shows the profiles in force, `DELETE`
(and a reset) takes them away. A kind the client has lost access to is refused here, whatever the request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import Response

from syncert.simulators.drift.profiles import DriftProfile, ProfileError, load_profiles
from syncert.simulators.http import ApiRequest, BadRequest, json_response
from syncert.simulators.stages.base import ControlHandler, Exchange, NextStage, Stage

if TYPE_CHECKING:
    from syncert.simulators.simulator import Simulator

USAGE = 'drift is {"profiles": ["<profile id>", ...]} (the ids of contracts/drift/*.yaml for this dialect)'


class DriftStage(Stage):
    name = "drift"

    def __init__(self, simulator: Simulator):
        self.sim = simulator
        schema = simulator.schema
        self._pristine = (dict(schema.kinds), dict(schema.objects), dict(schema.limits), set(schema.withdrawn))
        self.applied: list[DriftProfile] = []

    async def handle(self, exchange: Exchange, call_next: NextStage) -> Response | None:
        withdrawn = self.sim.schema.withdrawn
        if not withdrawn or not exchange.api:
            return await call_next(exchange)
        dialect, request = self.sim.dialect, exchange.request
        await exchange.keep_body()  # read first: nothing else runs (and writes) inside the transaction below
        _, kind, operation = dialect.classify(request.method, request.path)
        kind = kind or (dialect.query_kind(request) if operation == "query" else None)
        if kind not in withdrawn:
            with self.sim.engine.transaction() as attempt:  # some requests name their kind in the body only
                answer = await call_next(exchange)
                if exchange.kind not in withdrawn:
                    return answer
                kind = exchange.kind
                attempt.rollback()
        return dialect.error(403, "INSUFFICIENT_ACCESS",
                             f"Your role has no permission to access {dialect.object_name(str(kind))} records")

    def reset(self) -> None:
        self._restore()

    def _restore(self) -> None:
        """The schema as it was at start (in place: the engine and the dialect hold the same dicts)."""
        schema = self.sim.schema
        for current, pristine in zip((schema.kinds, schema.objects, schema.limits, schema.withdrawn), self._pristine,
                                     strict=True):
            current.clear()
            current.update(pristine)  # type: ignore[arg-type]
        self.applied = []

    def _lay(self, profiles: list[DriftProfile]) -> None:
        self._restore()
        for profile in profiles:
            try:
                profile.overlay(self.sim.schema)
            except ProfileError as error:
                self._restore()
                raise ProfileError(f"{profile.id}: {error}") from None
            self.applied.append(profile)

    def profiles(self, ids: object) -> list[DriftProfile]:
        """The profiles of this dialect named by `ids`; ProfileError names a bad request or an unknown id."""
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ProfileError(USAGE)
        profiles = load_profiles()
        dialect = self.sim.dialect.name
        chosen = []
        for profile_id in ids:
            profile = profiles.get(profile_id)
            if profile is None or profile.dialect != dialect:
                mine = sorted(p.id for p in profiles.values() if p.dialect == dialect)
                raise ProfileError(f"no {dialect} drift profile {profile_id!r}; they are {', '.join(mine)}")
            chosen.append(profile)
        return chosen

    def lay(self, profiles: list[DriftProfile]) -> None:
        """Serve the API as these profiles drift it (in place of those in force); a profile that cannot be laid
        raises ProfileError and leaves the drift in force as it was."""
        previous = list(self.applied)
        try:
            self._lay(profiles)
        except ProfileError:
            self._lay(previous)
            raise

    def add(self, profiles: list[DriftProfile]) -> None:
        """Lay `profiles` over the drift in force (a trigger's drift, in the middle of a cycle)."""
        self.lay([*self.applied, *(p for p in profiles if p not in self.applied)])

    def control_routes(self) -> dict[str, ControlHandler]:
        return {"GET drift": self._drift, "PUT drift": self._drift, "DELETE drift": self._drift}

    async def _drift(self, request: ApiRequest) -> Response:
        if request.method == "PUT":
            try:
                self.lay(self.profiles(request.json_object().get("profiles")))
            except ProfileError as error:
                raise BadRequest("INVALID_REQUEST", str(error)) from None
        elif request.method == "DELETE":
            self._restore()
        return json_response({"profiles": [{"id": p.id, "kind": p.kind, "title": p.title} for p in self.applied]},
                             exact=True)
