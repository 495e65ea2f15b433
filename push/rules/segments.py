"""The audience language: a segment is a list of conditions a member must all meet.

The same language targets push campaigns and offers (offers use its trait conditions, timeline.segments).
Each condition names its `field`; an unknown field, value or key is refused (400 validation_failed).
Traits are as the member's traits show them (docs/timeline.md); facts are read live from the ledger, the
check-ins and the member's devices.

```json
{"all": [
  {"field": "lifecycle_stage", "in": ["at_risk", "lapsed"]},
  {"field": "health_score", "min": 0, "max": 40},
  {"field": "rfm", "score": "frequency", "min": 3},
  {"field": "stage", "in": ["gold", "platinum"]},
  {"field": "favourite_store", "store_id": "0196..."},
  {"field": "visited_store", "store_id": "0196...", "within_days": 30},
  {"field": "near_store", "store_id": "0196...", "within_km": 5},
  {"field": "points_expiring", "within_days": 30, "min_points": 100},
  {"field": "push_permission", "granted": true}
]}
```

`near_store` means the member's favourite store lies within that distance of the named store: members
have no address, and the store they use most is where they are.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from points.rules.stages import Stage
from timeline.segments import (
    MAX_CONDITIONS,
    ConditionBase,
    FavouriteStoreIs,
    HealthScoreBetween,
    LifecycleStageIn,
    RfmBetween,
    check_ranges,
)

Days = Annotated[int, msgspec.Meta(ge=1, le=366)]


class StageIn(ConditionBase, frozen=True, tag="stage"):
    # As many as there are stages: more could only repeat one, and every member is tested against the list.
    in_: Annotated[list[Stage], msgspec.Meta(min_length=1, max_length=len(Stage))] = msgspec.field(name="in")


class VisitedStore(ConditionBase, frozen=True, tag="visited_store"):
    store_id: uuid.UUID
    within_days: Days


class NearStore(ConditionBase, frozen=True, tag="near_store"):
    store_id: uuid.UUID
    within_km: Annotated[float, msgspec.Meta(gt=0, le=500)]


class PointsExpiring(ConditionBase, frozen=True, tag="points_expiring"):
    within_days: Days
    min_points: Annotated[int, msgspec.Meta(ge=1, le=10**9)] = 1


class PushPermission(ConditionBase, frozen=True, tag="push_permission"):
    granted: bool = True


Condition = (
    LifecycleStageIn
    | HealthScoreBetween
    | RfmBetween
    | StageIn
    | FavouriteStoreIs
    | VisitedStore
    | NearStore
    | PointsExpiring
    | PushPermission
)


class Segment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Members meeting every condition (no condition: every member)."""

    all: Annotated[list[Condition], msgspec.Meta(max_length=MAX_CONDITIONS)] = msgspec.field(
        default_factory=list
    )

    def __post_init__(self) -> None:
        check_ranges(self.all)

    def store_ids(self) -> set[uuid.UUID]:
        return {c.store_id for c in self.all if isinstance(c, FavouriteStoreIs | VisitedStore | NearStore)}
