"""The policy version that serves: the newest learned model, picked up by every process without restart.

Each request asks PostgreSQL for the newest version number (an index lookup); the model itself is loaded
and prepared only when that number changes. Version 0 is the prior: nothing learned yet.
"""

from __future__ import annotations

from sqlalchemy import func, select

from infra.db import UnitOfWork
from offers.rules.policy import LinearModel, PolicyParams, Scorer
from offers.tables import OfferPolicyVersion


async def latest_model(uow: UnitOfWork) -> tuple[int, LinearModel]:
    row = (
        await uow.session.execute(
            select(OfferPolicyVersion.version, OfferPolicyVersion.model)
            .order_by(OfferPolicyVersion.version.desc())
            .limit(1)
        )
    ).one_or_none()
    return (0, LinearModel()) if row is None else (row.version, LinearModel.from_bytes(row.model))


class ServingPolicy:
    def __init__(self, params: PolicyParams) -> None:
        self.params = params
        self._version = 0
        self._scorer = Scorer(LinearModel(), params)

    async def current(self, uow: UnitOfWork) -> tuple[int, Scorer]:
        newest = await uow.session.scalar(select(func.max(OfferPolicyVersion.version))) or 0
        if newest != self._version:
            version, model = await latest_model(uow)
            self._version, self._scorer = version, Scorer(model, self.params)
        return self._version, self._scorer
