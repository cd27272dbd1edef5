"""CoAP bindings for ace: OSCORE security contexts and aiocoap glue."""

import logging as _logging

# aiocoap 0.4.17 logs each OSCORE nonce construction, Common IV included, at DEBUG on this
# logger (oscore.py _construct_nonce). Secrets never reach a log line of ours: keep it above.
_logging.getLogger("aiocoap.cryptography").setLevel(_logging.INFO)
