#!/usr/bin/env python3
"""The providers' own Python SDKs, driven by tests/provider_sdks.rs.

usage: sign.py sign PROVIDER    < {"secret", "body", "timestamp", "url", "id"}
         prints {"headers": [[name, value], ...]}: what the provider's SDK sends
       sign.py verify PROVIDER  < {"secret", "body", "headers": {name: value}, "url"}
         prints {"valid": true|false}: what the provider's SDK says of the request

"sign" is for SDKs that can produce a signature, "verify" for SDKs that only check
one (the test then hands them what `hookrelay send` produced). A missing package
exits 3 with a message that names it; nothing here is skipped.
"""

import base64
import datetime
import importlib
import json
import sys
import urllib.parse

MISSING_PACKAGE_EXIT = 3


def need(module, package):
    """Imports `module`, or exits naming the pip package that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        sys.stderr.write(
            f"python package `{package}` is missing ({e}): "
            f"run .ci/run or `python3 -m pip install {package}`\n"
        )
        sys.exit(MISSING_PACKAGE_EXIT)


# ---- sign: the SDK makes the signature -------------------------------------------


def sign_stripe(r):
    stripe = need("stripe", "stripe")
    value = stripe.WebhookSignature.generate_signature_header(
        r["body"], r["secret"], timestamp=r["timestamp"]
    )
    return [["Stripe-Signature", value]]


def _standard_headers(module, package, prefix, r):
    webhooks = need(module, package)
    ts = datetime.datetime.fromtimestamp(r["timestamp"], tz=datetime.timezone.utc)
    sig = webhooks.Webhook(r["secret"]).sign(r["id"], ts, r["body"])
    return [
        [f"{prefix}-id", r["id"]],
        [f"{prefix}-timestamp", str(r["timestamp"])],
        [f"{prefix}-signature", sig],
    ]


def sign_standard(r):
    return _standard_headers("standardwebhooks.webhooks", "standardwebhooks", "webhook", r)


def sign_svix(r):
    return _standard_headers("svix.webhooks", "svix", "svix", r)


def sign_slack(r):
    signature = need("slack_sdk.signature", "slack_sdk")
    ts = str(r["timestamp"])
    sig = signature.SignatureVerifier(r["secret"]).generate_signature(
        timestamp=ts, body=r["body"]
    )
    return [["X-Slack-Signature", sig], ["X-Slack-Request-Timestamp", ts]]


def sign_twilio(r):
    validator = need("twilio.request_validator", "twilio")
    params = dict(urllib.parse.parse_qsl(r["body"], keep_blank_values=True))
    sig = validator.RequestValidator(r["secret"]).compute_signature(r["url"], params)
    return [["X-Twilio-Signature", sig]]


def _ed25519(r, message):
    signing = need("nacl.signing", "pynacl")
    key = signing.SigningKey(bytes.fromhex(r["secret"]))
    return key, key.sign(message.encode()).signature


def sign_discord(r):
    ts = str(r["timestamp"])
    key, sig = _ed25519(r, ts + r["body"])
    # Discord's own package checks what PyNaCl made, with the public key as hex.
    interactions = need("discord_interactions", "discord-interactions")
    public_hex = key.verify_key.encode().hex()
    assert interactions.verify_key(r["body"].encode(), sig.hex(), ts, public_hex)
    return [["X-Signature-Ed25519", sig.hex()], ["X-Signature-Timestamp", ts]]


def sign_telnyx(r):
    ts = str(r["timestamp"])
    _, sig = _ed25519(r, f"{ts}|{r['body']}")
    return [
        ["telnyx-signature-ed25519", base64.b64encode(sig).decode()],
        ["telnyx-timestamp", ts],
    ]


def sign_hubspot(r):
    sig_module = need("hubspot.utils.signature", "hubspot-api-client")
    ts = str(r["timestamp"] * 1000)
    sig = sig_module.Signature.get_signature(
        r["secret"], r["body"], "v3", http_uri=r["url"], http_method="POST", timestamp=ts
    )
    return [["X-HubSpot-Signature-v3", sig], ["X-HubSpot-Request-Timestamp", ts]]


def sign_monday(r):
    jwt = need("jwt", "pyjwt")
    claims = {"iat": r["timestamp"], "exp": r["timestamp"] + 300, "accountId": 1}
    return [["Authorization", jwt.encode(claims, r["secret"], algorithm="HS256")]]


# ---- verify: the SDK checks what `hookrelay send` made -----------------------------


def verify_razorpay(r):
    razorpay = need("razorpay", "razorpay")
    try:
        razorpay.Utility(None).verify_webhook_signature(
            r["body"], r["headers"]["x-razorpay-signature"], r["secret"]
        )
        return True
    except razorpay.errors.SignatureVerificationError:
        return False


def verify_square(r):
    helper = need("square.utils.webhooks_helper", "squareup")
    return helper.verify_signature(
        request_body=r["body"],
        signature_header=r["headers"]["x-square-hmacsha256-signature"],
        signature_key=r["secret"],
        notification_url=r["url"],
    )


def verify_coinbase(r):
    webhook = need("coinbase_commerce.webhook", "coinbase-commerce")
    errors = need("coinbase_commerce.error", "coinbase-commerce")
    try:
        return webhook.WebhookSignature.verify_sig_header(
            r["body"], r["headers"]["x-cc-webhook-signature"], r["secret"]
        )
    except errors.SignatureVerificationError:
        return False


class _PaddleRequest:
    """The shape paddle_billing's Verifier reads: `headers` and raw `body` bytes."""

    def __init__(self, headers, body):
        self.headers = {"Paddle-Signature": headers["paddle-signature"]}
        self.body = body.encode()


