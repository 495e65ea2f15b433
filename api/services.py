"""What the application holds for its lifetime, and the litestar dependencies drawn from it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from accounts.login_limits import LoginLimits, SignUpLimits
from accounts.sessions import TokenIssuer
from api.client_address import client_host
from api.transactions import request_unit_of_work
from domain.clock import Clock
from geofence.catalog import StoreCatalog
from geofence.limits import CheckInLimits
from geofence.rules import CheckInPolicy, load_check_in_policy
from infra.db import Database, UnitOfWork, create_engine
from infra.redis import RedisKeys, connect_redis
from infra.settings import Settings
from offers.catalogue import CatalogueRules
from offers.program import OfferProgram, load_offer_program
from offers.selection import OpenOffers
from offers.versions import ServingPolicy
from points.program import Program, load_program
from push.policy import PushPolicy, load_push_policy
from stores.pos_auth import PosAuthenticator


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    db: Database
    redis: RedisKeys
    issuer: TokenIssuer
    login_limits: LoginLimits
    sign_up_limits: SignUpLimits
    pos_auth: PosAuthenticator
    program: Program
    check_in_policy: CheckInPolicy
    check_in_limits: CheckInLimits
    store_catalog: StoreCatalog
    push_policy: PushPolicy
    offer_program: OfferProgram
    catalogue_rules: CatalogueRules
    serving_policy: ServingPolicy
    open_offers: OpenOffers
    offer_rng: np.random.Generator  # draws the offers the policy's probabilities choose

    @classmethod
    def start(cls, settings: Settings, clock: Clock) -> Services:
        assert settings.database_url is not None, "embedded servers are started before the app"
        assert settings.redis_url is not None
        redis = RedisKeys(connect_redis(settings.redis_url), settings.redis_key_prefix)
        check_in_policy = load_check_in_policy(settings.check_in_policy)
        offer_program = load_offer_program(settings.offer_program)
        program = load_program(settings.points_program)
        return cls(
            settings=settings,
            clock=clock,
            db=Database(
                create_engine(settings.database_url, settings.database_pool_size),
                reader=create_engine(settings.database_url, settings.database_read_pool_size, read_only=True),
            ),
            redis=redis,
            issuer=TokenIssuer(
                signing_keys=settings.key_ring("jwt_signing_key"),
                code_signing_keys=settings.key_ring("code_signing_key"),
                access_ttl=timedelta(seconds=settings.access_token_ttl_s),
                refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
                clock=clock,
            ),
            login_limits=LoginLimits(
                redis,
                settings.login_attempts_per_window,
                settings.login_window_s,
                settings.login_attempts_per_address_per_window,
            ),
            sign_up_limits=SignUpLimits(
                redis, settings.sign_ups_per_address_per_window, settings.sign_up_window_s
            ),
            pos_auth=PosAuthenticator(
                settings.key_ring("terminal_key"),
                settings.pos_clock_skew_s,
                redis,
                clock,
                require_nonce=settings.pos_require_nonce,
            ),
            program=program,
            check_in_policy=check_in_policy,
            check_in_limits=CheckInLimits(redis, check_in_policy.attempts_per_hour),
            store_catalog=StoreCatalog(),
            push_policy=load_push_policy(settings.push_policy),
            offer_program=offer_program,
            catalogue_rules=CatalogueRules(
                program.time_zone, program.earning.point_value_minor, offer_program
            ),
            serving_policy=ServingPolicy(offer_program.selection),
            open_offers=OpenOffers(),
            offer_rng=np.random.default_rng(),
        )

    async def stop(self) -> None:
        await self.db.dispose()
        await self.redis.client.aclose()


def services_of(state: State) -> Services:
    services: Services = state.services
    return services


def provide_uow(request: Request[Any, Any, Any]) -> UnitOfWork:
    """The request's transaction, which `api.transactions` settles when the response starts."""
    return request_unit_of_work(request)


def provide_clock(state: State) -> Clock:
    return services_of(state).clock


def provide_issuer(state: State) -> TokenIssuer:
    return services_of(state).issuer


def provide_login_limits(request: Request[Any, Any, Any], state: State) -> LoginLimits:
    """The login limits, counting this request's client address too."""
    return services_of(state).login_limits.from_address(client_host(request))


def provide_sign_up_limits(request: Request[Any, Any, Any], state: State) -> SignUpLimits:
    return services_of(state).sign_up_limits.from_address(client_host(request))


def provide_settings(state: State) -> Settings:
    return services_of(state).settings


def provide_program(state: State) -> Program:
    return services_of(state).program


def provide_push_policy(state: State) -> PushPolicy:
    return services_of(state).push_policy


def provide_offer_program(state: State) -> OfferProgram:
    return services_of(state).offer_program


def provide_catalogue_rules(state: State) -> CatalogueRules:
    return services_of(state).catalogue_rules


# Handler parameters name their dependencies explicitly (litestar 3 drops inference by name).
Uow = NamedDependency[UnitOfWork]
ClockDep = NamedDependency[Clock]
IssuerDep = NamedDependency[TokenIssuer]
LoginLimitsDep = NamedDependency[LoginLimits]
SignUpLimitsDep = NamedDependency[SignUpLimits]
SettingsDep = NamedDependency[Settings]
ProgramDep = NamedDependency[Program]
PushPolicyDep = NamedDependency[PushPolicy]
OfferProgramDep = NamedDependency[OfferProgram]
CatalogueRulesDep = NamedDependency[CatalogueRules]

DEPENDENCIES = {
    "uow": Provide(provide_uow, sync_to_thread=False),
    "clock": Provide(provide_clock, sync_to_thread=False),
    "issuer": Provide(provide_issuer, sync_to_thread=False),
    "login_limits": Provide(provide_login_limits, sync_to_thread=False),
    "sign_up_limits": Provide(provide_sign_up_limits, sync_to_thread=False),
    "settings": Provide(provide_settings, sync_to_thread=False),
    "program": Provide(provide_program, sync_to_thread=False),
    "push_policy": Provide(provide_push_policy, sync_to_thread=False),
    "offer_program": Provide(provide_offer_program, sync_to_thread=False),
    "catalogue_rules": Provide(provide_catalogue_rules, sync_to_thread=False),
}
