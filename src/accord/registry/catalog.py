"""Consul's catalog — nodes, services, checks — as JSON entries in the server's replica.

Bodies are decoded the way Go's ``encoding/json`` decodes them into Consul's structs: field names
match case-insensitively, and the snake_case spellings Consul accepts (``service_id``,
``deregister_critical_service_after``, ``tls_skip_verify``…) are the same names with underscores
dropped, so one normalisation (lower case, no ``_``) covers both. Durations are Go strings or
numbers of nanoseconds. Unknown fields are ignored.

Store layout (docs/registry.md): ``registry/service/<id>``, ``registry/check/<id>``,
``registry/node/<node>``; an ID outside the store grammar is encoded with
:func:`accord.registry.kvkeys.encode_segment`. A service and its checks are written in one batch.

Indexes are per query (§1.3 of the Consul reference): the max modify revision of the entries an
answer is built from, the delete revisions of such entries seen since the last full reload
(tombstones, kept in memory), and that reload's revision as a floor — so a change to service B
never moves the index of a query about service A.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from accord.core import environ
from accord.core.errors import ConsulApiError, ValidationFailedError
from accord.core.keys import MAX_KEY_BYTES
from accord.registry.durations import format_duration, parse_duration
from accord.registry.kvkeys import decode_segment, encode_segment
from accord.replica.replica import Replica
from accord.store.types import Change, DeleteItem, Entry, PutItem, WriteContext

__all__ = [
    "CHECK_PREFIX",
    "NODE_PREFIX",
    "SERVICE_PREFIX",
    "Catalog",
    "check_key",
    "decode_body",
    "node_key",
    "service_key",
]

SERVICE_PREFIX = "registry/service/"
CHECK_PREFIX = "registry/check/"
NODE_PREFIX = "registry/node/"
LEADER_KEY = "registry/lease/leader"
STATUSES = ("passing", "warning", "critical")
MIN_INTERVAL_S = 1.0  # Consul's MinInterval: shorter intervals are raised
MIN_DEREGISTER_S = 60.0  # CheckDeregisterIntervalMin
SERF_CHECK = "serfHealth"
_SCRIPT_DISABLED = (
    "Scripts are disabled on this agent from remote calls; to enable, configure 'enable_script_checks' to true"
)
_UNSUPPORTED = ("grpc", "udp", "h2ping", "aliasnode", "aliasservice", "osservice", "dockercontainerid")


def service_key(service_id: str) -> str:
    return SERVICE_PREFIX + _segment(service_id)


def check_key(check_id: str) -> str:
    return CHECK_PREFIX + _segment(check_id)


def node_key(node: str) -> str:
    return NODE_PREFIX + _segment(node)


def _segment(name: str) -> str:
    key = encode_segment(name)
    if len(key) + 20 > MAX_KEY_BYTES:
        raise ConsulApiError(400, f"ID too long: {name[:40]}...")
    return key


def decode_body(raw: bytes) -> Any:
    """A request body as JSON (an empty body is an empty object); malformed → Consul's 400."""
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConsulApiError(400, f"Request decode failed: {exc}") from None


# ----- Go-like decoding -------------------------------------------------------------------------


