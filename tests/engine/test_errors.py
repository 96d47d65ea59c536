"""The library's exceptions: hierarchy, attributes and messages that say what to fix."""

from __future__ import annotations

import inspect

import pytest

import engine
from engine import errors
from engine.errors import (
    CatalogUnavailableError,
    InvalidSubscriptionError,
    NoParkingCodeError,
    RateLimitedError,
    ServerError,
    SnapshotTimeoutError,
    SubscriptionFailedError,
    UnknownMarketError,
    UpbitEngineError,
)


def test_every_error_is_an_upbit_engine_error_and_exported_from_the_package() -> None:
    classes = [
        value
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and not name.startswith("_")
    ]
    assert {cls.__name__ for cls in classes} == set(errors.__all__) - {"SERVER_ERROR_HINTS"}
    for cls in classes:
        assert issubclass(cls, UpbitEngineError)
        assert getattr(engine, cls.__name__) is cls
        assert cls.__name__ in engine.__all__


def test_invalid_subscription_lists_every_reason() -> None:
    one = InvalidSubscriptionError(["use 'KRW-BTC', not 'krw-btc'"])
    assert str(one) == "invalid subscription: use 'KRW-BTC', not 'krw-btc'"
    assert isinstance(one, ValueError)
    several = InvalidSubscriptionError(iter(["first", "second"]))
    assert several.reasons == ("first", "second")
    assert str(several) == "invalid subscription:\n  - first\n  - second"
    with pytest.raises(ValueError, match="needs at least one reason"):
        InvalidSubscriptionError([])


def test_unknown_market_error() -> None:
    error = UnknownMarketError(["KRW-NOPE", "KRW-FOO"], hint="check the catalog")
    assert isinstance(error, InvalidSubscriptionError)
    assert error.codes == ("KRW-NOPE", "KRW-FOO")
    assert error.reasons == ("not listed on Upbit: KRW-NOPE, KRW-FOO (check the catalog)",)
    assert (
        str(UnknownMarketError(["KRW-NOPE"]))
        == "invalid subscription: not listed on Upbit: KRW-NOPE"
    )


def test_server_error() -> None:
    error = ServerError("INVALID_PARAM", "잘못된 요청입니다.")
    assert (error.name, error.server_message) == ("INVALID_PARAM", "잘못된 요청입니다.")
    assert str(error).startswith("Upbit error INVALID_PARAM: 잘못된 요청입니다. (")
    assert "check the type and options" in str(error)
    unknown = ServerError("SOMETHING_NEW", "x")
    assert (unknown.hint, str(unknown)) == ("", "Upbit error SOMETHING_NEW: x")


def test_every_documented_error_name_has_a_hint() -> None:
    names = {"WRONG_FORMAT", "NO_TICKET", "NO_TYPE", "NO_CODES", "INVALID_PARAM", "INVALID_AUTH"}
    names |= {"Too Many Requests", "I'm a teapot"}
    assert all(ServerError(name, "").hint for name in names)


@pytest.mark.parametrize(
    ("status", "retry_after", "detail", "expected"),
    [
        (429, None, "", "Upbit rate limited (429) (Upbit allows 5 connects/s per IP"),
        (429, 1.5, "", "Upbit rate limited (429); retry after 1.5 s (Upbit allows"),
        (
            418,
            60.0,
            "blocked for 60 s",
            "Upbit blocked (418); retry after 60 s: blocked for 60 s (",
        ),
    ],
)
def test_rate_limited_error(
    status: int, retry_after: float | None, detail: str, expected: str
) -> None:
    error = RateLimitedError(status, retry_after=retry_after, detail=detail)
    assert str(error).startswith(expected)
    assert error.status == status
    assert error.retry_after == retry_after


def test_snapshot_timeout_names_what_is_missing_in_order() -> None:
    error = SnapshotTimeoutError([("trade", "KRW-ETH"), ("ticker", "KRW-BTC")], 5.0)
    assert error.missing == (("ticker", "KRW-BTC"), ("trade", "KRW-ETH"))
    assert error.timeout == 5.0
    assert str(error) == (
        "no SNAPSHOT within 5 s for ticker:KRW-BTC, trade:KRW-ETH; "
        "check the codes are listed and trading"
    )


def test_subscription_failed_error() -> None:
    error = SubscriptionFailedError("sub-1", "subscriber buffer overflowed (policy: fail)")
    assert (error.subscription_id, error.cause) == (
        "sub-1",
        "subscriber buffer overflowed (policy: fail)",
    )
    assert str(error) == "subscription sub-1 failed: subscriber buffer overflowed (policy: fail)"


def test_no_parking_code_error_is_a_lookup_error() -> None:
    error = NoParkingCodeError("no parking code; use hard_unsubscribe")
    assert isinstance(error, LookupError)
    assert "hard_unsubscribe" in str(error)


def test_plain_errors_carry_their_message() -> None:
    error = CatalogUnavailableError("GET https://api.upbit.com/v1/market/all failed: HTTP 500")
    assert "HTTP 500" in str(error)
