// khalex-pay.js's handling of answers a live dev server rarely gives (429, 503, a stream that
// fails), with a scripted fetch. Run with the live tests by tests/e2e/test_js_client.py.

import assert from "node:assert/strict";
import { test } from "node:test";

import { createPayments, PaymentError } from "../../api/static/khalex-pay.js";

function scripted(answers) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    const next = answers.shift();
    if (next instanceof Error) throw next;
    return next;
  };
  return { fetch, calls };
}

const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

const pending = { paymentId: "p1", status: "pending", nextAction: "wait_for_pin", pollAfterMs: 10,
                  updatedAt: "t1" };
const done = { ...pending, status: "completed", nextAction: "none", pollAfterMs: 0, updatedAt: "t2" };

test("429 carries Retry-After in seconds and the field", async () => {
  const { fetch } = scripted([json(429, { error: { code: "rate_limited", message: "Too many prompts.",
                                                   field: "phoneNumber" } }, { "retry-after": "42" })]);
  const api = createPayments({ fetch, getAuthToken: () => "t" });
  await assert.rejects(api.initiatePayment({ phoneNumber: "0712345678" }), (error) => {
    assert.ok(error instanceof PaymentError);
    assert.deepEqual([error.status, error.code, error.field, error.retryAfter],
                     [429, "rate_limited", "phoneNumber", 42]);
    return true;
  });
});

test("503 carries the shop's contact", async () => {
  const { fetch } = scripted([json(503, { error: { code: "payments_unavailable", message: "Down.",
                                                   field: null, contact: "Call 0700 000 000" } },
                                   { "retry-after": "30" })]);
  const api = createPayments({ fetch });
  await assert.rejects(api.initiatePayment({ phoneNumber: "0712345678" }),
                       { status: 503, code: "payments_unavailable", contact: "Call 0700 000 000",
                         retryAfter: 30 });
});

test("an unreachable service is a PaymentError with status 0", async () => {
  const { fetch } = scripted([new TypeError("fetch failed")]);
  await assert.rejects(createPayments({ fetch }).checkPaymentStatus("p1"),
                       { status: 0, code: "network_error" });
});

test("the token goes in the Authorization header and the Idempotency-Key is sent", async () => {
  const { fetch, calls } = scripted([json(202, pending)]);
  await createPayments({ baseUrl: "https://pay.example/", fetch, getAuthToken: async () => "tok" })
    .initiatePayment({ phoneNumber: "0712345678" }, { idempotencyKey: "cart-1" });
  assert.equal(calls[0].url, "https://pay.example/api/payments/initiate");
  assert.equal(calls[0].init.headers.Authorization, "Bearer tok");
  assert.equal(calls[0].init.headers["Idempotency-Key"], "cart-1");
  assert.equal(calls[0].init.headers["Content-Type"], "application/json");
});

test("when the event stream fails, watching falls back to polling until final", async () => {
  const { fetch, calls } = scripted([json(500, {}), json(200, pending), json(200, done)]);
  const seen = [];
  const final = await createPayments({ fetch }).watchPayment("p1", (p) => seen.push(p.status));
  assert.equal(final.status, "completed");
  assert.deepEqual(seen, ["pending", "completed"]);
  assert.match(calls[0].url, /\/api\/payments\/p1\/events$/);
  assert.match(calls[1].url, /\/api\/payments\/status\/p1$/);
});

test("events split across chunks, with heartbeats, are parsed", async () => {
  const text = `event: payment\r\ndata: ${JSON.stringify(pending)}\r\n\r\n: heartbeat\r\n\r\n` +
               `event: payment\r\ndata: ${JSON.stringify(done)}\r\n\r\n`;
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
      controller.close();
    },
  });
  const { fetch } = scripted([new Response(body, { headers: { "content-type": "text/event-stream" } })]);
  const seen = [];
  const final = await createPayments({ fetch }).watchPayment("p1", (p) => seen.push(p.status));
  assert.deepEqual(seen, ["pending", "completed"]);
  assert.equal(final.nextAction, "none");
});
