"""Typed input for a paused or suspended flow run: ``from dockyard.input import RunInput``.

::

    from dockyard import flow
    from dockyard.flow_runs import pause_flow_run
    from dockyard.input import RunInput

    class Approval(RunInput):
        approved: bool
        reason: str = ""

    @flow
    def release():
        answer = pause_flow_run(wait_for_input=Approval, timeout=600)
        if answer.approved:
            ...

The run waits until someone resumes it with input that fits the model
(``dockyard flow-run resume ID --input '{"approved": true}'``, the Resume form on the run's
page in the UI, or ``resume_flow_run(id, {"approved": True})``); the server checks the input
against the model's JSON schema first, so a bad one is refused (422 naming the field) and the
run stays paused. The UI builds its form from that schema: give fields a ``description``
(``Field(description=...)``) to explain them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["RunInput"]


class RunInput(BaseModel):
    """The base of models of the input a paused or suspended run waits for.

    A plain pydantic ``BaseModel`` works as well; a RunInput also refuses fields the model
    does not declare, so that a typo in a resume is an error rather than lost.
    """

    model_config = ConfigDict(extra="forbid")
