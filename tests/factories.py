"""Daraja-shaped bodies for tests, written as Daraja writes them (DARAJA.md §4)."""

from __future__ import annotations

import json


def stk_callback(
    checkout_request_id: str,
    result_code: int = 0,
    *,
    amount: int | None = 1500,
    receipt: str | None = "UJ22T8IYOU",
    merchant_request_id: str = "29115-34620561-1",
    phone: int = 254712345678,
) -> bytes:
    """An STK callback body; success bodies carry metadata, failures none."""
    callback: dict[str, object] = {
        "MerchantRequestID": merchant_request_id,
        "CheckoutRequestID": checkout_request_id,
        "ResultCode": result_code,
        "ResultDesc": "The service request is processed successfully."
        if result_code == 0
        else "Request cancelled by user",
    }
    if result_code == 0:
        items: list[dict[str, object]] = [
            {"Name": "Amount", "Value": "__AMOUNT__"},
            {"Name": "MpesaReceiptNumber", "Value": receipt},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": 20261126102115},
            {"Name": "PhoneNumber", "Value": phone},
        ]
        callback["CallbackMetadata"] = {"Item": items}
    text = json.dumps({"Body": {"stkCallback": callback}})
    # Daraja writes the amount with decimals (1500.00), which json.dumps cannot.
    return text.replace('"__AMOUNT__"', f"{amount}.00").encode()


def c2b_request(
    trans_id: str = "UKL7N8PQ2R",
    *,
    bill_ref: str = "KhalexChess",
    amount: str = "1500.00",
    short_code: str = "174379",
    msisdn: str = "2547 ***** 126",
    first_name: str = "WANJIRU",
) -> bytes:
    """A C2B validation or confirmation body, as Daraja's v1 URLs receive it."""
    body = {
        "TransactionType": "Pay Bill", "TransID": trans_id, "TransTime": "20261130103000",
        "TransAmount": amount, "BusinessShortCode": short_code, "BillRefNumber": bill_ref,
        "InvoiceNumber": "", "OrgAccountBalance": "49197.00", "ThirdPartyTransID": "",
        "MSISDN": msisdn, "FirstName": first_name, "MiddleName": "", "LastName": "KAMAU",
    }  # fmt: skip
    return json.dumps(body).encode()
