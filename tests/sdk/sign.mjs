// The providers' own npm SDKs, driven by tests/provider_sdks.rs; same protocol as
// sign.py:
//   node sign.mjs sign PROVIDER    < {"secret", "body", "timestamp", "url", "id"}
//     prints {"headers": [[name, value], ...]}
//   node sign.mjs verify PROVIDER  < {"secret", "body", "headers": {name: value}, "url"}
//     prints {"valid": true|false}
// A missing module exits 3 with a message that names it; nothing here is skipped.

const MISSING_MODULE_EXIT = 3;

async function need(name) {
  try {
    return await import(name);
  } catch (e) {
    process.stderr.write(
      `npm package \`${name}\` is missing (${e.message}): ` +
        "run .ci/run or `npm ci` in tests/sdk\n",
    );
    process.exit(MISSING_MODULE_EXIT);
  }
}

const sign = {
  // GitHub: @octokit/webhooks signs the body with the webhook secret.
  async github(r) {
    const { Webhooks } = await need("@octokit/webhooks");
    const sig = await new Webhooks({ secret: r.secret }).sign(r.body);
    return [["X-Hub-Signature-256", sig]];
  },
};

const verify = {
  // SendGrid: the verification key (base64 SPKI) as SendGrid's settings page shows it.
  async sendgrid(r) {
    const { EventWebhook, EventWebhookHeader } = await need("@sendgrid/eventwebhook");
    const ew = new EventWebhook();
    const key = ew.convertPublicKeyToECDSA(r.secret);
    const sig = r.headers[EventWebhookHeader.SIGNATURE().toLowerCase()];
    const ts = r.headers[EventWebhookHeader.TIMESTAMP().toLowerCase()];
    return ew.verifySignature(key, r.body, sig, ts);
  },
  // Shopify: @shopify/shopify-api's `webhooks.validate` (node adapter). It also wants
  // the unsigned metadata headers Shopify always sends; they are filled in here.
  async shopify(r) {
    await need("@shopify/shopify-api/adapters/node");
    const { shopifyApi, ApiVersion, LogSeverity } = await need("@shopify/shopify-api");
    const shopify = shopifyApi({
      apiKey: "unused",
      apiSecretKey: r.secret,
      apiVersion: ApiVersion.January25,
      hostName: "localhost",
      isEmbeddedApp: false,
      logger: { level: LogSeverity.Error, log: async () => {} },
    });
    const headers = {
      "x-shopify-topic": "orders/create",
      "x-shopify-shop-domain": "example.myshopify.com",
      "x-shopify-api-version": "2025-01",
      "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
      ...r.headers,
    };
    const rawRequest = { headers, method: "POST", url: "/hooks/sdk" };
    const result = await shopify.webhooks.validate({ rawBody: r.body, rawRequest, rawResponse: {} });
    return result.valid;
  },
  // Linear: the SDK's webhook client (it also wants `webhookTimestamp` in the body).
  async linear(r) {
    const { LinearWebhookClient } = await need("@linear/sdk/webhooks");
    try {
      return new LinearWebhookClient(r.secret).verify(
        Buffer.from(r.body),
        r.headers["linear-signature"],
      );
    } catch {
      return false;
    }
  },
};

async function main() {
  const [mode, provider] = process.argv.slice(2);
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const fn = { sign, verify }[mode]?.[provider];
  if (!fn) {
    process.stderr.write(`sign.mjs has no \`${mode}\` for provider \`${provider}\`\n`);
    process.exit(2);
  }
  const out = mode === "sign" ? { headers: await fn(request) } : { valid: !!(await fn(request)) };
  process.stdout.write(JSON.stringify(out) + "\n");
}

await main();
