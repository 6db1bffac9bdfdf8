"""The rules docs/openapi.yaml states only in words, for scripts/check-api.sh.

schemathesis's `positive_data_acceptance` check fails a request the schema allows that the
API refuses. Some refusals follow rules no JSON Schema can state: a ticket this API issued, a
range of two dates, a zone in the time zone database, the deployment's allow-list. This hook
drops exactly those: a 400 to a schema-valid request whose `Error` names the field and reason
of one rule below. Any other refusal of what the schema allows stays a failure, and so does
every failure of every other check.
"""

import json

import schemathesis

# operationId -> {error field: the words of each refusal the rule makes (any, when empty)}.
# `None` stands for the field of a `bad_request`, which has none.
STATED_IN_WORDS = {
    # The ticket must be one this API issued in the last 60 seconds and never used.
    "startConsent": {"ticket": ()},
    # The state must be one this API issued, unused, and equal to this browser's cookie.
    "completeOAuthCallback": {"state": ()},
    # `return_to` must be on the deployment's allow-list (STEPSYNC_RETURN_TO_ALLOWLIST).
    "authorizeConnection": {"return_to": ("is not an allowed return address",)},
    # `to` must not be before `from`, nor more than 93 days after it (both included).
    "listSteps": {"to": ("must not be before from", "at most 93 days")},
    # `end_date` must not be before `start_date`, nor more than 366 days after it; the zone
    # must be in the time zone database.
    "createChallenge": {
        "end_date": ("must not be before start", "a challenge lasts at most 366 days"),
        "time_zone": ("unknown time zone",),
    },
    # The zone must be in the time zone database; `observed_at` must not be ahead of the
    # server's clock; and an upload with no usable day is refused (see USABLE_ONLY_IN_WORDS).
    "uploadDeviceSteps": {
        "time_zone": ("is not an IANA time zone",),
        "observed_at": ("is in the future",),
        "days": ("no day in the upload is usable",),
    },
    # `page_token` must be one this leaderboard issued: it encodes a place in it.
    "getLeaderboard": {"page_token": ()},
    # `cursor` must be one this list (or this export) gave: it encodes a place in it.
    "getSyncHealth": {"cursor": ()},
    "exportResults": {"cursor": ()},
    # Routed only so that providers' probes reach the handler: every one is refused.
    "probeWebhookGet": {None: ()},
    "probeWebhookHead": {None: ()},
}

# Why a day of a schema-valid upload can still be rejected: a date after the person's local
# tomorrow, the same date twice with different counts, a count over the deployment's cap
# (STEPSYNC_MAX_DAILY_STEPS), or a date before the installation was linked to this person.
# `invalid_date`, `not_an_integer` and `negative` are rules the schema states itself.
USABLE_ONLY_IN_WORDS = {"future_date", "duplicate_date", "above_cap", "before_device_linked"}


def stated_in_words(operation_id, path_parameters, response):
    """Whether this 400 is one of the rules above."""
    if response.status_code != 400:
        return False
    if operation_id == "probeWebhookHead":
        return True  # a HEAD answer has no body to read the reason from
    try:
        body = json.loads(response.content)
        error = body["error"]
    except (ValueError, KeyError, TypeError):
        return False
    if operation_id == "receiveWebhook":
        # Misfit's SNS messages carry their signature inside: a body that is not one is 400
        # before any signature check, and the schema cannot tie the body's shape to
        # `{provider}`.
        return path_parameters.get("provider") == "misfit" and error.get("code") == "bad_request"
    rule = STATED_IN_WORDS.get(operation_id, {})
    field = error.get("field")
    if field not in rule:
        return False
    words = rule[field]
    if words and not any(w in error.get("message", "") for w in words):
        return False
    if operation_id == "uploadDeviceSteps" and field == "days":
        return all(day.get("error") in USABLE_ONLY_IN_WORDS for day in body.get("rejected", []))
    return True


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if failure.code != "ST202":  # "Schema-valid request rejected"
        return True
    operation_id = case.operation.definition.raw.get("operationId")
    return not stated_in_words(operation_id, case.path_parameters or {}, response)
