"""PII masking after deduplication, as FineWeb does it (datatrove's PIIFormatter): email addresses and public IPv4
addresses are replaced by fixed placeholders, used in turn.

datatrove cycles through the placeholders across all documents a task sees, so the placeholder a document gets
depends on what ran before it in that task. Here the cycle restarts with every document, so a document's masked
text depends on that document alone (same input, same output, whatever the partitioning).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

EMAIL = re.compile(
    r"\b[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?:[A-Za-z0-9](?:["
    r"A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?|\[(?:(?:25[0-5]|2[0-4][0-9]|["
    r"01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?|[A-Za-z0-9-]*[A-Za-z0-9]:)])"
)
#: FineWeb's 2024 expression matched lower-case addresses only (fixed in datatrove on 2024-05-02).
EMAIL_2024 = re.compile(
    r"\b[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:(?:[a-z0-9](?:["
    r"a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?|\[(?:(?:25[0-5]|2[0-4][0-9]|["
    r"01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?|[a-z0-9-]*[a-z0-9]:)])"
)
IPV4 = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)")

EMAIL_REPLACEMENTS = ("email@example.com", "firstname.lastname@example.org")
#: datatrove's placeholders: addresses that did not answer pings when its authors chose them.
IP_REPLACEMENTS = (
    "22.214.171.124",
    "126.96.36.199",
    "188.8.131.52",
    "184.108.40.206",
    "220.127.116.11",
    "18.104.22.168",
)


def _is_public(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_global
    except ValueError:
        return False


class PIIMasker:
    name = "pii"

    def __init__(
        self,
        remove_emails: bool = True,
        remove_ips: bool = True,
        only_remove_public_ips: bool = True,
        email_replacements: tuple[str, ...] = EMAIL_REPLACEMENTS,
        ip_replacements: tuple[str, ...] = IP_REPLACEMENTS,
        lowercase_emails_only: bool = False,
    ) -> None:
        """`lowercase_emails_only` is FineWeb's 2024 behaviour (`compat: fineweb-2024`)."""
        self.remove_emails = remove_emails
        self.remove_ips = remove_ips
        self.only_remove_public_ips = only_remove_public_ips
        self.email_replacements = tuple(email_replacements)
        self.ip_replacements = tuple(ip_replacements)
        self.email = EMAIL_2024 if lowercase_emails_only else EMAIL

    @staticmethod
    def _replacer(replacements: tuple[str, ...], valid: Callable[[str], bool] | None, counts: list[int]):
        turn = 0

        def replace(match: re.Match) -> str:
            nonlocal turn
            if valid is not None and not valid(match.group(0)):
                return match.group(0)
            counts[0] += 1
            out = replacements[turn]
            turn = (turn + 1) % len(replacements)
            return out

        return replace

    def mask(self, text: str) -> tuple[str, int, int]:
        """(masked text, emails replaced, IP addresses replaced)."""
        emails, ips = [0], [0]
        if self.remove_emails and "@" in text:
            text = self.email.sub(self._replacer(self.email_replacements, None, emails), text)
        if self.remove_ips and "." in text:
            valid = _is_public if self.only_remove_public_ips else None
            text = IPV4.sub(self._replacer(self.ip_replacements, valid, ips), text)
        return text, emails[0], ips[0]

    def mask_pages(
        self, text: str | None, page_ends: list[int] | None
    ) -> tuple[str | None, int, int, list[int] | None]:
        """`mask` page by page when the document has page boundaries (PDFs), which then move with the masks."""
        if text is None:
            return None, 0, 0, page_ends
        if not page_ends:
            return (*self.mask(text), page_ends)
        pieces: list[str] = []
        ends: list[int] = []
        emails = ips = start = 0
        for end in [*page_ends, len(text)]:
            masked, e, i = self.mask(text[start:end]) if end > start else ("", 0, 0)
            pieces.append(masked)
            ends.append((ends[-1] if ends else 0) + len(masked))
            emails, ips, start = emails + e, ips + i, max(start, end)
        return "".join(pieces), emails, ips, ends[: len(page_ends)]
