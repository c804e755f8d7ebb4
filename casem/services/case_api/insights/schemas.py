from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Strict


class CaseInsightsAttributes(Strict):
    # Items are checked by the domain (casem/domain/insights.py), which points at the offending one.
    insights: list[Any]


class CaseInsightsData(Strict):
    type: Literal["case"]
    attributes: CaseInsightsAttributes


class CaseInsightsRequest(Strict):
    data: CaseInsightsData
