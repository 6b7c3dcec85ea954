// Type declarations for /khalex-pay.js (README "The shop's page").

export type PaymentStatusName = "pending" | "completed" | "failed" | "cancelled";
export type NextAction = "wait_for_pin" | "retry" | "pay_by_paybill" | "none";

/** The Payment answer (CONTRACT §4, §11): the phone masked, Daraja's ids null for a page. */
export interface Payment {
  paymentId: string;
  status: PaymentStatusName;
  amount: number;
  currency: string;
  phoneNumber: string;
  productId: string;
  productName: string;
  orderId: string | null;
  checkoutRequestId: string | null;
  merchantRequestId: string | null;
  mpesaReceiptNumber: string | null;
  transactionDate: string | null;
  resultCode: number | null;
  resultDesc: string | null;
  failureReason: string | null;
  lateSuccess: boolean;
  message: string;
  /** What the page should offer next. */
  nextAction: NextAction;
  /** How long a poller should wait before asking again; 0 once final. */
  pollAfterMs: number;
  createdAt: string;
  updatedAt: string;
}

/** GET /api/payments/config. */
export interface PaymentsConfig {
  mpesaEnabled: boolean;
  paybill: { businessNumber: string; accountReference: string };
  contact: string;
}

/** With a checkout token `{phoneNumber}` pays its order; a shop key sends the seed's body. */
export interface InitiateData {
  phoneNumber: string;
  orderId?: string;
  amount?: number;
  productId?: string;
  productName?: string;
  customerName?: string;
  customerEmail?: string;
}

/** An API refusal (status 400..503) or a network failure (status 0, "network_error"). */
export declare class PaymentError extends Error {
  readonly name: "PaymentError";
  /** HTTP status: 409, 422, 429, 503, ... or 0 when the service could not be reached. */
  status: number;
  /** The API's snake_case code, e.g. "invalid_phone_number", "rate_limited". */
  code: string;
  /** The request field at fault (e.g. "phoneNumber"), or null. */
  field: string | null;
  /** Seconds from Retry-After (409, 429, 503), or null. */
  retryAfter: number | null;
  /** The shop's call-to-order contact (503 payments_unavailable), or null. */
  contact: string | null;
  /** The payment in flight (409 payment_in_progress), when the caller may read it. */
  paymentId: string | null;
  /** Any other fields of the error. */
  details: Record<string, unknown>;
}

export interface CreatePaymentsOptions {
  /** Where Khalex Pay answers; "" means this page's own origin. */
  baseUrl?: string;
  /** The checkout token (or a promise of it) sent as `Authorization: Bearer`. */
  getAuthToken?: (() => string | null | Promise<string | null>) | null;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch | null;
}

export interface WatchOptions {
  signal?: AbortSignal;
  /** Skip server-sent events and poll from the start. */
  poll?: boolean;
}

export interface Payments {
  initiatePayment(
    data: InitiateData,
    options?: { idempotencyKey?: string | null; signal?: AbortSignal },
  ): Promise<Payment>;
  checkPaymentStatus(paymentId: string, options?: { signal?: AbortSignal }): Promise<Payment>;
  /** Calls onChange at each change; resolves to the final payment. */
  watchPayment(
    paymentId: string,
    onChange?: (payment: Payment) => void,
    options?: WatchOptions,
  ): Promise<Payment>;
  getConfig(options?: { signal?: AbortSignal }): Promise<PaymentsConfig>;
}

export declare function createPayments(options?: CreatePaymentsOptions): Payments;
export declare function isFinal(payment: Payment | null | undefined): boolean;

/** The part of a Vue ref the composable uses. */
export interface RefLike<T> {
  value: T;
}

export interface UsePaymentsOptions extends CreatePaymentsOptions {
  /** Vue's `ref` (default: `globalThis.Vue.ref`). */
  ref?: <T>(value: T) => RefLike<T>;
}

export interface UsePayments {
  isLoading: RefLike<boolean>;
  error: RefLike<PaymentError | Error | null>;
  paymentStatus: RefLike<Payment | null>;
  initiatePayment(
    data: InitiateData,
    options?: { idempotencyKey?: string | null; signal?: AbortSignal },
  ): Promise<Payment>;
  checkPaymentStatus(paymentId: string): Promise<Payment>;
  watchPayment(paymentId: string): Promise<Payment | null>;
  stopWatching(): void;
  getConfig(options?: { signal?: AbortSignal }): Promise<PaymentsConfig>;
}

export declare function usePayments(options?: UsePaymentsOptions): UsePayments;