def verify_paddle(r):
    notifications = need("paddle_billing.Notifications", "paddle-python-sdk")
    # A minute of variance instead of the SDK's 5 s: the machine running the tests
    # may be busy; the relay's own 5 s default is covered by its unit tests.
    verifier = notifications.Verifier(maximum_variance=60)
    request = _PaddleRequest(r["headers"], r["body"])
    return verifier.verify(request, notifications.Secret(r["secret"]))


def verify_mailgun(r):
    security = need("mailgun.security", "mailgun")
    s = json.loads(r["body"])["signature"]
    return security.SecurityGuard.verify_webhook(
        r["secret"], s["token"], s["timestamp"], s["signature"]
    )


def verify_telnyx(r):
    telnyx = need("telnyx", "telnyx")
    client = telnyx.Telnyx(api_key="unused: nothing is sent")
    try:
        client.webhooks.unwrap(r["body"], headers=r["headers"], key=r["secret"])
        return True
    except ValueError:
        return False


def verify_openai(r):
    openai = need("openai", "openai")
    client = openai.OpenAI(api_key="unused: nothing is sent")
    try:
        client.webhooks.verify_signature(r["body"], r["headers"], secret=r["secret"])
        return True
    except openai.InvalidWebhookSignatureError:
        return False


def verify_resend(r):
    resend = need("resend", "resend")
    h = r["headers"]
    # Resend sends the `svix-*` names; `hookrelay send` writes the `webhook-*` ones.
    pick = lambda k: h.get(f"svix-{k}") or h.get(f"webhook-{k}")  # noqa: E731
    options = {
        "payload": r["body"],
        "headers": {k: pick(k) for k in ("id", "timestamp", "signature")},
        "webhook_secret": r["secret"],
    }
    try:
        resend.Webhooks.verify(options)
        return True
    except ValueError:
        return False


def main():
    mode, provider = sys.argv[1], sys.argv[2]
    request = json.load(sys.stdin)
    fn = globals().get(f"{mode}_{provider}")
    if fn is None:
        sys.stderr.write(f"sign.py has no `{mode}` for provider `{provider}`\n")
        sys.exit(2)
    if mode == "sign":
        print(json.dumps({"headers": fn(request)}))
    else:
        print(json.dumps({"valid": bool(fn(request))}))


if __name__ == "__main__":
    main()
