#!/usr/bin/env python3
"""StepSync's known-answer provider fixtures, made and checked independently of the Rust code.

    scripts/fixtures.py generate [--out DIR]   write every fixture (default: fixtures/)
    scripts/fixtures.py check                  verify the committed fixtures/, one line a check

The bodies are made-up values in the providers' documented shapes (docs and fixtures/README.md
say which facts they carry). The keys are derived from SEED below, and every signature is
deterministic (RFC 6979 ECDSA, PKCS#1 v1.5 RSA, HMAC), so `generate` run twice writes the
same bytes and `check` can insist on it. The keys are public test keys: anyone can derive
them from this file, so nothing they sign may ever be trusted outside the tests.

Only Python's standard library and the `cryptography` package (pinned in
requirements-dev.txt) are used: none of this shares code with the Rust verifiers it tests.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import hmac
import itertools
import json
import math
import sys
import tempfile
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

# Everything secret-looking below comes from this public seed. Changing it changes every key,
# signature and certificate (and the tests must then be run again).
SEED = b"StepSync known-answer fixtures, test keys only, v1"

# --- shared values (tests assert some of them) ---

GOOGLE_KEY_ID = 1837264519
HEALTH_USER_ID = "114477889900112233445"
LEGACY_USER_ID = "228S74"
ACTIVITY_SCOPE = "https://www.googleapis.com/auth/googlehealth.activity_and_fitness.readonly"
ROLLUP_PAGE_TOKEN = "CgwIABIIMjAyNi0xMS0yNQ"
FITBIT_CLIENT_SECRET = "fixture-client-secret"
SNS_HOST = "sns.fixture.test"
SNS_CERT_URL = f"https://{SNS_HOST}/SimpleNotificationService-fixture.pem"
SNS_TOPIC = "arn:aws:sns:us-east-1:123456789012:misfit-fixture"
SNS_CERT_SERIAL = 20261126
SNS_CERT_NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
SNS_CERT_NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.timezone.utc)
TINK_ECDSA_TYPE_URL = "type.googleapis.com/google.crypto.tink.EcdsaPublicKey"

# The known answers of the two roll-up pages: civil date -> steps. Dates not listed are "no data".
ROLLUP_ANSWERS = {
    "2026-11-21": 11873,
    "2026-11-22": 6240,
    "2026-11-23": 0,
    "2026-11-24": 0,
    "2026-11-25": 4310,
}
MISFIT_ANSWERS = {"2026-11-22": 9823, "2026-11-23": 3011}
# Oura: the app's client secret (the fake's default), the sandbox person, the notification's
# signing instant, and the daily_activity known answers (days in Europe/Helsinki, UTC+2 in November).
OURA_CLIENT_SECRET = "fake-oura-secret"
OURA_USER_ID = "2f9a6c1e-5b3d-4e7f-8a90-1c2d3e4f5a6b"
OURA_TIMESTAMP = "1795504329"  # 2026-11-24T07:12:09Z, the x-oura-timestamp of the notification
OURA_EVENT_TIME = "2026-11-24T07:12:09+00:00"
OURA_NEXT_TOKEN = "MnwyMDI2LTExLTIxLzIwMjYtMTEtMjQ"
OURA_ANSWERS = {"2026-11-21": 10234, "2026-11-22": 3987, "2026-11-23": 0}
# Withings: the app (the fake's defaults), a sandbox person in Europe/Paris (UTC+1 in November),
# the getactivity known answers, the signing instant of getnonce and the nonce revoke signs.
WITHINGS_CLIENT_ID = "fake-withings-client"
WITHINGS_CLIENT_SECRET = "fake-withings-secret"
WITHINGS_USER_ID = "31415926"
WITHINGS_ZONE = "Europe/Paris"
WITHINGS_TIMESTAMP = "1795504329"  # 2026-11-24T07:12:09Z, the getnonce timestamp
WITHINGS_NONCE = "fixture-withings-nonce-4f1c2a"
WITHINGS_ANSWERS = {"2026-11-21": 10234, "2026-11-22": 3987, "2026-11-23": 0}
WITHINGS_CALLBACK = "https://stepsync.example/webhooks/withings?token=fixture-webhook-token"
# Polar: the webhook's signature_secret_key (UUID-shaped, as Polar's are), the sandbox person's
# Polar user id, the callback the webhook points at, and the activity-summary known answers
# (days on the device's own clock).
POLAR_SIGNATURE_KEY = "0f8c6a52-3b1d-4e7f-9a2c-5d4e3f2a1b0c"
POLAR_USER_ID = 2278512
POLAR_CALLBACK = "https://stepsync.example/webhooks/polar"
POLAR_WEBHOOK_ID = "abdf33"
POLAR_ANSWERS = {"2026-11-21": 10234, "2026-11-22": 3987, "2026-11-23": 0}
GARMIN_USER_ID = "4aacafe82427c251df9c9592d0c06768"
GARMIN_API = "https://apis.garmin.com/wellness-api/rest"
GARMIN_PULL_TOKEN = "fixture-garmin-pull-7c1e"
GARMIN_UPLOAD = (1796256000, 1796256300)  # 2026-12-03T00:00:00Z, five minutes
GARMIN_PKCE_VERIFIER = "fixture-garmin-verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
# (calendar date, offset from UTC in seconds, seconds of the day recorded, steps), upload order:
# the second day is synced mid-day (6h, 2210 steps), then whole (24h, 9876 steps).
GARMIN_DAILIES = [
    ("2026-11-30", -25200, 86400, 11873),
    ("2026-12-01", 3600, 21600, 2210),
    ("2026-12-01", 3600, 86400, 9876),
    ("2026-12-02", 32400, 86400, 0),
]

# --- JSON writing ---


def pretty(value) -> bytes:
    """Indented JSON with a final newline, as the APIs' examples are usually stored."""
    return (json.dumps(value, indent=2) + "\n").encode()


def compact(value) -> bytes:
    """Compact JSON, no final newline: a webhook body exactly as it is signed and sent."""
    return json.dumps(value, separators=(",", ":")).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- keys (derived, so regeneration is reproducible) ---


def stream(label: str, length: int) -> bytes:
    return hashlib.shake_256(SEED + b"/" + label.encode()).digest(length)


def google_signing_key() -> ec.EllipticCurvePrivateKey:
    order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551  # P-256's n
    scalar = int.from_bytes(stream("google-health/webhook-ecdsa-p256", 48), "big") % (order - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, math.isqrt(p) + 1))]


