// Khalex Pay for the shop's page: a dependency-free ES module (README "The shop's page").
//
//   import { createPayments } from "https://pay.example.com/khalex-pay.js";
//   const payments = createPayments({ baseUrl: "https://pay.example.com", getAuthToken });
//   const payment = await payments.initiatePayment({ phoneNumber: "0712345678" });
//   const final = await payments.watchPayment(payment.paymentId, (p) => render(p));
//
// Errors are PaymentError objects carrying the API's status, code, message and field, and
// Retry-After (seconds) and the shop's contact where the API sends them. Status is watched
// through server-sent events read with fetch() (EventSource cannot send the Authorization
// header), falling back to polling paced by the server's pollAfterMs.

const FINAL = new Set(["completed", "failed", "cancelled"]);
const DEFAULT_POLL_MS = 2000;
const MIN_POLL_MS = 500;

/** An API refusal or a network failure (status 0, code "network_error"). */
export class PaymentError extends Error {
  constructor({ status, code, message, field = null, retryAfter = null, contact = null,
                paymentId = null, details = {} }) {
    super(message);
    this.name = "PaymentError";
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
    this.contact = contact;
    this.paymentId = paymentId;
    this.details = details;
  }
}

/** True when no further change is expected for `payment`. */
export function isFinal(payment) {
  return Boolean(payment) && FINAL.has(payment.status);
}

async function toError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = (body && typeof body.error === "object" && body.error) || {};
  const retry = response.headers.get("retry-after");
  const { code, message, field, contact, paymentId, ...details } = error;
  return new PaymentError({
    status: response.status,
    code: code || `http_${response.status}`,
    message: message || response.statusText || `HTTP ${response.status}`,
    field: field ?? null,
    retryAfter: retry !== null && retry !== "" && !Number.isNaN(Number(retry)) ? Number(retry) : null,
    contact: contact ?? null,
    paymentId: paymentId ?? null,
    details,
  });
}

function networkError(cause) {
  const error = new PaymentError({
    status: 0, code: "network_error",
    message: "Could not reach the payment service. Check your connection and try again.",
  });
  error.cause = cause;
  return error;
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/** Yields each `payment` event's data (parsed) from an SSE response body. */
async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue; // a heartbeat comment
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "event") event = text;
          else if (name === "data") data.push(text);
        }
        if (event === "payment" && data.length) yield JSON.parse(data.join("\n"));
      }
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * A client for one shop page. `getAuthToken()` returns (or resolves to) the checkout token
 * the shop's server handed the page; `baseUrl` is where Khalex Pay answers ("" = this site).
 */
