"""The ?filter= subset: what each form selects, and that anything else is Consul's 400."""

import pytest

from accord.core.errors import ConsulApiError
from accord.registry.bexpr import compile_filter

ROWS = [
    {"Service": "web", "Tags": ["a", "b"], "Status": "passing", "Meta": {"env": "prod"}, "Port": 80},
    {"Service": "db", "Tags": [], "Status": "critical", "Meta": {}, "Port": 5432},
    {"Service": "web", "Tags": ["b"], "Status": "warning", "Meta": {"env": "dev"}, "Port": 81},
]


def select(expression: str) -> list[int]:
    predicate = compile_filter(expression)
    assert predicate is not None
    return [i for i, row in enumerate(ROWS) if predicate(row)]


@pytest.mark.parametrize(
    ("expression", "rows"),
    [
        ('Service == "web"', [0, 2]),
        ('Service != "web"', [1]),
        ('"a" in Tags', [0]),
        ('"a" not in Tags', [1, 2]),
        ('Service == "web" and "b" in Tags and Status == "passing"', [0]),
        ('Status == "critical" or Status == "warning"', [1, 2]),
        ('not (Service == "web")', [1]),
        ('Meta.env == "prod"', [0]),
        ('"env" in Meta', [0, 2]),
        ("Tags is empty", [1]),
        ("Tags is not empty", [0, 2]),
        ("Port == 80", [0]),
        ("Service == `db`", [1]),
        ('Nope == "x"', []),
    ],
)
def test_forms(expression: str, rows: list[int]) -> None:
    assert select(expression) == rows


@pytest.mark.parametrize("expression", ['Status === "x"', "Status ==", '"a" in', '(Service == "x"', "and", "Tags is"])
def test_malformed_is_400(expression: str) -> None:
    with pytest.raises(ConsulApiError) as raised:
        compile_filter(expression)
    assert raised.value.status == 400
    assert raised.value.detail.startswith("Failed to create boolean expression evaluator")


def test_empty_is_no_filter() -> None:
    assert compile_filter(None) is None and compile_filter("  ") is None
