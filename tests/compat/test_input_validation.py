"""Input validation (`run.validation` / `validations:`) as KDeps' engine checks it: required fields,
per-field rules, custom expression rules, and the 422 body (pkg/validator, pkg/executor)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from kdeps.engine.request import RequestData
from kdeps.engine.runner import failure
from kdeps.engine.scope import RequestState, Scope
from kdeps.engine.validation import check_input
from kdeps.errors import InputValidationError, KdepsError
from kdeps.expr import evaluate
from kdeps.spec.resources import InputValidation


def rules(text: str) -> InputValidation:
    return InputValidation.model_validate(yaml.safe_load(text))


def problems(spec: InputValidation, data: dict[str, Any], evaluate_: Any = None) -> list[dict[str, Any]]:
    try:
        check_input(spec, data, evaluate_ or (lambda source: True), resource="res")
    except InputValidationError as err:
        return err.errors
    return []


ORDER = rules("""
required: [items, shippingAddress, paymentMethod]
properties:
  items: {type: array, minItems: 1, maxItems: 3}
  shippingAddress: {type: object}
  paymentMethod: {type: string, enum: [credit_card, paypal]}
  couponCode: {type: string, pattern: "^[A-Z0-9]{6,10}$"}
  quantity: {type: integer, minimum: 1, maximum: 99}
  email: {type: email}
  site: {type: url}
  id: {type: uuid}
  when: {type: date}
  ratio: {type: number, min: 0, max: 1}
  name: {type: string, minLength: 2, maxLength: 5, message: "Name must be 2-5 characters"}
  flag: {type: boolean}
""")
VALID = {"items": [1], "shippingAddress": {"country": "NO"}, "paymentMethod": "paypal"}


def test_valid_input_passes() -> None:
    full = {**VALID, "couponCode": "ABC123", "quantity": 5, "email": "a@b.io", "site": "https://x.io/p",
            "id": "123e4567-e89b-12d3-a456-426614174000", "when": "2024-12-25T14:30:00Z", "ratio": 0.5,
            "name": "Ann", "flag": False}
    assert problems(ORDER, full) == []
    assert problems(ORDER, {**VALID, "when": "2024-12-25"}) == []


def test_required_reports_missing_and_empty() -> None:
    found = problems(ORDER, {"items": [], "paymentMethod": ""})
    assert found == [
        {"field": "items", "type": "required", "message": "field 'items' is required"},
        {"field": "shippingAddress", "type": "required", "message": "field 'shippingAddress' is required"},
        {"field": "paymentMethod", "type": "required", "message": "field 'paymentMethod' is required"},
        {"field": "items", "type": "minItems", "message": "must have at least 1 items", "value": []},
        {"field": "paymentMethod", "type": "enum", "message": "must be one of: [credit_card paypal]",
         "value": ""},
    ]


@pytest.mark.parametrize(("field", "value", "kind", "message"), [
    ("items", [1, 2, 3, 4], "maxItems", "must have at most 3 items"),
    ("items", "x", "type", "expected array, got string"),
    ("shippingAddress", [1], "type", "expected object, got array"),
    ("paymentMethod", "cash", "enum", "must be one of: [credit_card paypal]"),
    ("couponCode", "abc", "pattern", "does not match required pattern"),
    ("quantity", 0, "min", "must be at least 1"),
    ("quantity", 100, "max", "must be at most 99"),
    ("quantity", 2.5, "type", "expected integer, got float"),
    ("quantity", "3", "type", "expected integer, got string"),
    ("quantity", True, "type", "expected integer, got bool"),
    ("email", "not-an-email", "type", "invalid email format"),
    ("site", "ftp://x.io", "type", "URL must start with http:// or https://"),
    ("site", "https://", "type", "URL must have a valid host"),
    ("id", "1234", "type", "invalid UUID format"),
    ("when", "25/12/2024", "type", "invalid date format (expected RFC3339 or YYYY-MM-DD)"),
    ("ratio", 1.5, "max", "must be at most 1"),
    ("name", "A", "minLength", "Name must be 2-5 characters"),
    ("name", "Annabel", "maxLength", "Name must be 2-5 characters"),
    ("flag", "yes", "type", "expected boolean, got string"),
])
def test_field_rules(field: str, value: Any, kind: str, message: str) -> None:
    assert problems(ORDER, {**VALID, field: value}) == [
        {"field": field, "type": kind, "message": message, "value": value}]


def test_rules_list_and_fields_map_and_precedence() -> None:
    as_list = rules("rules:\n  - {field: age, type: integer, min: 18}\n")
    as_fields = rules("fields:\n  age: {type: integer, min: 18}\n")
    both = rules("fields:\n  age: {type: integer, min: 18}\nproperties:\n  age: {type: integer, min: 21}\n")
    assert problems(as_list, {"age": 17})[0]["type"] == "min"
    assert problems(as_fields, {"age": 17})[0]["type"] == "min"
    assert problems(both, {"age": 19}) == [{"field": "age", "type": "min", "message": "must be at least 21",
                                            "value": 19}]


def test_untyped_rule_still_applies_its_constraints() -> None:
    spec = rules("properties:\n  q: {minLength: 3}\n  n: {maximum: 5}\n  level: {enum: [1, 2]}\n")
    found = problems(spec, {"q": "ab", "n": 9, "level": 3})
    assert [p["type"] for p in found] == ["minLength", "max", "enum"]
    assert problems(spec, {"q": "abc", "n": 5, "level": 2}) == []


def test_absent_optional_field_is_not_checked() -> None:
    assert problems(ORDER, {**VALID, "couponCode": None}) == []


def test_custom_rules_run_after_fields_pass() -> None:
    spec = rules("""
