from __future__ import annotations

from typing import Literal

from casem.services.case_api.schemas import Answer, Strict


class CaseLinkAttributes(Strict):
    # Plain strings here: the domain checks the allowed values and names them in its 400.
    parent_entity_type: str
    parent_entity_id: str
    child_entity_type: str
    child_entity_id: str
    relationship: str


class CaseLinkCreate(Strict):
    type: Literal["link"]
    attributes: CaseLinkAttributes


class CaseLinkCreateRequest(Strict):
    data: CaseLinkCreate


# -- answers (serialize_link in views.py) ----------------------------------------------------------------------


class CaseLinkAnswerAttributes(Answer):
    parent_entity_type: str
    parent_entity_id: str
    child_entity_type: str
    child_entity_id: str
    relationship: str


class CaseLinkResource(Answer):
    id: str
    type: Literal["link"]
    attributes: CaseLinkAnswerAttributes


class CaseLinkResponse(Answer):
    data: CaseLinkResource


class CaseLinksResponse(Answer):
    data: list[CaseLinkResource]