def probably_prime(n: int) -> bool:
    if any(n % p == 0 for p in SMALL_PRIMES):
        return n in SMALL_PRIMES
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in SMALL_PRIMES[:40]:  # 40 Miller-Rabin rounds with fixed bases: reproducible
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def derived_prime(label: str, bits: int, e: int) -> int:
    for counter in itertools.count():
        candidate = int.from_bytes(stream(f"{label}/{counter}", bits // 8), "big")
        candidate |= (3 << (bits - 2)) | 1  # top two bits set: p*q has exactly 2*bits bits
        if math.gcd(e, candidate - 1) == 1 and probably_prime(candidate):
            return candidate
    raise AssertionError("unreachable")


def sns_signing_key() -> rsa.RSAPrivateKey:
    e = 65537
    p = derived_prime("misfit/sns-rsa-2048/p", 1024, e)
    q = derived_prime("misfit/sns-rsa-2048/q", 1024, e)
    assert p != q
    p, q = max(p, q), min(p, q)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p),
        dmq1=rsa.rsa_crt_dmq1(d, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    return numbers.private_key()


# --- Google Health ---


def civil(date: str, time: dict | None) -> dict:
    year, month, day = (int(part) for part in date.split("-"))
    out = {"date": {"year": year, "month": month, "day": day}}
    if time is not None:
        out["time"] = time
    return out


def rollup_point(start: str, end: str, steps: dict, time: dict | None = None) -> dict:
    return {"civilStartTime": civil(start, time), "civilEndTime": civil(end, time), "steps": steps}


def daily_rollup_pages() -> tuple[dict, dict]:
    # Out of order (21, 23, 22, 24), every form of a count: string, explicit "0", JSON number
    # without `time` (midnight), and `steps: {}` (proto3 JSON leaves out a zero countSum).
    page1 = {
        "rollupDataPoints": [
            rollup_point("2026-11-21", "2026-11-22", {"countSum": "11873"}, {}),
            rollup_point("2026-11-23", "2026-11-24", {"countSum": "0"}, {}),
            rollup_point("2026-11-22", "2026-11-23", {"countSum": 6240}),
            rollup_point("2026-11-24", "2026-11-25", {}, {}),
        ],
        "nextPageToken": ROLLUP_PAGE_TOKEN,
    }
    page2 = {"rollupDataPoints": [rollup_point("2026-11-25", "2026-11-26", {"countSum": "4310"}, {})]}
    return page1, page2


def google_error(
    code: int, message: str, status: str, reason: str | None = None, metadata=None, domain="health.googleapis.com"
) -> dict:
    error = {"code": code, "message": message, "status": status}
    if reason:
        info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain}
        if metadata:
            info["metadata"] = metadata
        error["details"] = [info]
    return {"error": error}


def token(access: str, refresh: str | None, scope: str) -> dict:
    out = {"access_token": access, "expires_in": 3599}
    if refresh:
        out["refresh_token"] = refresh
    out["scope"] = scope
    out["token_type"] = "Bearer"
    return out


def notification(subscription: str, operation: str, interval: dict) -> dict:
    return {
        "data": {
            "version": "1",
            "clientProvidedSubscriptionName": subscription,
            "healthUserId": HEALTH_USER_ID,
            "operation": operation,
            "dataType": "steps",
            "intervals": [interval],
        }
    }


def upsert_interval() -> dict:
    # 09:05-10:10 on 24 November in New York (UTC-5): the civil forms beside the physical one.
    return {
        "physicalTimeInterval": {"startTime": "2026-11-24T14:05:00Z", "endTime": "2026-11-24T15:10:00Z"},
        "civilDateTimeInterval": {
            "startDateTime": {"date": {"year": 2026, "month": 11, "day": 24}, "time": {"hours": 9, "minutes": 5}},
            "endDateTime": {"date": {"year": 2026, "month": 11, "day": 24}, "time": {"hours": 10, "minutes": 10}},
        },
        "civilIso8601TimeInterval": {"startTime": "2026-11-24T09:05:00", "endTime": "2026-11-24T10:10:00"},
    }


def tink_ecdsa_public_key(key: ec.EllipticCurvePublicKey) -> bytes:
    """Tink's EcdsaPublicKey proto: version 0, params {SHA256, NIST_P256, DER}, x, y.

    Like Google's, x and y are 33 bytes: a leading zero byte, then the 32-byte coordinate.
    """
    numbers = key.public_numbers()
    x = b"\x00" + numbers.x.to_bytes(32, "big")
    y = b"\x00" + numbers.y.to_bytes(32, "big")
    params = bytes([0x08, 3, 0x10, 2, 0x18, 2])  # hash_type SHA256, curve NIST_P256, encoding DER
    return (
        bytes([0x08, 0])
        + bytes([0x12, len(params)])
        + params
        + bytes([0x1A, len(x)])
        + x
        + bytes([0x22, len(y)])
        + y
    )


def webhook_keyset(key: ec.EllipticCurvePublicKey) -> dict:
    return {
        "primaryKeyId": GOOGLE_KEY_ID,
        "key": [
            {
                "keyData": {
                    "typeUrl": TINK_ECDSA_TYPE_URL,
                    "value": b64(tink_ecdsa_public_key(key)),
                    "keyMaterialType": "ASYMMETRIC_PUBLIC",
                },
                "status": "ENABLED",
                "keyId": GOOGLE_KEY_ID,
                "outputPrefixType": "TINK",
            }
        ],
    }


def google_signature(key: ec.EllipticCurvePrivateKey, body: bytes) -> bytes:
    """The header value: base64 of 0x01, the key id (4 bytes, big-endian), a DER signature."""
    der = key.sign(body, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    return (b64(b"\x01" + GOOGLE_KEY_ID.to_bytes(4, "big") + der) + "\n").encode()


def google_health_files() -> dict[str, bytes]:
    key = google_signing_key()
    page1, page2 = daily_rollup_pages()
    array = [notification("8d0c3f7e-2b1a-4c55-9e61-3f0f4a2b9c10", "UPSERT", upsert_interval())]
    tampered = copy.deepcopy(array)
    tampered[0]["data"]["operation"] = "DELETE"
    delete = notification(
        "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
        "DELETE",
        {"physicalTimeInterval": {"startTime": "2026-11-23T05:00:00Z", "endTime": "2026-11-24T05:00:00Z"}},
    )
    array_body, delete_body = compact(array), compact(delete)
    return {
        "daily_rollup.json": pretty(page1),
        "daily_rollup_page2.json": pretty(page2),
        "error_400_range.json": pretty(
            google_error(
                400,
                "The requested range exceeds the maximum.",
                "INVALID_ARGUMENT",
                "INVALID_ROLLUP_QUERY_DURATION",
            )
        ),
        "error_401.json": pretty(google_error(401, "Request had invalid authentication credentials.", "UNAUTHENTICATED")),
        "error_403_missing_scope.json": pretty(
            google_error(
                403,
                "The caller does not have the required scope.",
                "PERMISSION_DENIED",
                "MISSING_OAUTH_SCOPE",
                {"method": "dailyRollUp"},
            )
        ),
        # The shape Google's Service Usage gives every API that is not enabled for the project.
        "error_403_service_disabled.json": pretty(
            google_error(
                403,
                "Google Health API has not been used in project 123456789012 before or it is disabled.",
                "PERMISSION_DENIED",
                "SERVICE_DISABLED",
                {"service": "health.googleapis.com", "consumer": "projects/123456789012"},
                domain="googleapis.com",
            )
        ),
        "error_429.json": pretty(google_error(429, "Quota exceeded.", "RESOURCE_EXHAUSTED")),
        "identity.json": pretty(
            {"name": "users/me/identity", "healthUserId": HEALTH_USER_ID, "legacyUserId": LEGACY_USER_ID}
        ),
        "notification_array.json": array_body,
        "notification_array.signature": google_signature(key, array_body),
        "notification_array_tampered.json": compact(tampered),
        "notification_object_delete.json": delete_body,
        "notification_object_delete.signature": google_signature(key, delete_body),
        "token_code_exchange.json": pretty(token("ya29.fixture-access-1", "1//fixture-refresh-1", ACTIVITY_SCOPE)),
        "token_code_exchange_scope_unticked.json": pretty(
            token("ya29.fixture-access-2", "1//fixture-refresh-2", "openid")
        ),
        "token_invalid_grant.json": pretty(
            {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
        ),
        "token_refresh.json": pretty(token("ya29.fixture-access-3", None, ACTIVITY_SCOPE)),
        "verification.json": (json.dumps({"type": "verification"}) + "\n").encode(),
        "webhook_keyset.json": json.dumps(webhook_keyset(key.public_key()), indent=2).encode(),
    }


# --- Fitbit legacy ---


def fitbit_signature(body: bytes, secret: str = FITBIT_CLIENT_SECRET) -> bytes:
    mac = hmac.new((secret + "&").encode(), body, hashlib.sha1).digest()
    return (b64(mac) + "\n").encode()


def fitbit_legacy_files() -> dict[str, bytes]:
    body = compact(
        [
            {
                "collectionType": "activities",
                "date": "2026-10-25",
                "ownerId": LEGACY_USER_ID,
                "ownerType": "user",
                "subscriptionId": f"stepsync-{LEGACY_USER_ID}",
            }
        ]
    )
    return {"notification.json": body, "notification.signature": fitbit_signature(body)}


# --- Misfit and SNS ---

SNS_SIGNED_KEYS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
}


# SNS SignatureVersion -> the hash of its RSA PKCS#1 v1.5 signature (over the same string).
SNS_SIGNATURE_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def sns_canonical(message: dict) -> bytes:
    """What SNS signs: `key\\nvalue\\n` for each signed key present, in this order."""
    keys = SNS_SIGNED_KEYS[message["Type"]]
    return "".join(f"{k}\n{message[k]}\n" for k in keys if k in message).encode()


def sns_sign(key: rsa.RSAPrivateKey, message: dict, version: str = "1") -> dict:
    signature = key.sign(sns_canonical(message), padding.PKCS1v15(), SNS_SIGNATURE_HASHES[version]())
    return {**message, "SignatureVersion": version, "SigningCertURL": SNS_CERT_URL, "Signature": b64(signature)}


def sns_certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SNS_HOST)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(SNS_CERT_SERIAL)
        .not_valid_before(SNS_CERT_NOT_BEFORE)
        .not_valid_after(SNS_CERT_NOT_AFTER)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def misfit_files() -> dict[str, bytes]:
    key = sns_signing_key()
    events = [
        {
            "type": "sessions",
            "id": "51a4189acf12e53f79000001",
            "ownerId": "51a4189acf12e53f80000001",
            "action": "updated",
            "updatedAt": "2026-11-23T18:20:11Z",
        }
    ]
    notification_message = {
        "Type": "Notification",
        "MessageId": "6f1d0a6e-8a0b-5b3e-9c5e-0d1e2f3a4b5c",
        "TopicArn": SNS_TOPIC,
        "Message": json.dumps(events),
        "Timestamp": "2026-11-23T18:20:12.000Z",
    }
    # The same change, published again by a topic set to SignatureVersion 2 (SHA-256).
    notification_message_v2 = {
        **notification_message,
        "MessageId": "9c2e4b7a-1d3f-5e60-8a9b-0c1d2e3f4a5b",
        "Timestamp": "2026-11-23T18:22:47.000Z",
    }
    confirm_token = "fixture-token-2336412f37"
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
        "Token": confirm_token,
        "TopicArn": SNS_TOPIC,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": f"https://{SNS_HOST}/?Action=ConfirmSubscription&Token={confirm_token}",
        "Timestamp": "2026-11-23T18:00:00.000Z",
    }
    summary = {
        "summary": [
            {
                "date": "2026-11-22",
                "points": 394.4,
                "steps": MISFIT_ANSWERS["2026-11-22"],
                "calories": 2218.1,
                "activityCalories": 412.6,
                "distance": 4.41,
            },
            {
                "date": "2026-11-23",
                "points": 120.0,
                "steps": MISFIT_ANSWERS["2026-11-23"],
                "calories": 1930.7,
                "activityCalories": 130.2,
                "distance": 1.35,
            },
        ]
    }
    return {
        "error_401.json": pretty({"error_code": 401, "error_message": "Invalid access token"}),
        "sns_notification.json": pretty(sns_sign(key, notification_message)),
        "sns_notification_v2.json": pretty(sns_sign(key, notification_message_v2, "2")),
        "sns_signing_cert.pem": sns_certificate(key),
        "sns_subscription_confirmation.json": pretty(sns_sign(key, confirmation)),
        "summary_detail.json": pretty(summary),
        "token.json": pretty({"access_token": "fixture-misfit-access", "token_type": "bearer"}),
    }


