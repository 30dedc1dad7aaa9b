"""The API against its own published OpenAPI document, fuzzed with schemathesis as an
administrator: every operation, a few generated requests each (5 valid, 5 invalid), and no
answer may be a server error or differ from what the document declares (status, content
type, headers, body schema), nor may a request the document calls invalid be accepted.

This is the bounded CI run; docs/security.md has the full one (30 examples per operation
against a running server) and its summary."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install -e '.[test]' (schemathesis)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, missing_required_header, negative_data_rejection, response_headers_conformance,
    response_schema_conformance, status_code_conformance, unsupported_method,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, missing_required_header, unsupported_method]
EXAMPLES = 5
ENDLESS = {"/api/alerts/stream"}  # an event stream stays open until the client leaves (~3 s per request)
PADDING_TOKENS = 50  # the fuzzer's token is not one of the small ids it is likely to revoke


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory, model_cache):
    from vigil.config import Settings
    from vigil.governance.users import create_token, create_user
    from vigil.server import create_app
    from vigil.services import forget_contexts
    from vigil.services.collections import create_collection

    forget_contexts()
    home = tmp_path_factory.mktemp("fuzz-home")
    (home / "models").symlink_to(model_cache, target_is_directory=True)
    app = create_app(Settings(home=home), retention_every=None)
    vigil = app.state.vigil
    with vigil.store.session() as s:
        admin, _ = create_user(s, "fuzz-admin-7f3a", "admin", created_by="test")
        for i in range(PADDING_TOKENS):
            create_token(s, admin, f"padding-{i}")
        token = create_token(s, admin, "fuzzer")[1]
    create_collection(vigil, vigil.cli_actor(), "gallery", "custody", pack="sface")
    yield {"app": app, "headers": {"Authorization": f"Bearer {token}"}}
    forget_contexts()


def _fuzz(operation, headers: dict) -> None:
    """``EXAMPLES`` valid and ``EXAMPLES`` invalid requests for one operation, each checked."""
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            if operation.path in ENDLESS and mode is GenerationMode.POSITIVE:
                case.query = {**(case.query or {}), "once": "true"}  # answer what is there, then close
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise  # an operation no valid request reaches is a fault of the document
            # nothing about this operation can be made invalid (no parameters, no body)


CHUNKS = 4  # the operations are fuzzed in this many tests, so the workers share the work


def _operations(app) -> list:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_the_document_has_every_operation(fuzz_world):
    assert len(_operations(fuzz_world["app"])) >= 50  # every operation of the document, none skipped


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_every_operation_answers_as_documented(fuzz_world, chunk):
    failures, tested = [], 0
    for operation in _operations(fuzz_world["app"])[chunk::CHUNKS]:
        tested += 1
        try:
            _fuzz(operation, fuzz_world["headers"])
        except Exception as exc:  # noqa: BLE001 - every operation is fuzzed; all failures are reported
            failures.append(f"{operation.label}: {exc}")
    assert tested >= 50 // CHUNKS, tested
    assert not failures, "\n\n".join(failures)
