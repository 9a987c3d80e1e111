"""The Consul HTTP API (``/v1/...``): Consul's wire format over accord's registry capability."""
