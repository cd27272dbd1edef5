"""CoAP bindings for ace: OSCORE security contexts and aiocoap glue."""
