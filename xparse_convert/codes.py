"""The API's status codes and what they mean, in English: the one code table of the project.

Source: the "常见错误码" table of the parse-response documentation.
"""

from __future__ import annotations

SUCCESS = 200
PARTIAL = 50207

API_CODES: dict[int, str] = {
    200: "success",
    40101: "x-ti-app-id or x-ti-secret-code is missing",
    40102: "x-ti-app-id or x-ti-secret-code is invalid (authentication failed)",
    40103: "the client IP address is not on the allow-list",
    40003: "insufficient balance: top up the account",
    40004: "invalid parameters: check the request against the API documentation",
    40007: "the robot does not exist or is not published",
    40008: "the robot is not activated: activate it in the market and retry",
    40301: "image type not supported",
    40302: "file size out of range (at most 500 MB)",
    40303: "file type not supported",
    40304: "image dimensions out of range (20-10000 px; 20-20000 px when the aspect ratio "
           "is under 2)",
    40305: "no file was uploaded",
    40306: "rate limit exceeded (too many requests per second)",
    40307: "today's free quota is used up",
    40400: "invalid request URL",
    40422: "the file is corrupted",
    40423: "PDF password required or incorrect",
    40424: "page range outside the document",
    40425: "input file format not supported",
    40427: "DPI not in the allowed list (72, 144, 216)",
    40428: "converting the Word/PowerPoint file to PDF failed or timed out",
    40429: "unsupported engine",
    50207: "some pages failed to parse (partial result)",
    30203: "a backing service failed: retry later",
    500: "internal server error",
}

# Codes worth retrying: the request may succeed unchanged a moment later.
RETRYABLE_CODES = frozenset({40306, 30203, 500})


def describe(code: object) -> str:
    """One phrase for ``code``: its documented meaning, or that it is undocumented."""
    if isinstance(code, int) and code in API_CODES:
        return API_CODES[code]
    return "undocumented status code"
