"""Re-fetching truncated PDFs from their origin sites, politely and safely, into new WARC files.

Common Crawl cuts payloads at 1 MiB (``WARC-Truncated: length``), which ruins most PDFs. This module fetches each
such URL again and writes what comes back as WARC ``request``/``response`` pairs whose response carries
``WARC-Refers-To: <id of the truncated record>``, so the PDF pipeline reads them like any other WARC and knows
which record each one replaces. It is plain Python (standard library and warcio); the Spark job calls it once
per partition. Politeness is enforced per process, so partition by `host_key` (one task owns each host).

Modules (each imports only those above it):

- `results`: the outcomes (`OK` ... `ERROR`, `OUTCOMES`), `RefetchItem`, `Exchange`, `RefetchResult`,
  `RefetchReport`, `count_outcomes`.
- `addresses`: which addresses may be connected to (`is_public_address`, `address_allowed`), DNS with a timeout.
- `politeness`: URLs taken apart for a request, `host_key`, the per-host gate, Retry-After, robots.txt rules.
- `fetch`: one request (robots.txt cache, deadline-bound socket, body readers, redirects, retries) and running
  many (`iter_refetch`, `refetch`).
- `warc`: the WARC output (`RefetchWarcWriter`, `write_warc`, `refetch_to_warc`) and `truncated_pdf_items`.

The settings are `corpus.config.RefetchSettings` (re-exported here).

Design:

- **No request to a non-public address.** URLs found on the web are untrusted: fetched from inside a data centre
  they could reach cloud metadata (169.254.169.254) or internal services (server-side request forgery). Every
  hop (the URL, each redirect, robots.txt) is resolved here, with `socket.getaddrinfo` or the `hosts` override,
  every address is checked (`address_allowed`), and the socket connects to that exact vetted address. No HTTP
  library ever resolves a name, so DNS cannot answer differently between check and use (DNS rebinding); the
  Host header and the TLS server name/certificate check use the original name. Proxy variables are ignored
  (a proxy would resolve names itself). A refused address never sees a connection attempt.
- **Politeness.** One request at a time per host and at least `per_host_delay` between the end of one request
  and the start of the next (raised by a robots.txt Crawl-delay, and by Retry-After); a descriptive User-Agent;
  robots.txt honoured with urllib.robotparser and RFC 9309's rules when it cannot be read. Different hosts
  proceed in parallel on a small thread pool: each worker takes all URLs of one host, in order.
- **Everything bounded.** Connect, idle-read and per-request wall-clock limits are enforced on every socket
  read, so a server dripping one byte a second cannot hold a worker; the body size is capped (after undoing any
  content encoding, so a compression bomb cannot grow past the cap); redirects and retries are capped, and so
  are the waits between retries. Nothing raises: every URL ends with one of `OUTCOMES` and a short detail.
- **Our own connections.** Sockets, TLS and the request bytes are ours; only http.client's response parser is
  used. That is what makes the connect-to-the-vetted-address rule possible, and it lets the WARC request record
  hold exactly the request that was sent.

The outcome names (`OK`, `ROBOTS`, ...) are in `corpus.refetch.results`; `OUTCOMES` lists them all.
"""

from corpus.config import RefetchSettings
from corpus.refetch.addresses import address_allowed, is_public_address
from corpus.refetch.fetch import GENERIC_TYPES, iter_refetch, refetch
from corpus.refetch.politeness import host_key
from corpus.refetch.results import OUTCOMES, Exchange, RefetchItem, RefetchReport, RefetchResult, count_outcomes
from corpus.refetch.warc import RefetchWarcWriter, refetch_to_warc, truncated_pdf_items, write_warc

__all__ = [
    "GENERIC_TYPES",
    "OUTCOMES",
    "Exchange",
    "RefetchItem",
    "RefetchReport",
    "RefetchResult",
    "RefetchSettings",
    "RefetchWarcWriter",
    "address_allowed",
    "count_outcomes",
    "host_key",
    "is_public_address",
    "iter_refetch",
    "refetch",
    "refetch_to_warc",
    "truncated_pdf_items",
    "write_warc",
]