# --- Oura ---


def oura_document_id(user_id: str, day: str) -> str:
    """A daily document's id: a UUID-shaped digest, stable for (person, day) as Oura's ids are."""
    digest = hashlib.sha256(f"fake-oura/daily_activity/{user_id}/{day}".encode()).hexdigest()[:32]
    return f"{digest[0:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def oura_signature(secret: str, timestamp: str, body: bytes) -> str:
    """x-oura-signature: HMAC-SHA256 keyed with the client secret over timestamp then body, upper-case hex."""
    return hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).hexdigest().upper()


def oura_daily_activity(day: str, steps: int) -> dict:
    """One DailyActivityModel in Oura's field set; the day starts at 04:00 local (Helsinki, +02:00)."""
    active = steps * 4 // 100
    return {
        "id": oura_document_id(OURA_USER_ID, day),
        "class_5_min": "1112211111111111111111111111111111111111111111233322322223333323322222",
        "score": min(100, 40 + steps // 250),
        "active_calories": active,
        "average_met_minutes": 1.40625,
        "contributors": {
            "meet_daily_targets": 60,
            "move_every_hour": 95,
            "recovery_time": 100,
            "stay_active": 80,
            "training_frequency": 71,
            "training_volume": 98,
        },
        "equivalent_walking_distance": steps * 3 // 4,
        "high_activity_met_minutes": 7,
        "high_activity_time": 60,
        "inactivity_alerts": 0,
        "low_activity_met_minutes": 117,
        "low_activity_time": 10020,
        "medium_activity_met_minutes": 25,
        "medium_activity_time": 360,
        "met": {"interval": 60.0, "items": [0.9, 0.9, 1.2], "timestamp": f"{day}T04:00:00.000+02:00"},
        "meters_to_target": 5200,
        "non_wear_time": 27480,
        "resting_time": 18840,
        "sedentary_met_minutes": 10,
        "sedentary_time": 21000,
        "steps": steps,
        "target_calories": 350,
        "target_meters": 7000,
        "total_calories": 1800 + active,
        "day": day,
        "timestamp": f"{day}T04:00:00+02:00",
    }


def oura_subscription(sub_id: str, event_type: str, expiration: str) -> dict:
    return {
        "id": sub_id,
        "callback_url": "https://stepsync.example/webhooks/oura",
        "event_type": event_type,
        "data_type": "daily_activity",
        "expiration_time": expiration,
    }


def oura_notification_body() -> bytes:
    return compact(
        {
            "event_type": "update",
            "data_type": "daily_activity",
            "object_id": oura_document_id(OURA_USER_ID, "2026-11-23"),
            "event_time": OURA_EVENT_TIME,
            "user_id": OURA_USER_ID,
        }
    )


def oura_files() -> dict[str, bytes]:
    days = sorted(OURA_ANSWERS.items())
    page1 = {"data": [oura_daily_activity(d, s) for d, s in days[:2]], "next_token": OURA_NEXT_TOKEN}
    page2 = {"data": [oura_daily_activity(d, s) for d, s in days[2:]], "next_token": None}
    body = oura_notification_body()
    subscription = oura_subscription(
        "5d3fe17b-f880-4d93-b9b6-afbfb76c1e78", "update", "2027-02-22T07:12:09+00:00"
    )
    return {
        "daily_activity_page1.json": pretty(page1),
        "daily_activity_page2.json": pretty(page2),
        "error_401.json": pretty(
            {"status": 401, "title": "Unauthorized", "detail": "Access token not provided or is invalid."}
        ),
        "error_429.json": pretty(
            {
                "status": 429,
                "title": "Request Rate Limit Exceeded.",
                "detail": "Too many requests: the application's rate limit was exceeded.",
            }
        ),
        "notification_daily_activity.json": body,
        "notification_daily_activity.headers.json": pretty(
            {"x-oura-timestamp": OURA_TIMESTAMP, "x-oura-signature": oura_signature(OURA_CLIENT_SECRET, OURA_TIMESTAMP, body)}
        ),
        "personal_info.json": pretty(
            {
                "id": OURA_USER_ID,
                "age": 34,
                "weight": 72.5,
                "height": 1.78,
                "biological_sex": "female",
                "email": f"{OURA_USER_ID}@sandbox.oura.test",
            }
        ),
        "subscription.json": pretty(subscription),
        "subscription_list.json": pretty(
            [
                subscription,
                oura_subscription("0b6f1c2d-3e4f-4a5b-8c7d-9e0f1a2b3c4d", "create", "2027-02-20T18:00:00+00:00"),
            ]
        ),
        "token.json": pretty(
            {
                "token_type": "bearer",
                "access_token": "fixture-oura-access",
                "expires_in": 86400,
                "refresh_token": "fixture-oura-refresh",
                "scope": "daily personal",
            }
        ),
        "token_invalid_grant.json": pretty(
            {
                "status": 400,
                "title": "Bad Request",
                "error": "invalid_grant",
                "error_description": "Token already used or revoked.",
            }
        ),
    }


# --- Withings ---


def withings_signature(secret: str, values: dict) -> str:
    """Withings' request signature: hex HMAC-SHA256 keyed with the client secret over the values
    joined with commas, in the order of their keys sorted."""
    joined = ",".join(values[k] for k in sorted(values))
    return hmac.new(secret.encode(), joined.encode(), hashlib.sha256).hexdigest()


def withings_device(device: str) -> str:
    return hashlib.sha256(f"fake-withings/device/{WITHINGS_USER_ID}/{device}".encode()).hexdigest()[:40]


def withings_activity(day: str, steps: int) -> dict:
    """One getactivity entry (all data_fields), the day's main tracker."""
    device = withings_device("main")
    return {
        "date": day,
        "timezone": WITHINGS_ZONE,
        "deviceid": device,
        "hash_deviceid": device,
        "brand": 1,
        "is_tracker": True,
        "modified": 1795400000,
        "steps": steps,
        "distance": steps * 3 // 4,
        "elevation": steps // 2000,
        "soft": steps // 4,
        "moderate": steps // 20,
        "intense": steps // 60,
        "active": steps // 20 + steps // 60,
        "calories": steps * 4 // 100,
        "totalcalories": 1600 + steps * 4 // 100,
        "hr_average": 72,
        "hr_min": 52,
        "hr_max": 131,
        "hr_zone_0": 600,
        "hr_zone_1": 300,
        "hr_zone_2": 100,
        "hr_zone_3": 0,
    }


def withings_day_bounds(day: str) -> tuple[int, int]:
    """The day's first and last second in the person's zone, as Unix times."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(WITHINGS_ZONE)
    start = dt.datetime.fromisoformat(day).replace(tzinfo=zone)
    end = (start + dt.timedelta(days=1)).replace(tzinfo=zone)
    return int(start.timestamp()), int(end.timestamp()) - 1


def withings_notice(day: str) -> bytes:
    start, end = withings_day_bounds(day)
    return f"userid={WITHINGS_USER_ID}&appli=16&startdate={start}&enddate={end}".encode()


def withings_envelope(body: dict) -> dict:
    return {"status": 0, "body": body}


def withings_error(status: int, error: str) -> dict:
    return {"status": status, "body": {}, "error": error}


def withings_token(access: str, refresh: str) -> dict:
    return withings_envelope(
        {
            "userid": WITHINGS_USER_ID,
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": 10800,
            "scope": "user.activity,user.metrics",
            "token_type": "Bearer",
        }
    )


def withings_files() -> dict[str, bytes]:
    days = sorted(WITHINGS_ANSWERS.items())
    page1 = withings_envelope(
        {"activities": [withings_activity(d, s) for d, s in days[:2]], "more": True, "offset": 2}
    )
    page2 = withings_envelope(
        {"activities": [withings_activity(d, s) for d, s in days[2:]], "more": False, "offset": 0}
    )
    getnonce = {"action": "getnonce", "client_id": WITHINGS_CLIENT_ID, "timestamp": WITHINGS_TIMESTAMP}
    revoke = {"action": "revoke", "client_id": WITHINGS_CLIENT_ID, "nonce": WITHINGS_NONCE}
    return {
        "token.json": pretty(withings_token("fixture-withings-access", "fixture-withings-refresh")),
        "token_refresh.json": pretty(withings_token("fixture-withings-access-2", "fixture-withings-refresh-2")),
        "token_invalid.json": pretty(withings_error(503, "Invalid Params: invalid refresh_token")),
        "getactivity_page1.json": pretty(page1),
        "getactivity_page2.json": pretty(page2),
        "error_401.json": pretty(withings_error(401, "invalid_token")),
        "error_601.json": pretty(withings_error(601, "Too Many Request")),
        "notify_list.json": pretty(
            withings_envelope(
                {
                    "profiles": [
                        {"appli": 16, "callbackurl": WITHINGS_CALLBACK, "comment": "stepsync", "expires": 2147483647}
                    ]
                }
            )
        ),
        "notification_activity.form": withings_notice("2026-11-23"),
        "signature_getnonce.json": pretty(
            {
                "client_secret": WITHINGS_CLIENT_SECRET,
                "values": getnonce,
                "signature": withings_signature(WITHINGS_CLIENT_SECRET, getnonce),
            }
        ),
        "signature_revoke.json": pretty(
            {
                "client_secret": WITHINGS_CLIENT_SECRET,
                "values": revoke,
                "userid": WITHINGS_USER_ID,
                "signature": withings_signature(WITHINGS_CLIENT_SECRET, revoke),
            }
        ),
    }


# --- Polar ---


def polar_signature(key: str, body: bytes) -> str:
    """Polar-Webhook-Signature: hex HMAC-SHA256 of the raw body keyed with the signature_secret_key."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def polar_activity(day: str, steps: int) -> dict:
    """One activity summary as GET /v3/users/activities lists it (no samples asked for)."""
    return {
        "start_time": f"{day}T00:00:00",
        "end_time": f"{day}T23:59:59",
        "active_duration": "PT3H11M",
        "inactive_duration": "PT18H23M30S",
        "daily_activity": 89.1,
        "calories": 1800 + steps * 4 // 100,
        "active_calories": steps * 4 // 100,
        "steps": steps,
        "inactivity_alert_count": 1,
        "distance_from_steps": round(steps * 0.74, 2),
    }


def polar_error(status: int, error_type: str, message: str) -> dict:
    return {
        "timestamp": "2026-11-24T07:12:09.000Z",
        "status": status,
        "errorType": error_type,
        "message": message,
        "corrId": "3f6c1d2e-0a9b-4c8d-8e7f-6a5b4c3d2e1f",
    }


def polar_webhook(active: bool) -> dict:
    return {"id": POLAR_WEBHOOK_ID, "events": ["ACTIVITY_SUMMARY"], "url": POLAR_CALLBACK, "active": active}


def polar_notification_body() -> bytes:
    return compact(
        {
            "event": "ACTIVITY_SUMMARY",
            "user_id": POLAR_USER_ID,
            "date": "2026-11-23",
            "timestamp": "2026-11-24T07:12:09Z",
            "url": "https://www.polaraccesslink.com/v3/users/activities/2026-11-23",
        }
    )


def polar_files() -> dict[str, bytes]:
    body = polar_notification_body()
    return {
        "token.json": pretty(
            {
                "access_token": "fixture-polar-access",
                "token_type": "bearer",
                "x_user_id": POLAR_USER_ID,
                "expires_in": 315359999,
            }
        ),
        "user.json": pretty(
            {
                "polar-user-id": POLAR_USER_ID,
                "member-id": "4c1b2f0e9d8a7b6c5d4e3f2a1b0c9d8e",
                "registration-date": "2026-11-24T07:12:09.000Z",
                "first-name": "Eka",
                "last-name": "Toka",
                "birthdate": "1985-09-06",
                "gender": "FEMALE",
                "weight": 66.0,
                "height": 170.0,
                "extra-info": [],
            }
        ),
        "activities.json": pretty([polar_activity(d, s) for d, s in sorted(POLAR_ANSWERS.items())]),
        "error_401.json": pretty(polar_error(401, "UNAUTHORIZED", "Unauthorized")),
        "error_409.json": pretty(polar_error(409, "CONFLICT", "User already registered to partner or duplicated member-id")),
        "error_429.json": pretty(polar_error(429, "TOO_MANY_REQUESTS", "Rate limit exceeded")),
        "webhook_created.json": pretty(
            {
                "data": {
                    "id": POLAR_WEBHOOK_ID,
                    "events": ["ACTIVITY_SUMMARY"],
                    "url": POLAR_CALLBACK,
                    "signature_secret_key": POLAR_SIGNATURE_KEY,
                }
            }
        ),
        "webhook_list.json": pretty({"data": [polar_webhook(True)]}),
        "webhook_list_inactive.json": pretty({"data": [polar_webhook(False)]}),
        "notification_activity_summary.json": body,
        "notification_activity_summary.signature": polar_signature(POLAR_SIGNATURE_KEY, body).encode(),
        "ping.json": compact({"event": "PING", "timestamp": "2026-11-24T07:12:09Z"}),
    }


# --- Garmin ---


def garmin_day_start(day: str, offset: int) -> int:
    """The UTC second of the device's local midnight starting `day` (offset: local minus UTC)."""
    midnight = dt.datetime.fromisoformat(day).replace(tzinfo=dt.timezone.utc)
    return int(midnight.timestamp()) - offset


def garmin_daily(index: int, day: str, offset: int, duration: int, steps: int) -> dict:
    """One daily summary as GET /wellness-api/rest/dailies lists it (a few of its fields)."""
    start = garmin_day_start(day, offset)
    return {
        "summaryId": f"x{GARMIN_USER_ID[:6]}-{start:x}-{index}",
        "calendarDate": day,
        "activityType": "GENERIC",
        "startTimeInSeconds": start,
        "startTimeOffsetInSeconds": offset,
        "durationInSeconds": duration,
        "steps": steps,
        "distanceInMeters": round(steps * 0.76, 2),
        "activeKilocalories": steps * 4 // 100,
        "stepsGoal": 8000,
    }


def garmin_error(message: str) -> dict:
    return {"errorMessage": message}


def garmin_callback_url(start: int, end: int, token: str) -> str:
    return f"{GARMIN_API}/dailies?uploadStartTimeInSeconds={start}&uploadEndTimeInSeconds={end}&token={token}"


def garmin_files() -> dict[str, bytes]:
    dailies = [garmin_daily(i, *entry) for i, entry in enumerate(GARMIN_DAILIES)]
    expected: dict[str, int] = {}
    longest: dict[str, int] = {}
    for entry in dailies:
        day = entry["calendarDate"]
        if entry["durationInSeconds"] >= longest.get(day, -1):
            longest[day] = entry["durationInSeconds"]
            expected[day] = entry["steps"]
    start, end = GARMIN_UPLOAD
    challenge = base64.urlsafe_b64encode(hashlib.sha256(GARMIN_PKCE_VERIFIER.encode()).digest()).rstrip(b"=")
    return {
        "token.json": pretty(
            {
                "access_token": "fixture-garmin-access-1",
                "token_type": "bearer",
                "expires_in": 86400,
                "refresh_token": "fixture-garmin-refresh-1",
                "refresh_token_expires_in": 7775998,
                "scope": "PARTNER_READ CONNECT_READ",
                "jti": "0b8a3c1d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            }
        ),
        "token_refreshed.json": pretty(
            {
                "access_token": "fixture-garmin-access-2",
                "token_type": "bearer",
                "expires_in": 86400,
                "refresh_token": "fixture-garmin-refresh-2",
                "refresh_token_expires_in": 7775998,
                "scope": "PARTNER_READ CONNECT_READ",
            }
        ),
        "pkce.json": pretty({"code_verifier": GARMIN_PKCE_VERIFIER, "code_challenge": challenge.decode()}),
        "user_id.json": pretty({"userId": GARMIN_USER_ID}),
        "permissions.json": pretty(["ACTIVITY_EXPORT", "HEALTH_EXPORT"]),
        "dailies.json": pretty(dailies),
        "dailies_expected.json": pretty({"days": expected}),
        "ping_dailies.json": compact(
            {"dailies": [{"userId": GARMIN_USER_ID, "callbackURL": garmin_callback_url(start, end, GARMIN_PULL_TOKEN)}]}
        ),
        "ping_dailies_expected.json": pretty(
            {
                "userId": GARMIN_USER_ID,
                "uploadStartTimeInSeconds": start,
                "uploadEndTimeInSeconds": end,
                "token": GARMIN_PULL_TOKEN,
            }
        ),
        "deregistration.json": compact({"deregistrations": [{"userId": GARMIN_USER_ID}]}),
        "permissions_change.json": compact(
            {
                "userPermissionsChange": [
                    {
                        "userId": GARMIN_USER_ID,
                        "summaryId": "x4aacafe-permissions-1",
                        "permissions": ["ACTIVITY_EXPORT"],
                        "changeTimeInSeconds": start,
                    }
                ]
            }
        ),
        "error_401.json": pretty(garmin_error("Unauthorized: the access token is expired or invalid")),
        "error_409.json": pretty(garmin_error("Duplicate backfill request: this time range was requested already")),
        "error_412.json": pretty(garmin_error("User has not given permission for this summary type")),
    }


README = """\
# Provider fixtures: known answers

Made-up values in the providers' documented shapes, written by `scripts/fixtures.py` (Python
and the `cryptography` package: an implementation independent of StepSync's Rust code). Every
provider client, parser and signature verifier must give the answers below, and the fake
servers in `local/src/fakes/` must produce data of the same shape. Rust tests read them from
this folder (the shared reader is `stepsync::testing::fixture(provider, name)`).

Do not edit them by hand: change `scripts/fixtures.py`, then

    .venv/bin/python scripts/fixtures.py generate   # rewrites fixtures/
    .venv/bin/python scripts/fixtures.py check      # also run by `make test`

`check` verifies the committed files with the script's own parsers and verifiers (the known
answers, every signature, the tampered and altered messages failing) and that `generate`
reproduces them byte for byte. The keys are derived from the public `SEED` in the script and
the signatures are deterministic (RFC 6979 ECDSA, PKCS#1 v1.5 RSA, HMAC), so regenerating
changes nothing unless the script changed. They are test keys that anyone can derive: trust
nothing they sign outside the tests.

## google_health/

- `daily_rollup.json` + `daily_rollup_page2.json`: one `dailyRollUp` answer over two pages
  (follow `nextPageToken` `CgwIABIIMjAyNi0xMS0yNQ`). Points come out of order. Parsed, the
  days are: 2026-11-21 → 11873 (`countSum` a string), 2026-11-22 → 6240 (`countSum` a JSON
  number, no `time`: midnight), 2026-11-23 → 0 (an explicit `"0"`: a true zero),
  2026-11-24 → 0 (`steps: {}`: proto3 JSON omits a zero `countSum`), 2026-11-25 → 4310
  (page 2). A date that appears on no page (2026-11-20, 2026-11-26, ...) is "no data", not zero.
- `identity.json`: `healthUserId` "114477889900112233445" and the legacy Fitbit id
  (`legacyUserId` "228S74").
- `token_code_exchange.json` (has a `refresh_token`), `token_refresh.json` (no
  `refresh_token`: keep the old one), `token_code_exchange_scope_unticked.json` (the user
  unticked the activity scope: the connection must not be created), `token_invalid_grant.json`.
- `error_401.json`, `error_403_missing_scope.json`, `error_400_range.json`, `error_429.json`:
  the Google error body; the 403 and 400 carry an `ErrorInfo` reason (`MISSING_OAUTH_SCOPE`,
  `INVALID_ROLLUP_QUERY_DURATION`).
- `error_403_service_disabled.json`: the project-level 403 (`SERVICE_DISABLED`, domain
  `googleapis.com`): the API is not enabled for the app's project, so no reconnect helps.
- `verification.json`: the handshake body.
- Webhook signatures, keyset `webhook_keyset.json` (Tink JSON, one ECDSA P-256 key, key id
  1837264519; the `EcdsaPublicKey` proto's x and y carry a leading zero byte, as Google's do):
  - `notification_array.json` with `notification_array.signature` (the header value):
    verifies. Header name `X-HEALTHAPI-SIGNATURE` or `GOOGLE-HEALTH-API-SIGNATURE`, any case.
  - `notification_array_tampered.json` (`operation` changed to `DELETE`) with the same
    signature: must fail.
  - `notification_object_delete.json` with `notification_object_delete.signature`: verifies;
    a single object (not an array) with operation `DELETE`.
  The header value is base64 of `0x01`, the 4-byte big-endian key id, then the DER ECDSA
  P-256 SHA-256 signature over the raw body bytes. The body files have no trailing newline:
  verify the bytes exactly as stored.

## fitbit_legacy/

- `notification.json` with `notification.signature`: `X-Fitbit-Signature` for the client
  secret `fixture-client-secret` (HMAC-SHA1 keyed with the secret plus `&`, base64), owner
  `228S74`, date 2026-10-25.

## misfit/

- `summary_detail.json`: two days, 2026-11-22 → 9823 and 2026-11-23 → 3011 steps;
  `token.json`; `error_401.json`.
- `sns_notification.json` and `sns_subscription_confirmation.json`: SNS version 1 messages
  signed (RSA-SHA1 over the canonical `key\\nvalue\\n` string) by the self-signed certificate
  in `sns_signing_cert.pem` (CN `sns.fixture.test`, valid 2026-01-01 to 2036-01-01), whose
  stated home is `https://sns.fixture.test/SimpleNotificationService-fixture.pem`: a test
  serves the PEM itself and allow-lists that host by configuration. Changing any signed field
  (or adding a `Subject`) must make verification fail.
- `sns_notification_v2.json`: the same change as `sns_notification.json` (another
  `MessageId`, `Timestamp` 2026-11-23T18:22:47.000Z), signed as SNS `SignatureVersion` 2:
  RSA PKCS#1 v1.5 with SHA-256 over the same canonical string, same certificate. It must
  verify as version 2 and fail as version 1; the version 1 messages must fail as version 2.
- The `Timestamp`s are 2026-11-23T18:00:00Z (confirmation), 18:20:12Z and 18:22:47Z
  (notifications): a verifier that refuses messages older than an hour must be tested with a
  clock near them.

## oura/

- `daily_activity_page1.json` + `daily_activity_page2.json`: one `daily_activity` answer over
  two pages (follow `next_token` `MnwyMDI2LTExLTIxLzIwMjYtMTEtMjQ`; page 2's `next_token` is
  `null`). Parsed, the days are 2026-11-21 → 10234, 2026-11-22 → 3987, 2026-11-23 → 0 (a true
  zero: the document is there). Each `timestamp` is the day's 04:00 in Europe/Helsinki
  (`+02:00`), where Oura's day starts; the ids are stable per (person, day).
- `personal_info.json` (user id `2f9a6c1e-5b3d-4e7f-8a90-1c2d3e4f5a6b`, a sandbox account of
  the fake), `token.json` (`token_type` `bearer`, `expires_in` 86400, scope `daily personal`),
  `token_invalid_grant.json` (a used or revoked refresh token: Oura's refresh tokens are
  single-use), `error_401.json`, `error_429.json` (RFC 7807 `status`, `title`, `detail`).
- `subscription.json` and `subscription_list.json`: webhook subscriptions as
  `/v2/webhook/subscription` answers them.
- `notification_daily_activity.json` with `notification_daily_activity.headers.json`: an
  `update` notice for the person's 2026-11-23 document, signed for the client secret
  `fake-oura-secret` at `x-oura-timestamp` `1795504329` (2026-11-24T07:12:09Z). The
  `x-oura-signature` is HMAC-SHA256 keyed with the client secret over the timestamp string's
  bytes followed by the raw body bytes, in upper-case hex. The body has no trailing newline:
  verify the bytes exactly as stored; changing any byte of the body or the timestamp must fail.
## withings/

Every answer is HTTP 200 with Withings' envelope: `status` 0 and a `body`, or an error
`status` with `body: {}` and an `error` string.

- `getactivity_page1.json` (`more` true, `offset` 2) + `getactivity_page2.json` (`more` false,
  `offset` 0): one `getactivity` answer over two pages (send `offset=2` for page 2). Parsed, the
  days are 2026-11-21 → 10234, 2026-11-22 → 3987, 2026-11-23 → 0 (a true zero: the entry is
  there). `timezone` Europe/Paris; one entry per date here, but an entry is per device
  (`hash_deviceid`): a date can come more than once.
- `token.json` and `token_refresh.json` (`userid` the string `"31415926"`, `expires_in` 10800,
  scope `user.activity,user.metrics`, comma-separated), `token_invalid.json` (status 503
  `Invalid Params: invalid refresh_token`), `error_401.json` (status 401 `invalid_token`),
  `error_601.json` (status 601 `Too Many Request`: over the app's 120 requests a minute).
- `notify_list.json`: one appli 16 subscription whose callback URL carries a query string
  (`?token=fixture-webhook-token`): notices go to that exact URL.
- `notification_activity.form`: the form-encoded appli 16 notice for user 31415926's
  2026-11-23 (`startdate` and `enddate` the day's first and last second in Europe/Paris). No
  signature: Withings signs nothing. No trailing newline.
- `signature_getnonce.json` and `signature_revoke.json`: `signature` is the hex HMAC-SHA256,
  keyed with `client_secret` (`fake-withings-secret`), over the `values` joined with commas in
  the order of their keys sorted: `getnonce,fake-withings-client,1795504329` and
  `revoke,fake-withings-client,fixture-withings-nonce-4f1c2a` (revoke's `userid` is sent but
  not signed).

## polar/

- `activities.json`: `GET /v3/users/activities?from=2026-11-21&to=2026-11-23` (both dates
  included), a JSON array of activity summaries. Parsed, the days are 2026-11-21 → 10234,
  2026-11-22 → 3987, 2026-11-23 → 0 (a true zero). A summary carries no `date`: its day is
  the date of `start_time`, on the device's own clock (AccessLink has no time zones).
- `token.json`: the code exchange's answer: `x_user_id` 2278512 (a JSON number: the account),
  `token_type` `bearer`, `expires_in` 315359999 (about ten years), and no `refresh_token`.
- `user.json`: `POST /v3/users`'s answer for the registered person (`polar-user-id` 2278512).
- `error_401.json`, `error_409.json` (already registered: fine), `error_429.json`: AccessLink's
  error body (`timestamp`, `status`, `errorType`, `message`, `corrId`).
- `webhook_created.json`: `POST /v3/webhooks`'s 201, the only answer that ever shows the
  `signature_secret_key`; `webhook_list.json` (active) and `webhook_list_inactive.json`
  (switched off after a week of failed deliveries): `GET /v3/webhooks`, each webhook at
  `https://stepsync.example/webhooks/polar` for `ACTIVITY_SUMMARY`.
- `notification_activity_summary.json` with `notification_activity_summary.signature`: the
  `ACTIVITY_SUMMARY` notice for user 2278512's 2026-11-23, and its `Polar-Webhook-Signature`:
  lower-case hex HMAC-SHA256 of the raw body keyed with the signature_secret_key
  `0f8c6a52-3b1d-4e7f-9a2c-5d4e3f2a1b0c`. Neither file has a trailing newline: verify the
  bytes exactly as stored; changing any byte of the body must fail.
- `ping.json`: the `PING` Polar POSTs (`Polar-Webhook-Event: PING`) when the webhook is
  created, reactivated or repointed; answer it 200.


## garmin/

- `dailies.json`: `GET /wellness-api/rest/dailies?uploadStartTimeInSeconds=..&uploadEndTimeInSeconds=..`
  (a window of upload time, at most 24 hours), a JSON array of daily summaries in upload
  order. Each `calendarDate` is the device's local date of `startTimeInSeconds +
  startTimeOffsetInSeconds`. 2026-12-01 comes twice: synced mid-day (`durationInSeconds`
  21600, 2210 steps), then whole (86400, 9876): the fuller one is the day's, never the sum.
  `dailies_expected.json` holds the answers: 2026-11-30 → 11873, 2026-12-01 → 9876,
  2026-12-02 → 0 (a true zero).
- `ping_dailies.json`: the ping Garmin POSTs for dailies (`userId`, `callbackURL` with the
  upload window and a time-bound pull `token`); `ping_dailies_expected.json` is what it names.
  The URL itself is never fetched: StepSync reads that window at its own configured API base.
- `deregistration.json`, `permissions_change.json` (the person withdrew `HEALTH_EXPORT`): the
  grant notices, which name a person and no URL.
- `token.json` and `token_refreshed.json`: the token endpoint's answers, the access token for
  a day (`expires_in` 86400), the refresh token for about 90 days
  (`refresh_token_expires_in`), rotated by each refresh.
- `pkce.json`: a code verifier and its S256 challenge (base64url of SHA-256, no padding).
- `user_id.json` (`GET /wellness-api/rest/user/id`), `permissions.json`, and the error bodies
  `error_401.json`, `error_409.json` (a backfill asked already: fine), `error_412.json` (the
  person does not share the summary type), each `{"errorMessage": ...}`."""


def all_files() -> dict[str, bytes]:
    files = {"README.md": README.encode()}
    for provider, make in (
        ("google_health", google_health_files),
        ("fitbit_legacy", fitbit_legacy_files),
        ("misfit", misfit_files),
        ("oura", oura_files),
        ("withings", withings_files),
        ("polar", polar_files),
        ("garmin", garmin_files),
    ):
        files.update({f"{provider}/{name}": data for name, data in make().items()})
    return files


def generate(out: Path) -> list[str]:
    files = all_files()
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sorted(files)


# --- check: parse and verify the committed files with this script's own code ---


class Checks:
    def __init__(self) -> None:
        self.failed = 0

    def run(self, description: str, check) -> None:
        try:
            detail = check()
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            self.failed += 1
            print(f"FAIL {description}: {type(e).__name__}: {e}")
        else:
            print(f"ok   {description}" + (f" ({detail})" if detail else ""))


def read(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / name).read_bytes()


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def parse_count(steps: dict) -> int:
    """`countSum` is an int64: a JSON string, or a number; left out when zero."""
    value = steps.get("countSum", 0)
    if isinstance(value, str):
        expect(value.isdigit(), f"countSum {value!r} is not a count")
        return int(value)
    expect(isinstance(value, int) and not isinstance(value, bool), f"countSum {value!r} is not a count")
    return value


def parse_rollup(pages: dict[str | None, dict]) -> dict[str, int]:
    """Follows nextPageToken from the first page; returns civil date -> steps."""
    days: dict[str, int] = {}
    token = None
    for _ in range(10):
        page = pages[token]
        for point in page.get("rollupDataPoints", []):
            start = point["civilStartTime"]["date"]
            end = point["civilEndTime"]["date"]
            day = dt.date(start["year"], start["month"], start["day"])
            expect(
                dt.date(end["year"], end["month"], end["day"]) == day + dt.timedelta(days=1),
                f"{day}: a window of one day",
            )
            expect(day.isoformat() not in days, f"{day} appears twice")
            days[day.isoformat()] = parse_count(point["steps"])
        token = page.get("nextPageToken")
        if not token:
            return days
    raise AssertionError("more than 10 pages")


def check_rollup() -> str:
    page1 = json.loads(read("google_health", "daily_rollup.json"))
    page2 = json.loads(read("google_health", "daily_rollup_page2.json"))
    expect(page1.get("nextPageToken") == ROLLUP_PAGE_TOKEN, "page 1 names page 2")
    expect("nextPageToken" not in page2, "page 2 is the last")
    days = parse_rollup({None: page1, ROLLUP_PAGE_TOKEN: page2})
    expect(days == ROLLUP_ANSWERS, f"parsed {days}")
    for missing in ("2026-11-20", "2026-11-26", "2026-11-27"):
        expect(missing not in days, f"{missing} must be no data")
    order = [p["civilStartTime"]["date"]["day"] for p in page1["rollupDataPoints"]]
    expect(order != sorted(order), f"page 1 in order {order}")
    forms = {
        p["civilStartTime"]["date"]["day"]: (p["steps"], "time" in p["civilStartTime"]) for p in page1["rollupDataPoints"]
    }
    expect(forms[21] == ({"countSum": "11873"}, True), "21: a string count")
    expect(forms[22] == ({"countSum": 6240}, False), "22: a JSON number, no time")
    expect(forms[23] == ({"countSum": "0"}, True), "23: an explicit \"0\"")
    expect(forms[24] == ({}, True), "24: steps {}")
    return ", ".join(f"{d} -> {s}" for d, s in sorted(days.items())) + "; others no data"


def check_google_json() -> str:
    identity = json.loads(read("google_health", "identity.json"))
    expect(identity["legacyUserId"] == LEGACY_USER_ID, "legacyUserId")
    expect(identity["healthUserId"] == HEALTH_USER_ID, "healthUserId")
    code = json.loads(read("google_health", "token_code_exchange.json"))
    expect("refresh_token" in code and ACTIVITY_SCOPE in code["scope"].split(), "code exchange: refresh token, scope")
    refresh = json.loads(read("google_health", "token_refresh.json"))
    expect("refresh_token" not in refresh and ACTIVITY_SCOPE in refresh["scope"].split(), "refresh: no refresh token")
    unticked = json.loads(read("google_health", "token_code_exchange_scope_unticked.json"))
    expect(ACTIVITY_SCOPE not in unticked["scope"].split(), "unticked: no activity scope")
    expect(json.loads(read("google_health", "token_invalid_grant.json"))["error"] == "invalid_grant", "invalid_grant")
    reasons = {}
    for name, code_, status in (
        ("error_401.json", 401, "UNAUTHENTICATED"),
        ("error_403_missing_scope.json", 403, "PERMISSION_DENIED"),
        ("error_403_service_disabled.json", "403 project", "PERMISSION_DENIED"),
        ("error_400_range.json", 400, "INVALID_ARGUMENT"),
        ("error_429.json", 429, "RESOURCE_EXHAUSTED"),
    ):
        error = json.loads(read("google_health", name))["error"]
        expect((error["code"], error["status"]) == (int(str(code_).split()[0]), status), name)
        reasons[code_] = [d.get("reason") for d in error.get("details", [])]
    expect(reasons[403] == ["MISSING_OAUTH_SCOPE"] and reasons[400] == ["INVALID_ROLLUP_QUERY_DURATION"], "reasons")
    expect(reasons["403 project"] == ["SERVICE_DISABLED"], "a project-level 403 names SERVICE_DISABLED")
    expect(json.loads(read("google_health", "verification.json")) == {"type": "verification"}, "handshake")
    return "legacyUserId 228S74; reasons MISSING_OAUTH_SCOPE, INVALID_ROLLUP_QUERY_DURATION"


def read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def proto_fields(data: bytes) -> dict[int, bytes | int]:
    fields: dict[int, bytes | int] = {}
    at = 0
    while at < len(data):
        tag, at = read_varint(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            fields[number], at = read_varint(data, at)
        elif wire == 2:
            length, at = read_varint(data, at)
            fields[number] = data[at : at + length]
            expect(len(fields[number]) == length, "a truncated proto")
            at += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return fields


def keyset_keys(raw: bytes) -> dict[int, ec.EllipticCurvePublicKey]:
    keyset = json.loads(raw)
    keys = {}
    for entry in keyset["key"]:
        expect(entry["keyData"]["typeUrl"] == TINK_ECDSA_TYPE_URL, "an ECDSA key")
        expect((entry["status"], entry["outputPrefixType"]) == ("ENABLED", "TINK"), "enabled, TINK prefix")
        proto = proto_fields(base64.b64decode(entry["keyData"]["value"]))
        params = proto_fields(proto[2])
        expect((params.get(1), params.get(2), params.get(3)) == (3, 2, 2), f"SHA256, P-256, DER: {params}")
        x, y = proto[3], proto[4]
        expect(len(x) == 33 and x[0] == 0 and len(y) == 33 and y[0] == 0, "x and y with a leading zero byte")
        numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1())
        keys[entry["keyId"]] = numbers.public_key()
    expect(keyset["primaryKeyId"] in keys, "the primary key is listed")
    return keys


def google_verifies(keys: dict, body: bytes, header: bytes) -> bool:
    raw = base64.b64decode(header.strip(), validate=True)
    if len(raw) < 6 or raw[0] != 1:
        return False
    key = keys.get(int.from_bytes(raw[1:5], "big"))
    if key is None:
        return False
    try:
        key.verify(raw[5:], body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def check_google_signatures() -> str:
    keys = keyset_keys(read("google_health", "webhook_keyset.json"))
    expect(list(keys) == [GOOGLE_KEY_ID], f"key ids {list(keys)}")
    array = read("google_health", "notification_array.json")
    tampered = read("google_health", "notification_array_tampered.json")
    delete = read("google_health", "notification_object_delete.json")
    for name, body in (("array", array), ("tampered", tampered), ("delete", delete)):
        expect(not body.endswith(b"\n"), f"the {name} body has no trailing newline")
    signature = read("google_health", "notification_array.signature")
    expect(google_verifies(keys, array, signature), "the array notification verifies")
    expect(not google_verifies(keys, tampered, signature), "the tampered body must fail")
    expect(tampered != array and json.loads(tampered)[0]["data"]["operation"] == "DELETE", "tampered: the operation")
    expect(not google_verifies(keys, array + b"\n", signature), "a trailing newline must fail")
    expect(google_verifies(keys, delete, read("google_health", "notification_object_delete.signature")), "delete")
    parsed = json.loads(delete)
    expect(isinstance(parsed, dict) and parsed["data"]["operation"] == "DELETE", "delete: one object, DELETE")
    parsed = json.loads(array)
    expect(isinstance(parsed, list) and parsed[0]["data"]["healthUserId"] == HEALTH_USER_ID, "array: a list")
    return "array and delete verify; tampered fails"


def check_fitbit() -> str:
    body = read("fitbit_legacy", "notification.json")
    given = base64.b64decode(read("fitbit_legacy", "notification.signature").strip(), validate=True)
    want = hmac.new((FITBIT_CLIENT_SECRET + "&").encode(), body, hashlib.sha1).digest()
    expect(hmac.compare_digest(given, want), "the signature verifies")
    wrong = hmac.new(FITBIT_CLIENT_SECRET.encode(), body, hashlib.sha1).digest()
    expect(not hmac.compare_digest(given, wrong), "not keyed without the '&'")
    expect(json.loads(body)[0]["ownerId"] == LEGACY_USER_ID, "owner")
    return "HMAC-SHA1 with fixture-client-secret&"


def check_misfit_json() -> str:
    summary = json.loads(read("misfit", "summary_detail.json"))["summary"]
    days = {day["date"]: day["steps"] for day in summary}
    expect(days == MISFIT_ANSWERS, f"parsed {days}")
    expect(json.loads(read("misfit", "token.json"))["access_token"] == "fixture-misfit-access", "token")
    expect(json.loads(read("misfit", "error_401.json"))["error_code"] == 401, "error")
    return ", ".join(f"{d} -> {s}" for d, s in sorted(days.items()))


def sns_verifies(cert: x509.Certificate, message: dict) -> bool:
    version = message.get("SignatureVersion")
    if version not in SNS_SIGNATURE_HASHES or message.get("Type") not in SNS_SIGNED_KEYS:
        return False
    try:
        cert.public_key().verify(
            base64.b64decode(message["Signature"]),
            sns_canonical(message),
            padding.PKCS1v15(),
            SNS_SIGNATURE_HASHES[version](),
        )
    except InvalidSignature:
        return False
    return True


def check_sns() -> str:
    cert = x509.load_pem_x509_certificate(read("misfit", "sns_signing_cert.pem"))
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    expect(cn == SNS_HOST and cert.issuer == cert.subject, "self-signed for sns.fixture.test")
    cert.verify_directly_issued_by(cert)
    expect(
        (cert.not_valid_before_utc, cert.not_valid_after_utc) == (SNS_CERT_NOT_BEFORE, SNS_CERT_NOT_AFTER),
        "valid 2026-01-01 to 2036-01-01",
    )
    altered = 0
    versions = {
        "sns_notification.json": "1",
        "sns_subscription_confirmation.json": "1",
        "sns_notification_v2.json": "2",
    }
    for name, version in versions.items():
        message = json.loads(read("misfit", name))
        expect(message["SignatureVersion"] == version, f"{name}: SignatureVersion {version}")
        url = urlsplit(message["SigningCertURL"])
        expect((url.scheme, url.hostname) == ("https", SNS_HOST), f"{name}: its certificate's home")
        expect(sns_verifies(cert, message), f"{name} verifies")
        # Every signed field present, and for a notification an added Subject (signed when present).
        signed = [k for k in SNS_SIGNED_KEYS[message["Type"]] if k in message or k == "Subject"]
        expect("Subject" not in message, f"{name}: no Subject")
        for key in signed:
            changed = {**message, key: message.get(key, "") + "x"}
            expect(not sns_verifies(cert, changed), f"{name}: {key} changed must fail")
            altered += 1
        for other in ("1", "2", "3"):
            if other != version:
                relabelled = {**message, "SignatureVersion": other}
                expect(not sns_verifies(cert, relabelled), f"{name}: as version {other} must fail")
        if message["Type"] == "Notification":
            events = json.loads(message["Message"])
            expect(events[0]["action"] == "updated", "the event")
        else:
            sub = urlsplit(message["SubscribeURL"])
            expect((sub.scheme, sub.hostname) == ("https", SNS_HOST), "SubscribeURL at the fixture host")
    return f"all three verify (v1 SHA-1, v2 SHA-256); {altered} altered messages fail"


def check_oura() -> str:
    pages = {None: json.loads(read("oura", "daily_activity_page1.json"))}
    expect(pages[None]["next_token"] == OURA_NEXT_TOKEN, "page 1 names page 2")
    pages[OURA_NEXT_TOKEN] = json.loads(read("oura", "daily_activity_page2.json"))
    expect(pages[OURA_NEXT_TOKEN]["next_token"] is None, "page 2 is the last")
    days: dict[str, int] = {}
    token = None
    while True:
        page = pages[token]
        for doc in page["data"]:
            expect(doc["day"] not in days, f"{doc['day']} appears twice")
            expect(doc["timestamp"] == f"{doc['day']}T04:00:00+02:00", f"{doc['day']}: starts at 04:00 local")
            expect(doc["id"] == oura_document_id(OURA_USER_ID, doc["day"]), f"{doc['day']}: its stable id")
            days[doc["day"]] = doc["steps"]
        token = page["next_token"]
        if token is None:
            break
    expect(days == OURA_ANSWERS, f"parsed {days}")
    expect(json.loads(read("oura", "personal_info.json"))["id"] == OURA_USER_ID, "personal_info id")
    token_json = json.loads(read("oura", "token.json"))
    expect(token_json["token_type"] == "bearer" and token_json["expires_in"] == 86400, "token")
    expect(token_json["scope"].split() == ["daily", "personal"], "token scope")
    expect(json.loads(read("oura", "token_invalid_grant.json"))["error"] == "invalid_grant", "invalid_grant")
    for name, status in (("error_401.json", 401), ("error_429.json", 429)):
        error = json.loads(read("oura", name))
        expect(error["status"] == status and error["title"], name)
    subscription = json.loads(read("oura", "subscription.json"))
    listed = json.loads(read("oura", "subscription_list.json"))
    expect(isinstance(listed, list) and listed[0] == subscription, "the list holds the subscription")
    keys = {"id", "callback_url", "event_type", "data_type", "expiration_time"}
    expect(all(set(s) == keys for s in listed), "subscription fields")
    return ", ".join(f"{d} -> {s}" for d, s in sorted(days.items()))


def check_oura_signature() -> str:
    body = read("oura", "notification_daily_activity.json")
    headers = json.loads(read("oura", "notification_daily_activity.headers.json"))
    expect(set(headers) == {"x-oura-timestamp", "x-oura-signature"}, "the two headers")
    timestamp, given = headers["x-oura-timestamp"], headers["x-oura-signature"]
    expect(timestamp == OURA_TIMESTAMP and timestamp.isdigit(), "Unix seconds")
    expect(
        dt.datetime.fromtimestamp(int(timestamp), dt.timezone.utc).isoformat() == OURA_EVENT_TIME,
        "the timestamp is the event time",
    )
    expect(not body.endswith(b"\n"), "the body has no trailing newline")
    want = hmac.new(OURA_CLIENT_SECRET.encode(), timestamp.encode() + body, hashlib.sha256).hexdigest()
    expect(given == want.upper() and given != want, "upper-case hex HMAC-SHA256 over timestamp + body")
    expect(given != oura_signature(OURA_CLIENT_SECRET, timestamp, body + b"\n"), "a trailing newline must fail")
    expect(given != oura_signature(OURA_CLIENT_SECRET, str(int(timestamp) + 1), body), "another timestamp must fail")
    tampered = body.replace(b'"update"', b'"delete"')
    expect(tampered != body and given != oura_signature(OURA_CLIENT_SECRET, timestamp, tampered), "tampered fails")
    expect(given != oura_signature("another-secret", timestamp, body), "another secret must fail")
    notice = json.loads(body)
    expect(list(notice) == ["event_type", "data_type", "object_id", "event_time", "user_id"], "the fields")
    expect(notice["object_id"] == oura_document_id(OURA_USER_ID, "2026-11-23"), "the 2026-11-23 document")
    return "HMAC-SHA256 with fake-oura-secret over timestamp + body, upper-case hex"


def check_withings() -> str:
    pages = [json.loads(read("withings", "getactivity_page1.json")), json.loads(read("withings", "getactivity_page2.json"))]
    expect(pages[0]["body"]["more"] is True and pages[0]["body"]["offset"] == 2, "page 1 points at offset 2")
    expect(pages[1]["body"]["more"] is False, "page 2 is the last")
    days = {a["date"]: a["steps"] for p in pages for a in p["body"]["activities"]}
    expect(days == WITHINGS_ANSWERS, f"known answers: {days}")
    for name, status in (("token_invalid.json", 503), ("error_401.json", 401), ("error_601.json", 601)):
        error = json.loads(read("withings", name))
        expect(error["status"] == status and error["body"] == {} and error["error"], f"{name}: status {status}")
    for name in ("token.json", "token_refresh.json"):
        token = json.loads(read("withings", name))
        expect(token["status"] == 0 and token["body"]["userid"] == WITHINGS_USER_ID, f"{name}: userid")
        expect(token["body"]["expires_in"] == 10800 and token["body"]["token_type"] == "Bearer", f"{name}: Bearer 3 h")
    listed = json.loads(read("withings", "notify_list.json"))["body"]["profiles"]
    expect(urlsplit(listed[0]["callbackurl"]).query == "token=fixture-webhook-token", "the callback's query string")
    notice = read("withings", "notification_activity.form").decode()
    fields = dict(pair.split("=", 1) for pair in notice.split("&"))
    start, end = withings_day_bounds("2026-11-23")
    expect(fields == {"userid": WITHINGS_USER_ID, "appli": "16", "startdate": str(start), "enddate": str(end)}, notice)
    expect(start == 1795388400, f"2026-11-23T00:00+01:00 is {start}")
    return "three days over two pages, envelopes, the appli 16 notice"


def check_withings_signatures() -> str:
    for name, joined in (
        ("signature_getnonce.json", f"getnonce,{WITHINGS_CLIENT_ID},{WITHINGS_TIMESTAMP}"),
        ("signature_revoke.json", f"revoke,{WITHINGS_CLIENT_ID},{WITHINGS_NONCE}"),
    ):
        known = json.loads(read("withings", name))
        expected = hmac.new(known["client_secret"].encode(), joined.encode(), hashlib.sha256).hexdigest()
        expect(known["signature"] == expected, f"{name}: HMAC over {joined!r}")
        expect(known["signature"] == withings_signature(known["client_secret"], known["values"]), f"{name}: sorted values")
        expect(known["signature"] != withings_signature("another-secret", known["values"]), f"{name}: another secret fails")
    return "hex HMAC-SHA256 over the sorted values, comma-joined"


def check_polar() -> str:
    days: dict[str, int] = {}
    for summary in json.loads(read("polar", "activities.json")):
        day = summary["start_time"][:10]
        expect(day not in days, f"{day} appears twice")
        expect(summary["end_time"].startswith(day), f"{day}: ends the same day")
        days[day] = summary["steps"]
    expect(days == POLAR_ANSWERS, f"known answers: {days}")
    token = json.loads(read("polar", "token.json"))
    expect(token["x_user_id"] == POLAR_USER_ID and isinstance(token["x_user_id"], int), "x_user_id a number")
    expect(token["token_type"] == "bearer" and "refresh_token" not in token, "bearer, no refresh token")
    expect(json.loads(read("polar", "user.json"))["polar-user-id"] == POLAR_USER_ID, "the registered user")
    for name, status in (("error_401.json", 401), ("error_409.json", 409), ("error_429.json", 429)):
        error = json.loads(read("polar", name))
        expect(error["status"] == status and error["errorType"] and error["message"], name)
    created = json.loads(read("polar", "webhook_created.json"))["data"]
    expect(created["signature_secret_key"] == POLAR_SIGNATURE_KEY, "the one-time key")
    for name, active in (("webhook_list.json", True), ("webhook_list_inactive.json", False)):
        listed = json.loads(read("polar", name))["data"]
        expect(len(listed) == 1 and listed[0]["active"] is active, f"{name}: active {active}")
        expect(listed[0]["url"] == POLAR_CALLBACK and listed[0]["events"] == ["ACTIVITY_SUMMARY"], name)
        expect("signature_secret_key" not in listed[0], f"{name}: the key is never listed")
    ping = json.loads(read("polar", "ping.json"))
    expect(ping["event"] == "PING" and "user_id" not in ping, "the PING names nobody")
    return ", ".join(f"{d} -> {s}" for d, s in sorted(days.items()))


def check_polar_signature() -> str:
    body = read("polar", "notification_activity_summary.json")
    given = read("polar", "notification_activity_summary.signature").decode()
    expect(not body.endswith(b"\n") and not given.endswith("\n"), "no trailing newlines")
    want = hmac.new(POLAR_SIGNATURE_KEY.encode(), body, hashlib.sha256).hexdigest()
    expect(given == want and given == given.lower(), "lower-case hex HMAC-SHA256 over the body")
    expect(given != polar_signature(POLAR_SIGNATURE_KEY, body + b"\n"), "a trailing newline must fail")
    tampered = body.replace(b"2026-11-23", b"2026-11-22", 1)
    expect(tampered != body and given != polar_signature(POLAR_SIGNATURE_KEY, tampered), "tampered fails")
    expect(given != polar_signature("another-key", body), "another key must fail")
    notice = json.loads(body)
    expect(list(notice) == ["event", "user_id", "date", "timestamp", "url"], "the fields")
    expect(notice["user_id"] == POLAR_USER_ID and notice["date"] == "2026-11-23", "whose day")
    return "hex HMAC-SHA256 of the body with the signature_secret_key"


def check_garmin() -> str:
    days: dict[str, tuple[int, int]] = {}
    for summary in json.loads(read("garmin", "dailies.json")):
        local = summary["startTimeInSeconds"] + summary["startTimeOffsetInSeconds"]
        local_day = dt.datetime.fromtimestamp(local, dt.timezone.utc).date().isoformat()
        expect(local_day == summary["calendarDate"], f"{summary['summaryId']}: the local day of its start")
        expect(0 < summary["durationInSeconds"] <= 86400, "at most a day recorded")
        kept = days.get(local_day)
        if kept is None or summary["durationInSeconds"] >= kept[0]:
            days[local_day] = (summary["durationInSeconds"], summary["steps"])
    answers = {d: s for d, (_, s) in days.items()}
    expect(answers == json.loads(read("garmin", "dailies_expected.json"))["days"], f"known answers: {answers}")
    expect(answers == {"2026-11-30": 11873, "2026-12-01": 9876, "2026-12-02": 0}, "the fuller summary, never a sum")
    pkce = json.loads(read("garmin", "pkce.json"))
    digest = hashlib.sha256(pkce["code_verifier"].encode()).digest()
    expect(pkce["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("="), "S256 challenge")
    expect(43 <= len(pkce["code_verifier"]) <= 128, "an RFC 7636 verifier length")
    ping = json.loads(read("garmin", "ping_dailies.json"))["dailies"]
    expect(len(ping) == 1 and set(ping[0]) == {"userId", "callbackURL"}, "a ping names a person and a URL")
    url = urlsplit(ping[0]["callbackURL"])
    query = dict(parse_qsl(url.query))
    expect(f"{url.scheme}://{url.netloc}{url.path}" == f"{GARMIN_API}/dailies", "the dailies at Garmin's API")
    window = {
        "userId": ping[0]["userId"],
        "uploadStartTimeInSeconds": int(query["uploadStartTimeInSeconds"]),
        "uploadEndTimeInSeconds": int(query["uploadEndTimeInSeconds"]),
        "token": query["token"],
    }
    expect(window == json.loads(read("garmin", "ping_dailies_expected.json")), f"the window: {window}")
    expect(0 < window["uploadEndTimeInSeconds"] - window["uploadStartTimeInSeconds"] <= 86400, "at most 24 hours")
    token = json.loads(read("garmin", "token.json"))
    refreshed = json.loads(read("garmin", "token_refreshed.json"))
    expect(token["expires_in"] == 86400 and token["refresh_token_expires_in"] < 91 * 86400, "a day, and ~90 days")
    expect(refreshed["refresh_token"] != token["refresh_token"], "refresh tokens rotate")
    expect(json.loads(read("garmin", "user_id.json"))["userId"] == GARMIN_USER_ID, "the user id")
    gone = json.loads(read("garmin", "deregistration.json"))["deregistrations"]
    expect(gone == [{"userId": GARMIN_USER_ID}], "a deregistration names the person, no URL")
    change = json.loads(read("garmin", "permissions_change.json"))["userPermissionsChange"][0]
    expect("HEALTH_EXPORT" not in change["permissions"], "the health permission withdrawn")
    for name in ("error_401.json", "error_409.json", "error_412.json"):
        expect(list(json.loads(read("garmin", name))) == ["errorMessage"], name)
    return ", ".join(f"{d} -> {s}" for d, s in sorted(answers.items()))


def check_reproducible() -> str:
    committed = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.is_file())
    with tempfile.TemporaryDirectory() as tmp:
        written = generate(Path(tmp))
        expect(committed == written, f"extra {set(committed) - set(written)}, missing {set(written) - set(committed)}")
        differ = [n for n in written if (Path(tmp) / n).read_bytes() != (FIXTURES / n).read_bytes()]
        expect(not differ, f"differ: {differ}")
    return f"{len(written)} files byte for byte"


def check() -> int:
    checks = Checks()
    checks.run("google_health: daily roll-up known answers over two pages", check_rollup)
    checks.run("google_health: identity, tokens, errors, handshake", check_google_json)
    checks.run("google_health: webhook signatures against the Tink keyset", check_google_signatures)
    checks.run("fitbit_legacy: X-Fitbit-Signature", check_fitbit)
    checks.run("misfit: summary known answers, token, error", check_misfit_json)
    checks.run("misfit: SNS v1 and v2 signatures, every signed field altered fails", check_sns)
    checks.run("oura: daily_activity known answers over two pages, tokens, errors, subscriptions", check_oura)
    checks.run("oura: x-oura-signature over timestamp + body", check_oura_signature)
    checks.run("withings: getactivity known answers over two pages, envelopes, notify, the notice", check_withings)
    checks.run("withings: getnonce and revoke signatures", check_withings_signatures)
    checks.run("polar: activity summaries, token, user, errors, webhooks, PING", check_polar)
    checks.run("polar: Polar-Webhook-Signature over the body", check_polar_signature)
    checks.run("garmin: dailies by local day, PKCE, the ping's window, tokens, grant notices", check_garmin)
    checks.run("generate reproduces the committed fixtures", check_reproducible)
    print(f"fixtures: {14 - checks.failed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write every fixture")
    gen.add_argument("--out", type=Path, default=FIXTURES, help="the directory to write (default: fixtures/)")
    commands.add_parser("check", help="verify the committed fixtures")
    args = parser.parse_args()
    if args.command == "generate":
        for name in generate(args.out):
            print(f"wrote {args.out / name}")
        return 0
    return check()


if __name__ == "__main__":
    sys.exit(main())
