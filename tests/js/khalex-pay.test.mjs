// The shop page's client (/khalex-pay.js) against a running `khalex-pay dev`.
// Run by tests/e2e/test_js_client.py, which starts the server, creates one order per test
// with the dev API key and hands the checkout tokens over in KHALEX_TOKENS (JSON).

import assert from "node:assert/strict";
import { before, test } from "node:test";

const BASE = process.env.KHALEX_BASE_URL;
const TOKENS = JSON.parse(process.env.KHALEX_TOKENS || "{}");
let client; // the module, as the server serves it
let paidId; // the first test's payment, for the scope test

before(async () => {
  assert.ok(BASE, "KHALEX_BASE_URL must name the running server");
  const answer = await fetch(`${BASE}/khalex-pay.js`);
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get("content-type"), /^text\/javascript/);
  const source = await answer.text();
  client = await import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
});

function payments(name) {
  assert.ok(TOKENS[name], `no checkout token for ${name}`);
  return client.createPayments({ baseUrl: BASE, getAuthToken: async () => TOKENS[name] });
}

test("a payment initiated with a phone number is watched through events until completed", async () => {
  const api = payments("events");
  const payment = await api.initiatePayment({ phoneNumber: "0712345671" });
  assert.equal(payment.status, "pending");
  assert.equal(payment.nextAction, "wait_for_pin");
  assert.ok(payment.pollAfterMs > 0);
  assert.equal(payment.phoneNumber, "2547****5671");

  const seen = [];
  paidId = payment.paymentId;
  const final = await api.watchPayment(payment.paymentId, (p) => seen.push(p.status));

  assert.equal(final.status, "completed");
  assert.equal(final.nextAction, "none");
  assert.equal(final.pollAfterMs, 0);
  assert.ok(final.mpesaReceiptNumber);
  assert.equal(seen.at(-1), "completed");
  assert.ok(seen.length >= 1);
});

test("watching by polling, paced by pollAfterMs, also reaches the final state", async () => {
  const api = payments("polling");
  const payment = await api.initiatePayment({ phoneNumber: "0712345672" });
  let reads = 0;
  const counting = client.createPayments({
    baseUrl: BASE, getAuthToken: () => TOKENS.polling,
    fetch: (url, init) => { reads += 1; return fetch(url, init); },
  });

  const final = await counting.watchPayment(payment.paymentId, () => {}, { poll: true });

  assert.equal(final.status, "completed");
  assert.ok(reads >= 1);
});

test("a refused phone number surfaces status 422, the field and the message", async () => {
  const api = payments("invalid");
  await assert.rejects(api.initiatePayment({ phoneNumber: "12345" }), (error) => {
    assert.ok(error instanceof client.PaymentError);
    assert.equal(error.status, 422);
    assert.equal(error.code, "invalid_phone_number");
    assert.equal(error.field, "phoneNumber");
    assert.ok(error.message.length > 0);
    return true;
  });
});

test("a cancelled prompt ends cancelled with nextAction retry", async () => {
  const api = payments("cancelled");
  const payment = await api.initiatePayment({ phoneNumber: "0700000002" });

  const final = await api.watchPayment(payment.paymentId);

  assert.equal(final.status, "cancelled");
  assert.equal(final.failureReason, "cancelled_by_user");
  assert.equal(final.nextAction, "retry");
});

test("a second prompt while one is open is 409 with Retry-After and the payment", async () => {
  const api = payments("busy");
  const first = await api.initiatePayment({ phoneNumber: "0700000005" }); // never answered
  await assert.rejects(api.initiatePayment({ phoneNumber: "0700000005" }), (error) => {
    assert.equal(error.status, 409);
    assert.equal(error.code, "payment_in_progress");
    assert.ok(error.retryAfter > 0);
    assert.equal(error.paymentId, first.paymentId);
    return true;
  });
});

test("without a token the API answers 401, and another order's payment is 404", async () => {
  const anonymous = client.createPayments({ baseUrl: BASE });
  await assert.rejects(anonymous.getConfig(), { status: 401, code: "unauthenticated" });
  const other = payments("invalid"); // another order's token
  await assert.rejects(other.watchPayment(paidId), { status: 404, code: "payment_not_found" });
  await assert.rejects(other.checkPaymentStatus(paidId), { status: 404 });
});

test("the config offers M-Pesa, the order's PayBill reference and the contact", async () => {
  const config = await payments("events").getConfig();
  assert.equal(config.mpesaEnabled, true);
  assert.match(config.paybill.accountReference, /^KP[0-9A-F]{10}$/);
  assert.ok(config.paybill.businessNumber);
  assert.ok(config.contact);
});

test("usePayments keeps the seed's names and follows the payment to the end", async () => {
  const ref = (value) => ({ value });
  const { isLoading, error, paymentStatus, initiatePayment, checkPaymentStatus, watchPayment } =
    client.usePayments({ ref, baseUrl: BASE, getAuthToken: () => TOKENS.vue });

  const started = initiatePayment({ phoneNumber: "0712345673" });
  assert.equal(isLoading.value, true);
  const payment = await started;
  assert.equal(isLoading.value, false);
  assert.equal(error.value, null);
  const final = await watchPayment(payment.paymentId);
  assert.equal(final.status, "completed");
  assert.equal(paymentStatus.value.status, "completed");
  assert.equal((await checkPaymentStatus(payment.paymentId)).status, "completed");

  await assert.rejects(initiatePayment({ phoneNumber: "nope" }));
  assert.equal(error.value.field, "phoneNumber");
  assert.equal(isLoading.value, false);
});

test("usePayments without Vue's ref says so", () => {
  assert.throws(() => client.usePayments({ baseUrl: BASE }), /needs Vue's ref/);
});
