"""Chaos knobs: how unreliable the simulator is, set by `SIM_CHAOS` or `PUT /simulator/chaos`.

Every knob has a safe default (a well-behaved Daraja), so `{}` means "no chaos". A PUT merges
into the knobs already set; unknown knobs and out-of-range values are refused with a message
naming the knob, because a silently ignored typo makes a fault test pass for the wrong reason.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

#: A probability.
Rate = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
#: A non-negative number of seconds.
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=3600.0)]
#: A Safaricom MSISDN as Daraja accepts it in PartyA.
Msisdn = Annotated[str, msgspec.Meta(pattern=r"^254[17][0-9]{8}$")]

_KNOB_IN_ERROR = (
    re.compile(r"at `\$\.([A-Za-z]+)"),
    re.compile(r"unknown field `([^`]+)`"),
    re.compile(r"^([A-Za-z]+) must"),
)


class Chaos(msgspec.Struct, frozen=True, kw_only=True, rename="camel", forbid_unknown_fields=True):
    """The knobs; JSON names are camelCase (`latencyMs`, `pushErrorRate`, ...)."""

    #: Added to every Daraja answer.
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=600_000)] = 0
    #: Push refused with 500.003.02 before anything is sent.
    push_error_rate: Rate = 0.0
    #: Push hangs for `hang_s` although the prompt goes out (as 254700000008 does).
    push_timeout_rate: Rate = 0.0
    #: Query answers a spurious 500 500.001.1001 even when the outcome is known.
    query_error_rate: Rate = 0.0
    #: A callback is silently never sent.
    callback_drop_rate: Rate = 0.0
    #: A callback is sent twice.
    callback_duplicate_rate: Rate = 0.0
    #: [min, max] seconds before a prompt resolves; overrides SIM_CALLBACK_DELAY when set.
    callback_delay_s: tuple[Seconds, Seconds] | None = None
    #: Lifetime of new access tokens (Daraja says 3599).
    token_lifetime_s: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 3599
    #: Answer an Apigee fault body (`{"fault": ...}`, HTTP 503) instead of Daraja's shape.
    fault_rate: Rate = 0.0
    #: Answer an HTML page (HTTP 200, text/html) instead of JSON.
    html_rate: Rate = 0.0
    #: How long a hanging push sleeps before answering (longer than any sane client timeout).
    hang_s: Annotated[float, msgspec.Meta(gt=0.0, le=3600.0)] = 30.0
    #: Requests per second over which push/query get 500.003.02 Spike Arrest; 0 = no limit.
    spike_arrest_per_s: Annotated[int, msgspec.Meta(ge=0)] = 0
    #: Leave every prompt open until resolved by hand (the virtual phone).
    manual: bool = False
    #: Leave prompts to these numbers open until resolved by hand.
    manual_phones: tuple[Msisdn, ...] = ()
    #: A prompt left open by hand times out as 1037 after this long; null = never.
    prompt_timeout_s: Annotated[float, msgspec.Meta(gt=0.0)] | None = 60.0
    #: Shuffle the callback's metadata items (clients must look them up by Name).
    shuffle_callback_items: bool = False
    #: A new token invalidates the earlier ones (the Daraja portal FAQ says so).
    revoke_old_tokens: bool = False
    #: Seed for the random draws behind every rate; null = unpredictable.
    seed: int | None = None

    def __post_init__(self) -> None:
        if (
            self.callback_delay_s is not None
            and self.callback_delay_s[0] > self.callback_delay_s[1]
        ):
            raise ValueError("callbackDelayS must be [min, max] with min <= max")


class ChaosError(ValueError):
    """A bad knob value; `field` names the knob when it is known."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def parse_chaos(raw: bytes) -> Chaos:
    """Knobs from a complete JSON object (`SIM_CHAOS`); unset knobs take their defaults."""
    return _convert(_decode_object(raw))


def merge_chaos(current: Chaos, raw: bytes) -> Chaos:
    """`current` with the knobs named in the JSON object `raw` replaced."""
    merged = chaos_to_json(current)
    merged.update(_decode_object(raw))
    return _convert(merged)


def chaos_to_json(chaos: Chaos) -> dict[str, Any]:
    """The knobs as the JSON object `GET /simulator/chaos` answers."""
    as_dict: dict[str, Any] = msgspec.to_builtins(chaos)
    return as_dict


def _decode_object(raw: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ChaosError(f"chaos must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        raise ChaosError("chaos must be a JSON object of knobs")
    return value


def _convert(knobs: dict[str, Any]) -> Chaos:
    try:
        return msgspec.convert(knobs, type=Chaos)
    except msgspec.ValidationError as exc:
        message = str(exc)
        raise ChaosError(f"bad chaos knob: {message}", _knob_named(message)) from None


def _knob_named(message: str) -> str | None:
    # msgspec says "... - at `$.knob`" or "unknown field `knob`"; __post_init__ starts with it.
    for pattern in _KNOB_IN_ERROR:
        found = pattern.search(message)
        if found:
            return found.group(1)
    return None
