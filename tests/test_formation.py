"""Table and property tests for formations, type selection and instance planning."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procrunner.config.formation import InstanceSpec, parse_formation, plan_instances, select_types
from procrunner.config.procfile import ProcessType
from procrunner.errors import ProcrunnerError

TYPES = ("web", "worker", "clock")


def assert_one_line(error: ProcrunnerError) -> None:
    assert len(str(error).splitlines()) == 1, str(error)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, {"web": 1, "worker": 1, "clock": 1}),
        ("", {"web": 1, "worker": 1, "clock": 1}),
        ("  \t", {"web": 1, "worker": 1, "clock": 1}),
        ("web=2", {"web": 2, "worker": 0, "clock": 0}),
        ("web=2,worker=1,clock=0", {"web": 2, "worker": 1, "clock": 0}),
        ("clock=3,web=1", {"web": 1, "worker": 0, "clock": 3}),
        ("all=2", {"web": 2, "worker": 2, "clock": 2}),
        ("all=0", {"web": 0, "worker": 0, "clock": 0}),
        ("all=3,web=1", {"web": 1, "worker": 3, "clock": 3}),
        ("web=1,all=3", {"web": 1, "worker": 3, "clock": 3}),
        ("all=2,clock=0", {"web": 2, "worker": 2, "clock": 0}),
        (" web = 2 , worker=\t1 ", {"web": 2, "worker": 1, "clock": 0}),
        ("web=007", {"web": 7, "worker": 0, "clock": 0}),
        ("web=1000", {"web": 1000, "worker": 0, "clock": 0}),
        ("web=0000000000000000000000001000", {"web": 1000, "worker": 0, "clock": 0}),
    ],
)
def test_parse_formation(spec: str | None, expected: dict[str, int]) -> None:
    result = parse_formation(spec, TYPES)
    assert result == expected
    assert list(result) == list(TYPES)


def test_no_types() -> None:
    assert parse_formation(None, []) == {}
    assert parse_formation("all=2", []) == {}


def test_a_type_named_all_gets_the_all_count() -> None:
    assert parse_formation("all=2", ["all", "web"]) == {"all": 2, "web": 2}


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ("db=1", ["unknown process type 'db'", "web, worker, clock"]),
        ("web=1,Web=1", ["unknown process type 'Web'"]),
        ("web=-1", ["'-1'", "not a whole number"]),
        ("web=1.5", ["'1.5'", "not a whole number"]),
        ("web=two", ["'two'", "not a whole number"]),
        ("web=", ["''", "not a whole number"]),
        ("web=+1", ["'+1'"]),
        ("web=1_0", ["'1_0'"]),
        ("web=\u0661", ["not a whole number"]),  # an Arabic-Indic digit, which int() accepts
        ("web=1001", ["'1001'", "above the maximum 1000"]),
        ("web=" + "9" * 5000, ["above the maximum 1000"]),
        ("all=1001", ["above the maximum 1000"]),
        ("web", ["malformed entry 'web'", "name=count"]),
        ("=2", ["malformed entry '=2'"]),
        ("  =2", ["malformed entry '=2'"]),
        ("web=1,", ["empty entry"]),
        (",web=1", ["empty entry"]),
        ("web=1,,worker=1", ["empty entry"]),
        ("web=1,web=2", ["'web' is given more than once"]),
        ("web=1, web =1", ["'web' is given more than once"]),
        ("all=1,all=2", ["'all' is given more than once"]),
    ],
)
def test_parse_formation_errors(spec: str, fragments: list[str]) -> None:
    with pytest.raises(ProcrunnerError) as info:
        parse_formation(spec, TYPES, source="-m")
    error = info.value
    assert error.source == "-m"
    assert error.line is None
    for fragment in fragments:
        assert fragment in error.message
    assert_one_line(error)
    assert len(str(error)) < 300


def test_default_source_and_many_problems() -> None:
    with pytest.raises(ProcrunnerError) as info:
        parse_formation("db=1,web=x,", TYPES)
    assert str(info.value).startswith("--formation: unknown process type 'db'")
    assert info.value.message.endswith("(and 2 more problems)")


def test_unknown_type_with_no_known_types() -> None:
    with pytest.raises(ProcrunnerError, match="known types: none"):
        parse_formation("web=1", [])


# --- select_types ---

COUNTS = {"web": 2, "worker": 1, "clock": 1}


@pytest.mark.parametrize(
    ("selected", "expected"),
    [
        (["web"], {"web": 2, "worker": 0, "clock": 0}),
        (["web", "clock"], {"web": 2, "worker": 0, "clock": 1}),
        (["clock", "web", "web"], {"web": 2, "worker": 0, "clock": 1}),
        ([], COUNTS),
    ],
)
def test_select_types(selected: list[str], expected: dict[str, int]) -> None:
    result = select_types(COUNTS, selected)
    assert result == expected
    assert list(result) == list(COUNTS)


def test_select_keeps_a_zero_count() -> None:
    assert select_types({"web": 0, "worker": 1}, ["web"]) == {"web": 0, "worker": 0}


def test_select_unknown_type() -> None:
    with pytest.raises(ProcrunnerError) as info:
        select_types(COUNTS, ["web", "db"])
    assert info.value.source == "process type"
    assert "'db'" in info.value.message
    assert "web, worker, clock" in info.value.message


# --- plan_instances ---

PROCFILE = (
    ProcessType("web", "serve", 1),
    ProcessType("worker", "work", 2),
    ProcessType("clock", "tick", 4),
)


def names_and_ports(instances: tuple[InstanceSpec, ...]) -> list[tuple[str, int]]:
    return [(i.name, i.port) for i in instances]


@pytest.mark.parametrize(
    ("counts", "base", "expected"),
    [
        (
            {"web": 2, "worker": 1, "clock": 1},
            5000,
            [("web.1", 5000), ("web.2", 5001), ("worker.1", 5100), ("clock.1", 5200)],
        ),
        # A type at 0 still takes its block of 100 ports.
        ({"web": 0, "worker": 0, "clock": 2}, 5000, [("clock.1", 5200), ("clock.2", 5201)]),
        ({"worker": 1}, 8000, [("worker.1", 8100)]),
        ({}, 5000, []),
        ({"clock": 1}, 65335, [("clock.1", 65535)]),
    ],
)
def test_plan_instances(counts: dict[str, int], base: int, expected: list[tuple[str, int]]) -> None:
    assert names_and_ports(plan_instances(PROCFILE, counts, base)) == expected


def test_instance_fields() -> None:
    (first, second) = plan_instances(PROCFILE, {"web": 2}, 5000)
    assert first == InstanceSpec(
        name="web.1", type_name="web", slot=1, port=5000, command="serve"
    )
    assert second.slot == 2
    assert second.command == "serve"


@pytest.mark.parametrize(
    ("counts", "base", "fragments"),
    [
        ({"clock": 1}, 65336, ["clock.1", "65536", "base port 65336"]),
        ({"web": 3}, 65534, ["web.3", "65536", "base port 65534"]),
        ({"web": 1}, 0, ["base port 0"]),
        ({"web": 1}, 70000, ["base port 70000"]),
        ({"db": 1}, 5000, ["unknown process type 'db'"]),
        ({"web": -1}, 5000, ["negative"]),
    ],
)
def test_plan_instances_errors(counts: dict[str, int], base: int, fragments: list[str]) -> None:
    with pytest.raises(ProcrunnerError) as info:
        plan_instances(PROCFILE, counts, base)
    for fragment in fragments:
        assert fragment in info.value.message
    assert_one_line(info.value)


# --- properties ---

NAMES = st.lists(
    # "all" is the default entry, not a plain type name; test_a_type_named_all covers it.
    st.from_regex(r"[A-Za-z0-9_-]{1,8}", fullmatch=True).filter(lambda n: n != "all"),
    min_size=0,
    max_size=5,
    unique=True,
)


@settings(max_examples=300, deadline=None)
@given(spec=st.one_of(st.none(), st.text(max_size=60)), type_names=NAMES)
def test_any_spec_parses_or_raises(spec: str | None, type_names: list[str]) -> None:
    try:
        result = parse_formation(spec, type_names)
    except ProcrunnerError as error:
        assert error.source == "--formation"
        assert_one_line(error)
    else:
        assert list(result) == type_names
        assert all(0 <= count <= 1000 for count in result.values())


@settings(max_examples=300, deadline=None)
@given(data=st.data(), type_names=NAMES)
def test_formation_like_specs(data: st.DataObject, type_names: list[str]) -> None:
    pieces = st.sampled_from([*type_names, "all", "=", ",", " ", "1", "0", "1001", "-", "x"])
    spec = "".join(data.draw(st.lists(pieces, max_size=12)))
    try:
        parse_formation(spec, type_names)
    except ProcrunnerError as error:
        assert_one_line(error)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), type_names=NAMES)
def test_generated_valid_specs_round_trip(data: st.DataObject, type_names: list[str]) -> None:
    chosen = data.draw(st.lists(st.sampled_from(type_names), unique=True)) if type_names else []
    counts = {name: data.draw(st.integers(0, 1000)) for name in chosen}
    spec = ",".join(f"{name}={count}" for name, count in counts.items()) or "all=0"
    expected = {name: counts.get(name, 0) for name in type_names}
    assert parse_formation(spec, type_names) == expected