export function createPayments({ baseUrl = "", getAuthToken = null, fetch: fetchImpl = null } = {}) {
  const base = String(baseUrl).replace(/\/+$/, "");
  const doFetch = fetchImpl || ((...args) => globalThis.fetch(...args));

  async function headers(extra = {}) {
    const token = getAuthToken ? await getAuthToken() : null;
    return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
  }

  async function send(method, path, { body, headers: extra, signal } = {}) {
    let response;
    try {
      response = await doFetch(base + path, {
        method,
        headers: await headers(body === undefined ? extra : { "Content-Type": "application/json", ...extra }),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (cause) {
      if (signal?.aborted) throw cause;
      throw networkError(cause);
    }
    if (!response.ok) throw await toError(response);
    return response;
  }

  /** POST /api/payments/initiate. With a checkout token, `{phoneNumber}` is enough. */
  async function initiatePayment(data, { idempotencyKey = null, signal } = {}) {
    const extra = idempotencyKey ? { "Idempotency-Key": idempotencyKey } : {};
    return (await send("POST", "/api/payments/initiate", { body: data, headers: extra, signal })).json();
  }

  /** GET /api/payments/status/{id}: the payment as it is now. */
  async function checkPaymentStatus(paymentId, { signal } = {}) {
    return (await send("GET", `/api/payments/status/${encodeURIComponent(paymentId)}`, { signal })).json();
  }

  /** GET /api/payments/config: whether M-Pesa is offered, the PayBill and the contact. */
  async function getConfig({ signal } = {}) {
    return (await send("GET", "/api/payments/config", { signal })).json();
  }

  /**
   * Calls `onChange(payment)` at each change until the payment is final, and resolves to
   * the final payment. Server-sent events first; polling (paced by pollAfterMs) when the
   * stream cannot be opened or ends early. 401/404 reject. `signal` stops watching.
   */
  async function watchPayment(paymentId, onChange = () => {}, { signal, poll = false } = {}) {
    let last = null;
    const seen = (payment) => {
      const key = JSON.stringify({ ...payment, updatedAt: undefined });
      if (key !== last) {
        last = key;
        onChange(payment);
      }
      return payment;
    };
    let current = null;
    if (!poll) {
      try {
        const response = await send("GET", `/api/payments/${encodeURIComponent(paymentId)}/events`, {
          headers: { Accept: "text/event-stream" }, signal,
        });
        if (response.body) {
          for await (const payment of sseEvents(response.body)) {
            current = seen(payment);
            if (isFinal(current)) return current;
          }
        }
      } catch (error) {
        if (signal?.aborted) throw error;
        if (error instanceof PaymentError && [401, 403, 404].includes(error.status)) throw error;
        // Anything else (no streaming, a proxy that buffers, a dropped connection): poll.
      }
    }
    for (;;) {
      current = seen(await checkPaymentStatus(paymentId, { signal }));
      if (isFinal(current)) return current;
      const wait = Number(current.pollAfterMs) > 0 ? Number(current.pollAfterMs) : DEFAULT_POLL_MS;
      await sleep(Math.max(MIN_POLL_MS, wait), signal);
    }
  }

  return { initiatePayment, checkPaymentStatus, watchPayment, getConfig };
}

/**
 * The seed's Vue 3 composable: `isLoading`, `error`, `paymentStatus`, `initiatePayment`,
 * `checkPaymentStatus`. No dependency on Vue: pass its `ref` (or load Vue as a global).
 * `initiatePayment` starts the payment and keeps `paymentStatus` current until it is final.
 */
export function usePayments({ ref = globalThis.Vue?.ref, ...options } = {}) {
  if (typeof ref !== "function") {
    throw new TypeError("usePayments needs Vue's ref: usePayments({ ref, getAuthToken })");
  }
  const client = createPayments(options);
  const isLoading = ref(false);
  const error = ref(null);
  const paymentStatus = ref(null);
  let watching = null;

  function stopWatching() {
    watching?.abort();
    watching = null;
  }

  async function track(promise) {
    isLoading.value = true;
    error.value = null;
    try {
      return await promise;
    } catch (caught) {
      error.value = caught;
      throw caught;
    } finally {
      isLoading.value = false;
    }
  }

  async function watch(paymentId) {
    stopWatching();
    const controller = new AbortController();
    watching = controller;
    try {
      return await client.watchPayment(paymentId, (p) => { paymentStatus.value = p; },
                                       { signal: controller.signal });
    } catch (caught) {
      if (!controller.signal.aborted) error.value = caught;
      return paymentStatus.value;
    } finally {
      if (watching === controller) watching = null;
    }
  }

  /** Starts a payment; resolves to the first answer; `paymentStatus` follows it to the end. */
  async function initiatePayment(data, options2 = {}) {
    const payment = await track(client.initiatePayment(data, options2));
    paymentStatus.value = payment;
    if (!isFinal(payment)) watch(payment.paymentId);
    return payment;
  }

  /** Reads the payment once into `paymentStatus`. */
  async function checkPaymentStatus(paymentId) {
    const payment = await track(client.checkPaymentStatus(paymentId));
    paymentStatus.value = payment;
    return payment;
  }

  return {
    isLoading, error, paymentStatus, initiatePayment, checkPaymentStatus,
    watchPayment: watch, stopWatching, getConfig: client.getConfig,
  };
}
