"""How levels are computed for connectors that declare all flows or a subset (harness.reports.assess_levels)."""

from __future__ import annotations

from syncert.harness.reports import assess_levels, certified_flows


def _scenario(scenario_id: str, level: int, status: str, flows: tuple[str, ...] = ("accounts",),
              message: str = "") -> dict:
    return {"id": scenario_id, "level": level, "status": status, "flows": list(flows), "message": message}


def test_every_level_passed_reaches_4() -> None:
    scenarios = [_scenario(f"S{level}", level, "passed") for level in (1, 2, 3, 4)]
    reached, levels = assess_levels(scenarios, ["accounts"], 4)
    assert reached == 4 and all(entry["status"] == "passed" for entry in levels.values())


def test_a_level_with_no_applicable_scenario_is_not_applicable_and_does_not_block() -> None:
    scenarios = [_scenario("ITEMS", 1, "not_applicable", ("items", "inventory")), _scenario("ACC", 2, "passed"),
                 _scenario("ECHO", 3, "passed"), _scenario("RATE", 4, "passed")]
    reached, levels = assess_levels(scenarios, ["accounts"], 4)
    assert reached == 4
    assert levels["1"]["status"] == "not_applicable"
    assert "items, inventory" in levels["1"]["reason"] and "accounts" in levels["1"]["reason"]
    assert certified_flows(scenarios, ["accounts", "payments"], reached) == ["accounts"]


def test_a_failure_stops_the_level_and_names_the_scenario() -> None:
    scenarios = [_scenario("ACC", 2, "passed"), _scenario("ECHO", 3, "failed", message="writes after convergence"),
                 _scenario("RATE", 4, "passed")]
    reached, levels = assess_levels(scenarios, ["accounts"], 4)
    assert reached == 2
    assert levels["3"]["status"] == "failed" and "ECHO failed: writes after convergence" in levels["3"]["reason"]
    assert levels["4"]["status"] == "passed" and "level 3 failed" in levels["4"]["reason"]


def test_an_error_counts_as_a_failure() -> None:
    reached, levels = assess_levels([_scenario("ACC", 2, "passed"), _scenario("LOUD", 4, "error")], ["accounts"], 4)
    assert reached == 2 and levels["4"]["status"] == "failed" and "LOUD error" in levels["4"]["reason"]


def test_nothing_applicable_reaches_nothing() -> None:
    reached, levels = assess_levels([_scenario("ITEMS", 1, "not_applicable", ("items",))], ["payments"], 4)
    assert reached == 0 and all(entry["status"] != "passed" for entry in levels.values())


def test_levels_above_the_requested_level_are_not_run() -> None:
    reached, levels = assess_levels([_scenario("ACC", 2, "passed")], ["accounts"], 2)
    assert reached == 2 and levels["3"]["status"] == "not_run" and levels["4"]["status"] == "not_run"


def test_a_connector_judged_by_a_weaker_mapping_of_its_own_earns_no_certificate() -> None:
    from syncert.harness.reports import build_report, level_text

    scenarios = [{**_scenario(f"S{level}", level, "passed"), "evidence": {}} for level in (1, 2, 3, 4)]
    connector = {"name": "x", "flows": ["accounts"], "mapping": {"standard": False, "path": "own.yaml",
                                                                   "standard_checks_not_made": ["accounts: ..."]}}
    common = {"run_id": "r", "started_at": "", "finished_at": "", "duration_s": 1, "version": "0", "seed": 1,
              "requested_level": 4, "scenarios": scenarios}
    weaker = build_report(connector=connector, **common)
    assert weaker["level_reached"] == 4 and weaker["verdict"] == "not certified"
    assert "no certificate" in level_text(weaker)
    stricter = build_report(connector={**connector, "mapping": {"standard": False, "standard_checks_not_made": []}},
                            **common)
    assert stricter["verdict"] == "certified"