class Fields:
    """A JSON object read like Go reads it into a struct: case-insensitive names, ``_`` ignored."""

    def __init__(self, raw: Any, what: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise _decode_error(f"json: cannot unmarshal {_json_type(raw)} into Go value of type {what}")
        self._values = {str(k).lower().replace("_", ""): v for k, v in raw.items()}
        self._what = what

    def has(self, name: str) -> bool:
        return self._values.get(name.lower()) is not None

    def raw(self, name: str) -> Any:
        return self._values.get(name.lower())

    def text(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self._type_error(name, value, "string")
        return value

    def integer(self, name: str, default: int = 0) -> int:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise self._type_error(name, value, "int")
        return int(value)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._type_error(name, value, "bool")
        return value

    def str_list(self, name: str) -> list[str]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._type_error(name, value, "[]string")
        return list(value)

    def str_map(self, name: str) -> dict[str, str]:
        value = self.raw(name)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._type_error(name, value, "map[string]string")
        return {str(k): v for k, v in value.items()}

    def duration(self, name: str) -> float | None:
        value = self.raw(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self._type_error(name, value, "time.Duration")
        try:
            return parse_duration(value, what=name)
        except ValidationFailedError:
            raise _decode_error(f'time: invalid duration "{value}"') from None

    def _type_error(self, name: str, value: Any, go_type: str) -> ConsulApiError:
        return _decode_error(
            f"json: cannot unmarshal {_json_type(value)} into Go struct field {self._what}.{name} of type {go_type}"
        )


def _decode_error(text: str) -> ConsulApiError:
    return ConsulApiError(400, f"Request decode failed: {text}")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_entry(
    check_id: str,
    name: str,
    node: str,
    service: dict[str, Any] | None,
    status: str,
    fields: Fields,
    kind: str,
    definition: dict[str, Any],
    *,
    agent: bool,
) -> dict[str, Any]:
    """A check entry as the store keeps it (docs/registry.md), for agent and catalog registrations alike."""
    return {
        "CheckID": check_id,
        "Name": name,
        "Node": node,
        "ServiceID": service["ID"] if service else "",
        "ServiceName": service["Service"] if service else "",
        "ServiceTags": list(service["Tags"]) if service else [],
        "Status": status,
        "Output": fields.text("Output"),
        "Notes": fields.text("Notes"),
        "Type": kind,
        "Definition": definition,
        "CriticalSince": _now() if status == "critical" else None,
        "Agent": agent,
    }


def _header(fields: Fields) -> dict[str, list[str]]:
    value = fields.raw("Header")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _decode_error("json: cannot unmarshal into Go struct field CheckType.Header of type map[string][]string")
    out: dict[str, list[str]] = {}
    for name, values in value.items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise _decode_error("json: cannot unmarshal into Go struct field CheckType.Header of type []string")
        out[str(name)] = list(values)
    return out


# ----- the parsed definitions -------------------------------------------------------------------


@dataclass(frozen=True)
class CheckSpec:
    """One check definition, validated as Consul validates it; ``entry`` is what is stored."""

    check_id: str
    entry: dict[str, Any]


def _check_kind(
    fields: Fields, *, http: str, tcp: str, script: list[str], interval: float | None, ttl: float | None
) -> str:
    """The one type of a check definition, refused with Consul's words when it has none, several, or bad timings."""
    for other in _UNSUPPORTED:
        if fields.has(other) and fields.raw(other) != "" and fields.raw(other) is not False:
            raise ConsulApiError(400, f"Invalid check: {other} checks are not supported by accord")
    kinds = [kind for kind, present in (("http", http), ("tcp", tcp), ("script", script)) if present]
    if ttl is not None and ttl > 0:
        kinds.append("ttl")
    if (interval or 0) > 0 and (ttl or 0) > 0:
        raise ConsulApiError(400, "Invalid check: Interval and TTL cannot both be specified")
    if len(kinds) > 1:
        raise ConsulApiError(400, "Invalid check: only one of HTTP, TCP, TTL or Args may be given")
    interval_check = bool(kinds) and kinds[0] != "ttl"
    if interval_check and (interval or 0) <= 0:
        raise ConsulApiError(
            400, "Invalid check: Interval must be > 0 for Script, HTTP, H2PING, TCP, UDP or OSService checks"
        )
    if not interval_check and (ttl or 0) <= 0:
        raise ConsulApiError(400, "Invalid check: TTL must be > 0 for TTL checks")
    return kinds[0] if kinds else ""


def parse_check(
    raw: Any,
    *,
    node: str,
    service: dict[str, Any] | None,
    default_id: str,
    default_name: str,
    agent: bool,
    script_checks: bool,
) -> CheckSpec:
    """An agent check definition (``CheckType``/``CheckDefinition``) as a check entry, or Consul's refusal."""
    fields = Fields(raw, "CheckDefinition")
    definition = fields.raw("Definition")
    deff = Fields(definition, "HealthCheckDefinition") if isinstance(definition, dict) else fields
    check_id = fields.text("CheckID") or fields.text("ID") or default_id
    name = fields.text("Name") or default_name
    if not name:
        raise ConsulApiError(400, "Missing check name")
    script = fields.str_list("ScriptArgs") or fields.str_list("Args")
    http, tcp = deff.text("HTTP"), deff.text("TCP")
    interval, ttl = deff.duration("Interval"), deff.duration("TTL")
    timeout = deff.duration("Timeout")
    deregister = deff.duration("DeregisterCriticalServiceAfter")
    kind = _check_kind(fields, http=http, tcp=tcp, script=script, interval=interval, ttl=ttl)
    if script and agent and not script_checks:
        raise ConsulApiError(500, _SCRIPT_DISABLED)
    status = fields.text("Status") or "critical"
    if status not in STATUSES:
        raise ConsulApiError(400, "Bad check status")
    if interval is not None and 0 < interval < MIN_INTERVAL_S:
        interval = MIN_INTERVAL_S
    if deregister is not None and 0 < deregister < MIN_DEREGISTER_S:
        deregister = MIN_DEREGISTER_S
    if timeout is not None and timeout <= 0:
        timeout = None
    stored: dict[str, Any] = {
        "HTTP": http,
        "Method": deff.text("Method"),
        "Header": _header(deff),
        "Body": deff.text("Body"),
        "TCP": tcp,
        "TTL": ttl if ttl and ttl > 0 else None,
        "Interval": interval if interval and interval > 0 else None,
        "Timeout": timeout,
        "DeregisterCriticalServiceAfter": deregister if deregister and deregister > 0 else None,
        "TLSSkipVerify": deff.flag("TLSSkipVerify"),
        "TLSServerName": deff.text("TLSServerName"),
        "DisableRedirects": deff.flag("DisableRedirects"),
        "ScriptArgs": script,
    }
    entry = _check_entry(check_id, name, node, service, status, fields, kind, stored, agent=agent)
    return CheckSpec(check_id, entry)


def _service_fields(fields: Fields, *, node: str, name_field: str) -> dict[str, Any]:
    name = fields.text(name_field)
    if not name:
        raise ConsulApiError(400, "Missing service name")
    address = fields.text("Address")
    if address in ("0.0.0.0", "::", "[::]"):
        raise ConsulApiError(400, "Invalid service address")
    weights_raw = fields.raw("Weights")
    weights = {"Passing": 1, "Warning": 1}
    if weights_raw is not None:
        wf = Fields(weights_raw, "Weights")
        weights = {"Passing": wf.integer("Passing", 1), "Warning": wf.integer("Warning", 1)}
        if weights["Passing"] < 1:
            raise ConsulApiError(400, "Invalid Weights: Passing must be greater than 0")
    tagged: dict[str, dict[str, Any]] = {}
    tagged_raw = fields.raw("TaggedAddresses")
    if tagged_raw is not None:
        if not isinstance(tagged_raw, dict):
            raise _decode_error("json: cannot unmarshal into Go struct field TaggedAddresses of type map")
        for tag, value in tagged_raw.items():
            tf = Fields(value, "ServiceAddress")
            tagged[str(tag)] = {"Address": tf.text("Address"), "Port": tf.integer("Port")}
    meta = fields.str_map("Meta")
    if len(meta) > 64:
        raise ConsulApiError(400, "Invalid Service Meta: Node metadata cannot contain more than 64 key/value pairs")
    return {
        "ID": fields.text("ID") or name,
        "Service": name,
        "Tags": fields.str_list("Tags"),
        "Address": address,
        "Port": fields.integer("Port"),
        "Meta": meta,
        "TaggedAddresses": tagged,
        "Weights": weights,
        "EnableTagOverride": fields.flag("EnableTagOverride"),
        "Kind": fields.text("Kind"),
        "Node": node,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _load(entry: Entry | None) -> dict[str, Any] | None:
    if entry is None:
        return None
    try:
        value = json.loads(entry.value)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ----- the catalog ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One stored object with its store key and revisions."""

    key: str
    value: dict[str, Any]
    create_index: int
    modify_index: int


class Catalog:
    """Services, checks and nodes over ``replica``; every write goes through the replica's batch writes."""

    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.floor = max(1, replica.last_revision)
        self._service_tomb = 0  # the last delete under registry/service/
        self._check_tomb = 0
        self._node_tomb = 0
        self._name_tomb: dict[str, int] = {}  # service name -> its last instance/check delete
        self._names: dict[str, str] = {}  # store key -> the service name it belonged to
        for entry in replica.entries("registry/"):
            self._remember(entry.key, entry)
        self._unsubscribe = [
            replica.on_entry(self._remember),
            replica.on_change(self._on_change),
            replica.on_reload(self._on_reload),
        ]

    def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()

    # ----- tombstones ---------------------------------------------------------------------------

    def _remember(self, key: str, entry: Entry | None) -> None:
        if entry is None or not key.startswith((SERVICE_PREFIX, CHECK_PREFIX)):
            return
        value = _load(entry)
        if value is not None:
            name = value.get("Service") if key.startswith(SERVICE_PREFIX) else value.get("ServiceName")
            self._names[key] = str(name or "")

    def _on_change(self, change: Change) -> None:
        if change.op != "delete":
            return
        if change.key.startswith(SERVICE_PREFIX):
            self._service_tomb = max(self._service_tomb, change.revision)
        elif change.key.startswith(CHECK_PREFIX):
            self._check_tomb = max(self._check_tomb, change.revision)
        elif change.key.startswith(NODE_PREFIX):
            self._node_tomb = max(self._node_tomb, change.revision)
        name = self._names.pop(change.key, None)
        if name:
            self._name_tomb[name] = max(self._name_tomb.get(name, 0), change.revision)

    def _on_reload(self, revision: int, _fire: bool) -> None:
        self.floor = max(self.floor, revision)
        self._name_tomb.clear()
        self._names.clear()
        for entry in self.replica.entries("registry/"):
            self._remember(entry.key, entry)

    # ----- reads --------------------------------------------------------------------------------

    def _items(self, prefix: str) -> list[Item]:
        out = []
        for entry in self.replica.entries(prefix):
            value = _load(entry)
            if value is not None:
                out.append(Item(entry.key, value, entry.create_revision, entry.mod_revision))
        return out

    def services(self) -> list[Item]:
        return self._items(SERVICE_PREFIX)

    def checks(self) -> list[Item]:
        return self._items(CHECK_PREFIX)

    def nodes(self) -> list[Item]:
        """Every node: the deployment's own (synthesised unless stored) and those catalog/register added."""
        stored = self._items(NODE_PREFIX)
        own = self.node_name
        if not any(item.value.get("Node") == own for item in stored):
            stored.append(Item(node_key(own), self.own_node(), 1, 1))
        return sorted(stored, key=lambda item: str(item.value.get("Node")))

    def node(self, name: str) -> Item | None:
        return next((item for item in self.nodes() if item.value.get("Node") == name), None)

    def service(self, service_id: str) -> Item | None:
        entry = self.replica.entry(service_key(service_id))
        value = _load(entry)
        return (
            None
            if entry is None or value is None
            else Item(entry.key, value, entry.create_revision, entry.mod_revision)
        )

    def check(self, check_id: str) -> Item | None:
        entry = self.replica.entry(check_key(check_id))
        value = _load(entry)
        return (
            None
            if entry is None or value is None
            else Item(entry.key, value, entry.create_revision, entry.mod_revision)
        )

    @property
    def node_name(self) -> str:
        return environ.current().node_name

    @property
    def datacenter(self) -> str:
        return environ.current().datacenter

    @property
    def node_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"accord:{self.datacenter}:{self.node_name}"))

    def node_address(self) -> str:
        advertised = environ.current().advertise_addr
        if advertised:
            host = advertised.rsplit(":", 1)[0] if ":" in advertised else advertised
            return host.strip("[]")
        return "127.0.0.1"

    def own_node(self) -> dict[str, Any]:
        address = self.node_address()
        return {
            "ID": self.node_id,
            "Node": self.node_name,
            "Address": address,
            "Datacenter": self.datacenter,
            "TaggedAddresses": {"lan": address, "lan_ipv4": address, "wan": address, "wan_ipv4": address},
            "Meta": {"consul-network-segment": ""},
        }

    def leader_address(self, fallback: str) -> str:
        lease = _load(self.replica.entry(LEADER_KEY))
        if lease and isinstance(lease.get("address"), str) and lease["address"]:
            return str(lease["address"])
        return fallback

    def serf_check(self, node: str) -> dict[str, Any]:
        return {
            "Node": node,
            "CheckID": SERF_CHECK,
            "Name": "Serf Health Status",
            "Status": "passing",
            "Notes": "",
            "Output": "Agent alive and reachable",
            "ServiceID": "",
            "ServiceName": "",
            "ServiceTags": [],
            "Type": "",
            "Definition": {},
            "CriticalSince": None,
            "Agent": False,
        }

    # ----- indexes ------------------------------------------------------------------------------

    def services_index(self) -> int:
        return max([self.floor, self._service_tomb, *(e.mod_revision for e in self.replica.entries(SERVICE_PREFIX))])

    def checks_index(self) -> int:
        return max([self.floor, self._check_tomb, *(e.mod_revision for e in self.replica.entries(CHECK_PREFIX))])

    def nodes_index(self) -> int:
        return max([self.floor, self._node_tomb, *(e.mod_revision for e in self.replica.entries(NODE_PREFIX))])

    def service_index(self, name: str) -> int:
        """``service.<name>``: its instances, its checks, their deletes; the services index if it never existed."""
        revisions = [item.modify_index for item in self.services() if item.value.get("Service") == name]
        revisions += [item.modify_index for item in self.checks() if item.value.get("ServiceName") == name]
        tomb = self._name_tomb.get(name, 0)
        if not revisions and not tomb:
            return self.services_index()
        return max([self.floor, tomb, *revisions])

    # ----- writes -------------------------------------------------------------------------------

    async def register_service(
        self,
        body: Any,
        *,
        ctx: WriteContext,
        replace_checks: bool,
        authorize: Callable[[str], None],
    ) -> None:
        """``/v1/agent/service/register``: the service and its checks in one batch."""
        fields = Fields(body, "ServiceDefinition")
        service = _service_fields(fields, node=self.node_name, name_field="Name")
        raw_checks: list[Any] = []
        if fields.raw("Check") is not None:
            raw_checks.append(fields.raw("Check"))
        checks_value = fields.raw("Checks")
        if checks_value is not None:
            if not isinstance(checks_value, list):
                raise _decode_error("json: cannot unmarshal object into Go struct field ServiceDefinition.Checks")
            raw_checks.extend(checks_value)
        sid = service["ID"]
        script_checks = environ.current().enable_script_checks
        specs: list[CheckSpec] = []
        for number, raw in enumerate(raw_checks, start=1):
            default_id = f"service:{sid}" if len(raw_checks) == 1 else f"service:{sid}:{number}"
            specs.append(
                parse_check(
                    raw,
                    node=self.node_name,
                    service=service,
                    default_id=default_id,
                    default_name=f"Service '{service['Service']}' check",
                    agent=True,
                    script_checks=script_checks,
                )
            )
        authorize(service_key(sid))
        for spec in specs:
            authorize(check_key(spec.check_id))
        stale: list[str] = []
        if replace_checks:
            keep = {spec.check_id for spec in specs}
            stale = [
                item.key
                for item in self.checks()
                if item.value.get("ServiceID") == sid
                and item.value.get("Node") == self.node_name
                and item.value.get("CheckID") not in keep
            ]
        for key in stale:
            authorize(key)  # every refusal comes before the first write
        items = [PutItem(service_key(sid), _dump(service))]
        for spec in specs:
            items.append(PutItem(check_key(spec.check_id), _dump(self._keep_state(spec.entry))))
        written = {spec.check_id for spec in specs}
        for item in self.checks():  # checks kept from before carry the service's new name and tags
            value = item.value
            if (
                value.get("ServiceID") == sid
                and value.get("Node") == self.node_name
                and item.key not in stale
                and value.get("CheckID") not in written
                and (value.get("ServiceTags") != service["Tags"] or value.get("ServiceName") != service["Service"])
            ):
                authorize(item.key)
                items.append(
                    PutItem(
                        item.key, _dump({**value, "ServiceTags": service["Tags"], "ServiceName": service["Service"]})
                    )
                )
        await self.replica.put_keys(items, ctx=ctx)
        for key in stale:
            await self._delete(key, ctx)

    def _keep_state(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A re-registered check keeps the status and output it had (Consul's snapshot restore)."""
        old = self.check(entry["CheckID"])
        if old is None:
            return entry
        kept = dict(entry)
        for name in ("Status", "Output", "CriticalSince"):
            if name in old.value:
                kept[name] = old.value[name]
        return kept

    async def register_check(self, body: Any, *, ctx: WriteContext, authorize: Callable[[str], None]) -> None:
        fields = Fields(body, "CheckDefinition")
        service: dict[str, Any] | None = None
        service_id = fields.text("ServiceID")
        name = fields.text("Name")
        if not name:
            raise ConsulApiError(400, "Missing check name")
        spec_probe = fields.text("CheckID") or fields.text("ID") or name
        spec = parse_check(
            body,
            node=self.node_name,
            service=None,
            default_id=spec_probe,
            default_name=name,
            agent=True,
            script_checks=environ.current().enable_script_checks,
        )
        if service_id:
            found = self.service(service_id)
            if found is None:
                raise ConsulApiError(404, f'ServiceID "{service_id}" does not exist')
            service = found.value
            spec.entry.update(
                ServiceID=service["ID"], ServiceName=service["Service"], ServiceTags=list(service.get("Tags") or [])
            )
        authorize(check_key(spec.check_id))
        await self.replica.put_keys([PutItem(check_key(spec.check_id), _dump(self._keep_state(spec.entry)))], ctx=ctx)

    async def deregister_service(self, service_id: str, *, ctx: WriteContext, authorize: Callable[[str], None]) -> None:
        found = self.service(service_id)
        if found is None or found.value.get("Node") != self.node_name:
            raise ConsulApiError(
                404, f'Unknown service ID "{service_id}". Ensure that the service ID is passed, not the service name.'
            )
        authorize(found.key)
        await self._remove_service(found, ctx)

    async def _remove_service(self, found: Item, ctx: WriteContext) -> None:
        """The service and its checks in one transaction, so no watcher sees checks without their service."""
        owned = [
            item.key
            for item in self.checks()
            if item.value.get("ServiceID") == found.value.get("ID")
            and item.value.get("Node") == found.value.get("Node")
        ]
        doomed = [key for key in (*owned, found.key) if self.replica.entry(key) is not None]
        if doomed:
            await self.replica.write_batch([DeleteItem(key) for key in doomed], ctx=ctx)

    async def deregister_check(self, check_id: str, *, ctx: WriteContext, authorize: Callable[[str], None]) -> None:
        found = self.check(check_id)
        if found is None or found.value.get("Node") != self.node_name:
            raise ConsulApiError(
                404, f'Unknown check ID "{check_id}". Ensure that the check ID is passed, not the check name.'
            )
        authorize(found.key)
        await self._delete(found.key, ctx)

    async def _delete(self, key: str, ctx: WriteContext) -> None:
        if self.replica.entry(key) is not None:
            await self.replica.delete_key(key, ctx=ctx)

    async def catalog_register(self, body: Any, *, ctx: WriteContext, authorize: Callable[[str], None]) -> None:
        """``/v1/catalog/register``: a node, optionally a service and checks; checks are never run."""
        fields = Fields(body, "RegisterRequest")
        node = fields.text("Node")
        if not node:
            raise ConsulApiError(400, "Must provide node")
        skip_node = fields.flag("SkipNodeUpdate")
        address = fields.text("Address")
        if not address and not skip_node:
            raise ConsulApiError(400, "Must provide address")
        items: list[PutItem] = []
        if not skip_node:
            existing = self.node(node)
            node_value = {
                "ID": fields.text("ID") or (existing.value.get("ID") if existing else "") or str(uuid.uuid4()),
                "Node": node,
                "Address": address,
                "Datacenter": self.datacenter,
                "TaggedAddresses": fields.str_map("TaggedAddresses"),
                "Meta": fields.str_map("NodeMeta"),
            }
            authorize(node_key(node))
            items.append(PutItem(node_key(node), _dump(node_value)))
        elif self.node(node) is None:
            raise ConsulApiError(400, "Must provide address")
        service: dict[str, Any] | None = None
        if fields.raw("Service") is not None:
            service = _service_fields(Fields(fields.raw("Service"), "NodeService"), node=node, name_field="Service")
            authorize(service_key(service["ID"]))
            items.append(PutItem(service_key(service["ID"]), _dump(service)))
        raw_checks: list[Any] = [fields.raw("Check")] if fields.raw("Check") is not None else []
        checks_value = fields.raw("Checks")
        if isinstance(checks_value, list):
            raw_checks.extend(checks_value)
        for raw in raw_checks:
            entry = self._catalog_check(Fields(raw, "HealthCheck"), node=node, service=service)
            authorize(check_key(entry["CheckID"]))
            items.append(PutItem(check_key(entry["CheckID"]), _dump(entry)))
        await self.replica.put_keys(items, ctx=ctx)

    def _catalog_check(self, fields: Fields, *, node: str, service: dict[str, Any] | None) -> dict[str, Any]:
        check_id = fields.text("CheckID") or fields.text("Name")
        if not check_id:
            raise ConsulApiError(400, "Missing check ID")
        service_id = fields.text("ServiceID")
        if service_id and (service is None or service["ID"] != service_id):
            found = self.service(service_id)
            if found is None:
                raise ConsulApiError(500, f'Unknown service ID "{service_id}" for check ID "{check_id}"')
            service = found.value
        elif not service_id:
            service = None
        status = fields.text("Status") or "critical"
        if status not in STATUSES:
            raise ConsulApiError(400, "Bad check status")
        definition = Fields(fields.raw("Definition"), "HealthCheckDefinition")
        stored_definition: dict[str, Any] = {
            "HTTP": definition.text("HTTP"),
            "Method": definition.text("Method"),
            "Header": _header(definition),
            "Body": definition.text("Body"),
            "TCP": definition.text("TCP"),
            "TTL": None,
            "Interval": definition.duration("Interval"),
            "Timeout": definition.duration("Timeout"),
            "DeregisterCriticalServiceAfter": definition.duration("DeregisterCriticalServiceAfter"),
            "TLSSkipVerify": definition.flag("TLSSkipVerify"),
            "TLSServerName": definition.text("TLSServerName"),
            "DisableRedirects": definition.flag("DisableRedirects"),
            "ScriptArgs": [],
        }
        name = fields.text("Name") or check_id
        kind = fields.text("Type")
        return _check_entry(check_id, name, node, service, status, fields, kind, stored_definition, agent=False)

    async def catalog_deregister(self, body: Any, *, ctx: WriteContext, authorize: Callable[[str], None]) -> None:
        fields = Fields(body, "DeregisterRequest")
        node = fields.text("Node")
        if not node:
            raise ConsulApiError(400, "Must provide node")
        service_id, check_id = fields.text("ServiceID"), fields.text("CheckID")
        if service_id:
            found = self.service(service_id)
            if found is not None and found.value.get("Node") == node:
                authorize(found.key)
                await self._remove_service(found, ctx)
            return
        if check_id:
            check = self.check(check_id)
            if check is not None and check.value.get("Node") == node:
                authorize(check.key)
                await self._delete(check.key, ctx)
            return
        authorize(node_key(node))
        for item in self.services():
            if item.value.get("Node") == node:
                await self._remove_service(item, ctx)
        for item in self.checks():
            if item.value.get("Node") == node:
                await self._delete(item.key, ctx)
        await self._delete(node_key(node), ctx)


def _dump(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


# ----- output shapes ----------------------------------------------------------------------------


def health_check_json(item: Item | None, value: dict[str, Any]) -> dict[str, Any]:
    """Consul's HealthCheck object; ``Definition`` durations as Go strings."""
    definition = value.get("Definition") or {}
    out_def: dict[str, Any] = {}
    if definition:
        out_def = {
            "Interval": format_duration(definition.get("Interval") or 0),
            "Timeout": format_duration(definition.get("Timeout") or 0),
            "DeregisterCriticalServiceAfter": format_duration(definition.get("DeregisterCriticalServiceAfter") or 0),
            "HTTP": definition.get("HTTP", ""),
            "Header": definition.get("Header") or None,
            "Method": definition.get("Method", ""),
            "Body": definition.get("Body", ""),
            "TLSServerName": definition.get("TLSServerName", ""),
            "TLSSkipVerify": bool(definition.get("TLSSkipVerify")),
            "TCP": definition.get("TCP", ""),
        }
    return {
        "Node": value.get("Node", ""),
        "CheckID": value.get("CheckID", ""),
        "Name": value.get("Name", ""),
        "Status": value.get("Status", "critical"),
        "Notes": value.get("Notes", ""),
        "Output": value.get("Output", ""),
        "ServiceID": value.get("ServiceID", ""),
        "ServiceName": value.get("ServiceName", ""),
        "ServiceTags": list(value.get("ServiceTags") or []),
        "Type": value.get("Type", ""),
        "Interval": format_duration(definition.get("Interval") or 0) if definition.get("Interval") else "",
        "Timeout": format_duration(definition.get("Timeout") or 0) if definition.get("Timeout") else "",
        "ExposedPort": 0,
        "Definition": out_def,
        "CreateIndex": item.create_index if item else 1,
        "ModifyIndex": item.modify_index if item else 1,
    }


def agent_service_json(item: Item, datacenter: str) -> dict[str, Any]:
    value = item.value
    return {
        "ID": value["ID"],
        "Service": value["Service"],
        "Tags": list(value.get("Tags") or []),
        "Meta": dict(value.get("Meta") or {}),
        "Port": value.get("Port", 0),
        "Address": value.get("Address", ""),
        "TaggedAddresses": dict(value.get("TaggedAddresses") or {}),
        "Weights": value.get("Weights") or {"Passing": 1, "Warning": 1},
        "EnableTagOverride": bool(value.get("EnableTagOverride")),
        "Kind": value.get("Kind", ""),
        "Datacenter": datacenter,
        "CreateIndex": item.create_index,
        "ModifyIndex": item.modify_index,
    }


def node_json(item: Item) -> dict[str, Any]:
    value = item.value
    return {
        "ID": value.get("ID", ""),
        "Node": value.get("Node", ""),
        "Address": value.get("Address", ""),
        "Datacenter": value.get("Datacenter", ""),
        "TaggedAddresses": {str(k): str(v) for k, v in (value.get("TaggedAddresses") or {}).items()},
        "Meta": dict(value.get("Meta") or {}),
        "CreateIndex": item.create_index,
        "ModifyIndex": item.modify_index,
    }


def service_node_json(node: Item, service: Item) -> dict[str, Any]:
    """Consul's ServiceNode (``/v1/catalog/service/<name>``)."""
    n, s = node_json(node), service.value
    return {
        "ID": n["ID"],
        "Node": n["Node"],
        "Address": n["Address"],
        "Datacenter": n["Datacenter"],
        "TaggedAddresses": n["TaggedAddresses"],
        "NodeMeta": n["Meta"],
        "ServiceKind": s.get("Kind", ""),
        "ServiceID": s["ID"],
        "ServiceName": s["Service"],
        "ServiceTags": list(s.get("Tags") or []),
        "ServiceAddress": s.get("Address", ""),
        "ServiceTaggedAddresses": dict(s.get("TaggedAddresses") or {}),
        "ServiceWeights": s.get("Weights") or {"Passing": 1, "Warning": 1},
        "ServiceMeta": dict(s.get("Meta") or {}),
        "ServicePort": s.get("Port", 0),
        "ServiceSocketPath": "",
        "ServiceEnableTagOverride": bool(s.get("EnableTagOverride")),
        "ServiceProxy": {"Mode": "", "MeshGateway": {}, "Expose": {}},
        "ServiceConnect": {},
        "CreateIndex": service.create_index,
        "ModifyIndex": service.modify_index,
    }


def decode_id(store_key: str) -> str:
    return decode_segment(store_key.rsplit("/", 1)[1])


def has_tags(value: Mapping[str, Any], tags: Iterable[str]) -> bool:
    mine = set(value.get("Tags") or [])
    return all(tag in mine for tag in tags)
