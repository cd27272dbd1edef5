"""``error_format = "problem-details"`` (draft-ietf-ace-workflow-and-params-08 §6) over real sockets on
::1: the AS answers a malformed token request (invalid_request) and the RS an update the AS uploads
with no token to supersede (missing_old_token, its number from ``workflow_codes``) as RFC 9290 problem
details, byte for byte; the default keeps the RFC 9200 error map. Every await is bounded."""

from __future__ import annotations

from pathlib import Path

import cbor2
from deployment import running_deployment
from support import TIMEOUT

from ace.cbor.labels import ContentFormat
from ace.client.flow import Failed
from ace.coap import as_upload
from ace.errors import ErrorCode
from ace.messages import AuthzInfoUpdate
from ace.problem import WorkflowCodes
from ace.replies import ErrorForm

ACE = int(ContentFormat.ACE_CBOR)
PROBLEM = int(ContentFormat.CONCISE_PROBLEM_DETAILS)
CODES = WorkflowCodes(missing_old_token=200)
ON = {"error_format": "problem-details", "workflow_codes": CODES}
NOT_CBOR = b"\xff"  # a break code with no indefinite item: no CBOR at all
BREAK = b"token request: unexpected break".hex()
NO_T_OLD = b"no token bound to this PoP key".hex()


async def test_invalid_request_at_token_as_problem_details(tmp_path: Path) -> None:
    async with running_deployment(tmp_path, as_changes=ON) as flow:
        reply = await flow.post_to_as(await flow.client(), NOT_CBOR)
    assert (reply.code, reply.content_format) == ((4, 0), PROBLEM)
    # {-2 detail: "token request: unexpected break", 2 ace-error: {0: 1 invalid_request}}
    assert reply.payload.hex() == "a2" + "21" + "781f" + BREAK + "02" + "a10001"


async def test_invalid_request_at_token_keeps_the_error_map_by_default(tmp_path: Path) -> None:
    async with running_deployment(tmp_path) as flow:
        reply = await flow.post_to_as(await flow.client(), NOT_CBOR)
    assert (reply.code, reply.content_format) == ((4, 0), ACE)
    # {30 error: 1 invalid_request, 31 error_description: "token request: unexpected break"}
    assert reply.payload.hex() == "a2" + "181e01" + "181f" + "781f" + BREAK


async def test_missing_old_token_at_authz_info_with_its_configured_number(tmp_path: Path) -> None:
    async with running_deployment(tmp_path, rs_changes=ON) as flow:
        token, _ = flow.token()
        update = AuthzInfoUpdate(access_token=token, updated_rights=True).encode()
        outcome = await as_upload.upload(flow.as_server.context, flow.authz_info_uri, update, ACE,
                                         security=flow.as_server.rs_security("rs1"), timeout=TIMEOUT)
    assert (outcome.code, outcome.content_format) == ((5, 0), PROBLEM)
    # {-2 detail: "no token bound to this PoP key", 2 ace-error: {0: 200 missing_old_token, as configured}}
    assert outcome.payload.hex() == "a2" + "21" + "781e" + NO_T_OLD + "02" + "a10018c8"


async def test_every_site_answers_in_the_configured_form(tmp_path: Path) -> None:
    async with running_deployment(tmp_path, as_changes=ON, rs_changes=ON) as flow:
        form = ErrorForm(problem=True, codes=CODES)
        assert flow.as_server.error_form == flow.rs_server.error_form == form
        sites = [flow.as_server.trl_resource, flow.as_server.introspect_resource, *flow.rs_server._protected]
        assert len(sites) > 2 and all(site.error_form == form for site in sites)
        reply = await flow.post_authz_info(await flow.plain(), NOT_CBOR)  # /authz-info: anyone may POST
    assert (reply.code, reply.content_format) == ((4, 0), PROBLEM)
    assert cbor2.loads(reply.payload)[2] == {0: 1}  # invalid_request


async def test_our_client_reads_the_ace_error_of_problem_details(tmp_path: Path) -> None:
    # a scope the AS grants nobody: 4.00 invalid_scope (RFC 9200 §5.8.3), as problem details
    async with running_deployment(tmp_path, as_changes=ON) as flow:
        outcome = await flow.full_flow(scope="no_such_scope")
    assert isinstance(outcome, Failed) and outcome.step == "token"
    assert "invalid_scope" in outcome.error
    assert outcome.error_response is not None and outcome.error_response.error == ErrorCode.INVALID_SCOPE