required: [password]
customRules:
  - expr: get('password') == get('confirmPassword')
    message: Passwords must match
  - expr: len(get('password')) >= 8
""")
    request = RequestData(body={"password": "short", "confirmPassword": "other"})
    scope = Scope(RequestState(request, {}), "signup")
    with pytest.raises(InputValidationError) as caught:
        check_input(spec, scope.request_data(), lambda source: evaluate(source, scope.env()),
                    resource="signup")
    err = caught.value
    assert err.status == 422 and err.message == "Custom validation failed"
    assert err.errors == [{"type": "custom", "message": "Passwords must match"},
                          {"type": "custom", "message": "expression failed: len(get('password')) >= 8"}]
    calls: list[str] = []
    with pytest.raises(InputValidationError) as caught:
        check_input(spec, {}, calls.append, resource="signup")
    assert caught.value.message == "Input validation failed" and calls == []


def test_custom_rule_that_fails_to_evaluate() -> None:
    spec = rules("customRules:\n  - expr: get('x') > 1\n")

    def boom(source: str) -> Any:
        raise KdepsError("invalid operation: string > int")

    assert problems(spec, {}, boom) == [
        {"type": "expression", "message": "expression evaluation failed: invalid operation: string > int"}]


def test_request_data_merges_body_query_and_headers_with_filters() -> None:
    request = RequestData(body={"a": 1, "b": 2}, query={"b": "q", "c": "3"}, headers={"x-key": "k"})
    scope = Scope(RequestState(request, {}), "r")
    assert scope.request_data() == {"a": 1, "b": "q", "c": "3", "x-key": "k"}

    class Run:
        allowed_params = ["a"]
        allowed_headers = ["X-Key"]

    assert Scope(RequestState(request, {}), "r", Run()).request_data() == {"a": 1, "x-key": "k"}


def test_error_body_is_kdeps_validation_error() -> None:
    err = InputValidationError("createUser", [{"field": "email", "type": "required",
                                               "message": "field 'email' is required"}])
    assert err.envelope() == {"success": False, "error": {
        "code": "VALIDATION_ERROR", "message": "Input validation failed", "resource": "createUser",
        "resourceId": "createUser", "details": {"errors": [{"field": "email", "type": "required",
                                                            "message": "field 'email' is required"}]}}}
    request = RequestData(method="POST", path="/api/v1/users", request_id="r1")
    meta = failure(err, request).body["meta"]
    assert (meta["requestID"], meta["path"], meta["method"]) == ("r1", "/api/v1/users", "POST")
    assert "email" in str(err) and "createUser" in str(err)
