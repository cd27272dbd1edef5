"""RFC 9290 concise problem details carrying ACE error codes (draft-ietf-ace-workflow-and-params-08 §6, §7).

Content-Format 257 (application/concise-problem-details+cbor): a map with the custom key ace-error
(``ProblemDetail.ACE_ERROR``, 2) → ``{0: error code}``, and optional title (-1), detail (-2, the old
error_description) and instance (-3, the old error_uri). The error codes the workflow draft adds have
no number yet: ``WorkflowCodes`` holds them (configurable). ``ace.replies.reply_of`` answers with
problem details for those always, and for every RFC 9200 error code when asked (``problem=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ace.cbor import codec
from ace.cbor.codec import MapReader
from ace.cbor.labels import ProblemDetail
from ace.errors import ConfigError, DecodeError, ErrorCode, RemoteError, WorkflowError

ACE_ERROR_CODE = 0  # the key of the error code inside the ace-error map (WF §6)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowCodes:
    """Error code numbers of WF §11.1 (TBD at IANA, 1..255 asked): ours until assigned."""

    missing_old_token: int = 9
    unknown_credential_referenced: int = 10
    failed_pop_verification: int = 11

    def code_of(self, name: str) -> int:
        return int(getattr(self, name))


DEFAULT_CODES = WorkflowCodes()
CODE_RANGE = range(1, 256)  # WF §11.1: TBD, a value between 1 and 255


def workflow_codes(table: Any, where: str) -> WorkflowCodes:
    """``[workflow_codes]`` of a config file: ints in 1..255, distinct, none an RFC 9200 §8.4 code."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: workflow_codes must be a table of error code numbers")
    names = {f.name for f in fields(WorkflowCodes)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise ConfigError(f"{where}: workflow_codes: unknown error {unknown[0]!r}; allowed: {', '.join(sorted(names))}")
    codes = WorkflowCodes(**table)
    taken = {int(c): c.name.lower() for c in ErrorCode}
    for name in sorted(names):
        value = getattr(codes, name)
        if isinstance(value, bool) or not isinstance(value, int) or value not in CODE_RANGE:
            raise ConfigError(f"{where}: workflow_codes: {name} must be an int from 1 to 255")
        if value in taken:
            raise ConfigError(f"{where}: workflow_codes: {name} = {value} is already {taken[value]}")
        taken[value] = name
    return codes


@dataclass(frozen=True, slots=True, kw_only=True)
class ProblemDetails:
    """One problem-details map; ``ace_error``: the ACE error code (None: no ace-error entry)."""

    ace_error: int | None = None
    title: str | None = None
    detail: str | None = None
    instance: str | None = None
    extra: tuple[tuple[Any, Any], ...] = ()

    def to_map(self) -> dict[int, Any]:
        m: dict[int, Any] = {}
        for label, value in ((ProblemDetail.TITLE, self.title), (ProblemDetail.DETAIL, self.detail),
                             (ProblemDetail.INSTANCE, self.instance)):
            if value is not None:
                m[int(label)] = value
        if self.ace_error is not None:
            m[int(ProblemDetail.ACE_ERROR)] = {ACE_ERROR_CODE: self.ace_error}
        m.update(self.extra)
        return m

    def encode(self) -> bytes:
        return codec.dumps(self.to_map())

    @classmethod
    def decode(cls, data: bytes) -> ProblemDetails:
        r = MapReader(codec.loads(data, what="problem details"), "problem details", ProblemDetail)
        ace = r.map_(ProblemDetail.ACE_ERROR)
        code = None
        if ace is not None:
            code = ace.get(ACE_ERROR_CODE)
            if isinstance(code, bool) or not isinstance(code, int):
                raise DecodeError("problem details: ace-error must be {0: int}")
        return cls(ace_error=code, title=r.text(ProblemDetail.TITLE), detail=r.text(ProblemDetail.DETAIL),
                   instance=r.text(ProblemDetail.INSTANCE), extra=codec.freeze_extra(r.extra()))


def problem_of(error: RemoteError, codes: WorkflowCodes = DEFAULT_CODES) -> ProblemDetails | None:
    """The problem details for ``error``: its RFC 9200 code or its workflow code, with its
    description as detail; None if it has no error code at all."""
    if isinstance(error, WorkflowError) and error.wf_error:
        return ProblemDetails(ace_error=codes.code_of(error.wf_error), detail=error.description)
    if error.error_code is None:
        return None
    return ProblemDetails(ace_error=int(error.error_code), detail=error.description)
