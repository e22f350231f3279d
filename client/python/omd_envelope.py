"""The omd envelope protocol, version 1, in Python.

Written from docs/PROTOCOL.md and proto/omd.proto alone (no C++ source), as a second,
independent implementation of the protocol:

- `derive_key`, `associated_data` and `encode_plaintext`: sections 3.2 to 3.4;
- `seal`: a whole envelope, request or reply (section 3), every random input
  injectable so that the test vectors of section 9 can be reproduced;
- `open_envelope`: the reverse, with the checks of section 4 (steps 3 to 5, and
  step 7's clock; not the replay guard, which needs state) for requests and of
  section 5 for replies;
- `method_info`: a method as its descriptor describes it: the types of its
  `(omd.v1.carries)` option and the rights of its `(omd.v1.access)` option;
- `AgentClient`: calls an `omd.v1.Agent` method by name over gRPC, sealing the typed
  request and opening and checking the typed reply. A client that knows the daemon
  only by its address calls `Identify` first (empty recipient, section 6.1), binds
  every later request to the node that answered, and refuses a reply from any
  other node (section 5, check 4). `AgentClient.joiner` is a joiner's client
  (section 6.3): empty cluster, key generation 0, any node's reply trusted, and
  the cluster reached learned from the reply.

The protobuf classes are generated from proto/omd.proto at first use (see
`omd_pb2()`); no generated code is kept in the repository.
"""

import dataclasses
import hmac
import importlib
import os
import re
import secrets as _secrets
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Iterable, Iterator, Mapping, Optional, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Section 3.2 and 3.3 constants.
KEY_INFO = b"omd.v1.envelope.key"
AAD_PREFIX = b"omd.v1.envelope"
KEY_BYTES = 32
SALT_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
REQUEST_ID_BYTES = 16

# Section 6.3: the key generation of a joiner's envelopes.
JOINER_KEY_GENERATION = 0

# Section 3.3: the direction byte.
REQUEST = 1
REPLY = 2
_DIRECTIONS = {"request": REQUEST, "reply": REPLY}

# Section 4, step 7: the daemon's default clock skew; section 5, check 5: a client's
# own window, by default the same.
DEFAULT_CLOCK_SKEW_MS = 60_000

# Section 4, step 3: a valid node name (1-63 characters from [A-Za-z0-9._-],
# starting with a letter or digit, without "..").
_NODENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")

SERVICE = "omd.v1.Agent"

Secret = Union[str, bytes]


class EnvelopeError(Exception):
    """An envelope that must not be trusted: bad field, tag, time or binding."""


# --------------------------------------------------------------------------- protos

_pb2_lock = threading.Lock()
_pb2_module = None


def default_proto_file() -> str:
    """proto/omd.proto: $OMD_PROTO, else the one beside this checkout/runfiles tree."""
    if os.environ.get("OMD_PROTO"):
        return os.environ["OMD_PROTO"]
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, os.pardir, os.pardir, "proto", "omd.proto")


def omd_pb2(proto_file: Optional[str] = None):
    """The `omd_pb2` module: imported if on sys.path, else generated once.

    Generation runs `python -m grpc_tools.protoc -I <dir of omd.proto> --python_out`
    into a fresh directory under $TEST_TMPDIR (or the system temp directory).
    """
    global _pb2_module
    with _pb2_lock:
        if _pb2_module is not None:
            return _pb2_module
        if proto_file is None:
            try:
                _pb2_module = importlib.import_module("omd_pb2")
                return _pb2_module
            except ImportError:
                proto_file = default_proto_file()
        proto_file = os.path.abspath(proto_file)
        out_dir = tempfile.mkdtemp(prefix="omd_pb2_", dir=os.environ.get("TEST_TMPDIR"))
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc",
             "-I", os.path.dirname(proto_file),
             "--python_out", out_dir,
             os.path.basename(proto_file)],
            check=True)
        sys.path.insert(0, out_dir)
        _pb2_module = importlib.import_module("omd_pb2")
        return _pb2_module


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """An Agent method as its descriptor describes it."""
    name: str                 # e.g. "BlacklistStatus"
    path: str                 # e.g. "/omd.v1.Agent/BlacklistStatus"
    request_type: type        # the class sealed in the request
    reply_type: type          # the class sealed in each reply
    server_streaming: bool
    # (omd.v1.access), section 4 steps 3 and 4; both false by default (members only,
    # recipient required).
    non_members: bool = False    # senders outside cluster.nodes may call it
    any_recipient: bool = False  # a request may leave `recipient` empty


def method_info(name: str) -> MethodInfo:
    """Reads the method's `(omd.v1.carries)` and `(omd.v1.access)` options.

    `name` is the method's name ("BlacklistStatus") or its full path
    ("/omd.v1.Agent/BlacklistStatus").
    """
    pb2 = omd_pb2()
    service = pb2.DESCRIPTOR.services_by_name["Agent"]
    prefix = f"/{service.full_name}/"
    if name.startswith("/"):
        if not name.startswith(prefix):
            raise KeyError(f"{name!r} is not a method path of {service.full_name}")
        name = name[len(prefix):]
    method = service.methods_by_name.get(name)
    if method is None:
        raise KeyError(f"no method {name!r} in {service.full_name}")
    options = method.GetOptions()
    if not options.HasExtension(pb2.carries):
        raise KeyError(f"{service.full_name}.{name} has no (omd.v1.carries) option")
    carries = options.Extensions[pb2.carries]
    access = options.Extensions[pb2.access]  # the default instance when absent
    return MethodInfo(
        name=name,
        path=prefix + name,
        request_type=_message_class(carries.request),
        reply_type=_message_class(carries.reply),
        server_streaming=method.server_streaming,
        non_members=access.non_members,
        any_recipient=access.any_recipient,
    )


def check_recipient(method: Union[str, MethodInfo], recipient: str) -> None:
    """Section 2 and section 4, step 4: a request must name its recipient unless the
    method's access has `any_recipient` (Identify). Raises ValueError otherwise."""
    info = method if isinstance(method, MethodInfo) else method_info(method)
    if not recipient and not info.any_recipient:
        raise ValueError(
            f"{info.path} needs a recipient: its (omd.v1.access) has no any_recipient, "
            f"so a daemon refuses it with an empty recipient (UNAUTHENTICATED); call "
            f"Identify first to learn the node name")


def valid_nodename(name: str) -> bool:
    """Section 4, step 3: the syntax of a node name."""
    return bool(_NODENAME.match(name)) and ".." not in name


def _message_class(full_name: str) -> type:
    pb2 = omd_pb2()
    package = pb2.DESCRIPTOR.package + "."
    if not full_name.startswith(package):
        raise KeyError(f"(omd.v1.carries) names {full_name!r}, outside {package}")
    return getattr(pb2, full_name[len(package):])


# ------------------------------------------------------------------- the primitives

def _utf8(value: Secret) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _direction(direction: Union[int, str]) -> int:
    if isinstance(direction, str):
        direction = _DIRECTIONS[direction]
    if direction not in (REQUEST, REPLY):
        raise ValueError(f"bad direction {direction!r}")
    return direction


def derive_key(secret: Secret, salt: bytes) -> bytes:
    """Section 3.2: HKDF-SHA256(secret as UTF-8, salt, "omd.v1.envelope.key", 32)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=bytes(salt),
                info=KEY_INFO).derive(_utf8(secret))


def associated_data(direction: Union[int, str], method: str, cluster: str,
                    nodename: str, recipient: str, salt: bytes,
                    key_generation: int) -> bytes:
    """Section 3.3: the bytes that bind the direction, method and clear fields."""
    def field(value: bytes) -> bytes:
        return struct.pack(">I", len(value)) + value

    return b"".join([
        AAD_PREFIX,
        bytes([_direction(direction)]),
        field(method.encode("utf-8")),
        field(cluster.encode("utf-8")),
        field(nodename.encode("utf-8")),
        field(recipient.encode("utf-8")),
        field(bytes(salt)),
        struct.pack(">I", key_generation),
    ])


def encode_plaintext(sent_at_unix_ms: int, request_id: bytes,
                     in_reply_to: bytes = b"", payload: bytes = b"",
                     sequence: int = 0) -> bytes:
    """Section 3.4: the serialized `Sealed` message."""
    sealed = omd_pb2().Sealed(sent_at_unix_ms=sent_at_unix_ms, request_id=request_id,
                              in_reply_to=in_reply_to, payload=payload,
                              sequence=sequence)
    return sealed.SerializeToString()


def now_unix_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- seal

@dataclasses.dataclass(frozen=True)
class SealedEnvelope:
    envelope: object      # omd_pb2.Envelope
    request_id: bytes     # what a reply's in_reply_to must equal
    sent_at_unix_ms: int


def seal(*, secret: Secret, key_generation: int, cluster: str, nodename: str,
         method: str, direction: Union[int, str], recipient: str = "",
         payload: bytes = b"",
         in_reply_to: bytes = b"", salt: Optional[bytes] = None,
         nonce: Optional[bytes] = None, request_id: Optional[bytes] = None,
         sent_at_unix_ms: Optional[int] = None,
         sequence: int = 0) -> SealedEnvelope:
    """Seals `payload` (a serialized typed message) for `method` (a full path).

    `recipient` is the node the envelope is for. A request may leave it empty only
    for a method whose `(omd.v1.access)` has `any_recipient` (Identify); this
    primitive does not enforce that (tests and the vectors build such envelopes on
    purpose): `check_recipient` and `AgentClient` do. A joiner (section 6.3) seals
    with cluster "" and key_generation 0 (JOINER_KEY_GENERATION). salt, nonce and request_id
    default to fresh CSPRNG bytes and sent_at_unix_ms to the clock. A reply must
    pass the request's sender as recipient, its salt and key_generation, and its
    request_id as in_reply_to (section 5); the n-th reply of a stream passes
    `sequence` n (from 1), every other message 0.
    """
    direction = _direction(direction)
    if sequence < 0 or (sequence and direction != REPLY):
        raise ValueError("only a stream's replies have a sequence (1, 2, 3...)")
    if direction == REPLY and len(in_reply_to) != REQUEST_ID_BYTES:
        raise ValueError("a reply needs the 16-byte request_id it answers")
    if direction == REQUEST and in_reply_to:
        raise ValueError("a request has no in_reply_to")
    if direction == REPLY and not recipient:
        raise ValueError("a reply is for its requester: recipient is required")
    if key_generation < 0:
        raise ValueError("key_generation must be >= 1, or 0 for a joiner")
    salt = _secrets.token_bytes(SALT_BYTES) if salt is None else bytes(salt)
    nonce = _secrets.token_bytes(NONCE_BYTES) if nonce is None else bytes(nonce)
    if request_id is None:
        request_id = _secrets.token_bytes(REQUEST_ID_BYTES)
    if sent_at_unix_ms is None:
        sent_at_unix_ms = now_unix_ms()
    if len(salt) != SALT_BYTES or len(nonce) != NONCE_BYTES or \
            len(request_id) != REQUEST_ID_BYTES:
        raise ValueError("salt, nonce and request_id must be 16, 12 and 16 bytes")

    key = derive_key(secret, salt)
    aad = associated_data(direction, method, cluster, nodename, recipient, salt,
                          key_generation)
    plaintext = encode_plaintext(sent_at_unix_ms, request_id, in_reply_to, payload,
                                 sequence)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, aad)
    envelope = omd_pb2().Envelope(cluster=cluster, nodename=nodename,
                                  recipient=recipient, salt=salt,
                                  key_generation=key_generation, nonce=nonce,
                                  ciphertext=ciphertext)
    return SealedEnvelope(envelope, bytes(request_id), sent_at_unix_ms)


# --------------------------------------------------------------------------- open

@dataclasses.dataclass(frozen=True)
class OpenedEnvelope:
    cluster: str
    nodename: str          # the sender; for a reply, the node that answered
    recipient: str
    key_generation: int
    sent_at_unix_ms: int
    request_id: bytes
    in_reply_to: bytes
    payload: bytes
    sequence: int = 0      # a stream's reply: 1, 2, 3...; else 0


def open_envelope(envelope, *, secrets: Mapping[int, Secret], method: str,
                  direction: Union[int, str], cluster: str,
                  own_nodename: Optional[str] = None,
                  trusted_nodenames: Optional[Iterable[str]] = None,
                  in_reply_to: Optional[bytes] = None,
                  expected_salt: Optional[bytes] = None,
                  expected_key_generation: Optional[int] = None,
                  expected_nodename: Optional[str] = None,
                  expected_sequence: Optional[int] = None,
                  enforce_access: bool = False,
                  accept_joiners: bool = False,
                  trust_any_nodename: bool = False,
                  now_ms: Optional[int] = None,
                  clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS) -> OpenedEnvelope:
    """Opens and checks an envelope (an `omd_pb2.Envelope` or its serialization).

    `secrets` maps key generations to cluster secrets; the highest is the current
    one. `cluster` is the receiver's cluster; "" for a joiner, which opens a reply
    of any cluster (section 6.3).

    For a request this applies the authenticity checks of section 4, step 5, and the
    clock of step 7, but not the replay guard (which needs state: a server keeps
    every request_id it admits for 2 x clock_skew, section 4.4). With
    `own_nodename`, a request for another node is refused; with `trusted_nodenames`
    (the daemon's cluster.nodes), a request from a non-member. With
    `enforce_access`, the method's `(omd.v1.access)` applies as section 4 reads: a
    valid node name (step 3, read as applying to every method), membership only
    unless `non_members`, and a non-empty recipient unless `any_recipient` (step 4). Without it an empty recipient is
    accepted, so that the vectors open as section 9 says. With `accept_joiners`
    (and, under `enforce_access`, on a method open to non-members only), a
    joiner's request (cluster "", key generation 0) opens with the current secret.

    For a reply it applies section 5: the recipient is `own_nodename` (required),
    the tag with direction reply, `in_reply_to` (required), the sender in
    `trusted_nodenames` (required) and, with `expected_nodename`, that very node
    (the recipient of the request, check 4), the time window, and that the reply
    kept the request's salt and generation when `expected_salt` /
    `expected_key_generation` are given. A joiner passes `trust_any_nodename`
    instead of `trusted_nodenames`: any valid node name. With `expected_sequence`,
    the reply's `Sealed.sequence` must be that: 0 for a unary reply, n for the
    n-th reply of a stream (section 5).

    Raises EnvelopeError with the reason on any failure.
    """
    pb2 = omd_pb2()
    direction = _direction(direction)
    if isinstance(envelope, (bytes, bytearray)):
        parsed = pb2.Envelope()
        try:
            parsed.ParseFromString(bytes(envelope))
        except Exception as e:  # protobuf's DecodeError
            raise EnvelopeError(f"envelope does not parse: {e}") from e
        envelope = parsed

    access = None
    if enforce_access and direction == REQUEST:
        try:
            access = method_info(method)
        except KeyError as e:
            raise EnvelopeError(f"no such method: {e}") from e
        accept_joiners = accept_joiners and access.non_members
    # Section 6.3: a joiner's request names no cluster and uses generation 0; a
    # joiner's codec (cluster "") takes a reply of any cluster.
    joiner_request = direction == REQUEST and bool(cluster) and not envelope.cluster
    if joiner_request:
        if not accept_joiners:
            raise EnvelopeError("a joiner's envelope, on a method closed to joiners")
        if envelope.key_generation != JOINER_KEY_GENERATION:
            raise EnvelopeError("a joiner's envelope must have key generation 0")
    elif envelope.cluster != cluster and not (direction == REPLY and not cluster):
        raise EnvelopeError(f"cluster {envelope.cluster!r} is not {cluster!r}")
    elif cluster and envelope.key_generation == JOINER_KEY_GENERATION:
        raise EnvelopeError("key generation 0 is a joiner's, and this is not a "
                            "joiner's request")
    if direction == REPLY:
        if (trusted_nodenames is None and not trust_any_nodename) or \
                in_reply_to is None or own_nodename is None:
            raise ValueError("opening a reply needs own_nodename, trusted_nodenames "
                             "(or trust_any_nodename) and in_reply_to")
        if envelope.recipient != own_nodename:
            raise EnvelopeError(f"reply for {envelope.recipient!r}, not {own_nodename!r}")
        if trust_any_nodename:
            if not valid_nodename(envelope.nodename):
                raise EnvelopeError(f"reply from invalid node name {envelope.nodename!r}")
        elif envelope.nodename not in set(trusted_nodenames):
            raise EnvelopeError(f"reply from untrusted node {envelope.nodename!r}")
        if expected_nodename is not None and envelope.nodename != expected_nodename:
            raise EnvelopeError(f"reply from node {envelope.nodename!r}, but the "
                                f"request was for {expected_nodename!r}")
    else:
        if access is not None:
            if not valid_nodename(envelope.nodename):
                raise EnvelopeError(f"invalid node name {envelope.nodename!r}")
        if trusted_nodenames is not None and \
                not (access is not None and access.non_members) and \
                envelope.nodename not in set(trusted_nodenames):
            raise EnvelopeError(f"request from non-member {envelope.nodename!r}")
        if access is not None and not envelope.recipient and not access.any_recipient:
            raise EnvelopeError(f"request for {method} without a recipient")
        if own_nodename is not None and envelope.recipient not in ("", own_nodename):
            raise EnvelopeError(f"request for {envelope.recipient!r}, not {own_nodename!r}")
    if len(envelope.salt) != SALT_BYTES:
        raise EnvelopeError("salt is not 16 bytes")
    if len(envelope.nonce) != NONCE_BYTES:
        raise EnvelopeError("nonce is not 12 bytes")
    if len(envelope.ciphertext) < TAG_BYTES:
        raise EnvelopeError("ciphertext is shorter than its tag")
    if expected_salt is not None and envelope.salt != expected_salt:
        raise EnvelopeError("reply salt differs from the request's")
    if expected_key_generation is not None and \
            envelope.key_generation != expected_key_generation:
        raise EnvelopeError("reply key_generation differs from the request's")
    if joiner_request:
        secret = secrets.get(max(secrets)) if secrets else None  # the current one
    else:
        secret = secrets.get(envelope.key_generation)
    if secret is None:
        raise EnvelopeError(f"no secret of generation {envelope.key_generation}")

    key = derive_key(secret, envelope.salt)
    aad = associated_data(direction, method, envelope.cluster, envelope.nodename,
                          envelope.recipient, envelope.salt, envelope.key_generation)
    try:
        plaintext = AESGCM(key).decrypt(envelope.nonce, envelope.ciphertext, aad)
    except InvalidTag as e:
        raise EnvelopeError("authentication failed (key, tag or binding)") from e

    sealed = pb2.Sealed()
    try:
        sealed.ParseFromString(plaintext)
    except Exception as e:
        raise EnvelopeError(f"plaintext does not parse as Sealed: {e}") from e
    if len(sealed.request_id) != REQUEST_ID_BYTES:
        raise EnvelopeError("request_id is not 16 bytes")
    if now_ms is None:
        now_ms = now_unix_ms()
    if abs(now_ms - sealed.sent_at_unix_ms) > clock_skew_ms:
        raise EnvelopeError(
            f"sent_at_unix_ms {sealed.sent_at_unix_ms} is outside "
            f"{now_ms} +/- {clock_skew_ms} ms")
    if direction == REPLY and not hmac.compare_digest(sealed.in_reply_to, in_reply_to):
        raise EnvelopeError("in_reply_to is not the request_id sent")
    if expected_sequence is not None and sealed.sequence != expected_sequence:
        raise EnvelopeError(f"reply sequence {sealed.sequence}, expected "
                            f"{expected_sequence}")
    return OpenedEnvelope(
        cluster=envelope.cluster, nodename=envelope.nodename,
        recipient=envelope.recipient, key_generation=envelope.key_generation,
        sent_at_unix_ms=sealed.sent_at_unix_ms, request_id=sealed.request_id,
        in_reply_to=sealed.in_reply_to, payload=sealed.payload,
        sequence=sealed.sequence)


# -------------------------------------------------------------------------- client

class AgentClient:
    """Calls `omd.v1.Agent` methods of one daemon as one node.

        client = AgentClient("127.0.0.1:1214", cluster="test", nodename="node2",
                             secret="...", trusted_nodenames=["node1", "node2"])
        reply = client.call("BlacklistStatus")   # an omd_pb2.BlacklistStatusReply
        client.node                               # "node1": the node that answered

    With `recipient` (the daemon's node name, when the caller knows it) every
    request names it. Without, the client knows the daemon only by its address:
    before its first request it calls `Identify` with an empty recipient (section
    6.1), accepts the answer from any node of `trusted_nodenames`, and binds to that
    node: every later request names it as recipient, and a reply from any other node
    is refused (section 5, check 4), even one in `trusted_nodenames`. `node` is the
    bound node (None before the first call).

    gRPC errors come out as `grpc.RpcError` (the daemon's statuses are not sealed);
    a reply that fails the checks of section 5 raises EnvelopeError. The client keeps
    one salt for its lifetime, as section 3.1 allows.

    A joiner (section 6.3), which has the secret but neither the cluster's name nor
    its members, uses `AgentClient.joiner(target, nodename=..., secret=...)`: it
    can call the methods open to non-members (Identify, Join), and `cluster` is
    the name of the cluster reached once a reply came.
    """

    def __init__(self, target: str, *, cluster: str, nodename: str, secret: Secret,
                 trusted_nodenames: Iterable[str], recipient: Optional[str] = None,
                 key_generation: int = 1,
                 timeout: float = 10.0, clock_skew_ms: int = DEFAULT_CLOCK_SKEW_MS,
                 channel=None, _joiner: bool = False):
        import grpc  # only the client needs it
        self._grpc = grpc
        self._joiner = _joiner
        self.cluster = cluster
        self.nodename = nodename
        self.key_generation = key_generation
        self.trusted_nodenames = frozenset(trusted_nodenames)
        self.timeout = timeout
        self.clock_skew_ms = clock_skew_ms
        self._secret = secret
        self._salt = _secrets.token_bytes(SALT_BYTES)
        self._bind_lock = threading.Lock()
        self._node = recipient or None  # the node every request names, once known
        self._own_channel = channel is None
        self._channel = grpc.insecure_channel(target) if channel is None else channel

    @classmethod
    def joiner(cls, target: str, *, nodename: str, secret: Secret,
               recipient: Optional[str] = None, **kwargs) -> "AgentClient":
        """A joiner's client (section 6.3): cluster "", key generation 0, a reply
        from any valid node name trusted; `cluster` becomes the cluster reached."""
        return cls(target, cluster="", nodename=nodename, secret=secret,
                   trusted_nodenames=(), recipient=recipient,
                   key_generation=JOINER_KEY_GENERATION, _joiner=True, **kwargs)

    @property
    def node(self) -> Optional[str]:
        """The node this client is bound to: its `recipient`, or the node that
        answered its Identify; None until then."""
        return self._node

    @property
    def recipient(self) -> str:
        """The recipient of the next request: the bound node, or "" before it."""
        return self._node or ""

    def close(self) -> None:
        if self._own_channel:
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ binding

    def identify(self, timeout: Optional[float] = None) -> str:
        """Calls Identify with an empty recipient and returns the answering node.

        The answer must come from a node of `trusted_nodenames`. An unbound client
        binds to it; a bound one raises EnvelopeError if another node answered.
        """
        info = method_info("Identify")
        _, opened = self._call_unary(info, None, timeout, recipient="")
        return self._bind(opened.nodename)

    def _bind(self, node: str) -> str:
        with self._bind_lock:
            if self._node is None:
                self._node = node
            elif self._node != node:
                raise EnvelopeError(f"node {node!r} answered, but this client is "
                                    f"bound to {self._node!r}")
            return self._node

    def _recipient_for(self, info: MethodInfo, timeout: Optional[float]) -> str:
        """The recipient of a request for `info`, calling Identify first if needed."""
        if self._node is None and not info.any_recipient:
            self.identify(timeout)
        recipient = self.recipient
        check_recipient(info, recipient)
        return recipient

    # ---------------------------------------------------------- seal and open

    def _seal(self, info: MethodInfo, request, recipient: str) -> SealedEnvelope:
        if request is None:
            request = info.request_type()
        if not isinstance(request, info.request_type):
            raise TypeError(f"{info.name} carries {info.request_type.DESCRIPTOR.full_name}"
                            f", not {type(request).DESCRIPTOR.full_name}")
        check_recipient(info, recipient)
        return seal(secret=self._secret, key_generation=self.key_generation,
                    # A joiner seals with no cluster even once it knows the name.
                    cluster="" if self._joiner else self.cluster,
                    nodename=self.nodename, method=info.path,
                    direction=REQUEST, recipient=recipient,
                    payload=request.SerializeToString(),
                    salt=self._salt)

    def _open(self, info: MethodInfo, sent: SealedEnvelope, envelope,
              sequence: int = 0):
        opened = open_envelope(
            envelope, secrets={self.key_generation: self._secret}, method=info.path,
            direction=REPLY, cluster="" if self._joiner else self.cluster,
            own_nodename=self.nodename,
            trusted_nodenames=self.trusted_nodenames, trust_any_nodename=self._joiner,
            in_reply_to=sent.request_id,
            expected_salt=sent.envelope.salt,
            expected_key_generation=self.key_generation,
            # Section 5, check 4: the node called; for an Identify sent to any node,
            # any node of trusted_nodenames.
            expected_nodename=sent.envelope.recipient or None,
            expected_sequence=sequence,
            clock_skew_ms=self.clock_skew_ms)
        if self._joiner:
            self.cluster = opened.cluster  # authenticated: bound into the tag
        reply = info.reply_type()
        try:
            reply.ParseFromString(opened.payload)
        except Exception as e:
            raise EnvelopeError(f"payload does not parse as "
                                f"{info.reply_type.DESCRIPTOR.full_name}: {e}") from e
        return reply, opened

    # ------------------------------------------------------------------- calls

    def _call_unary(self, info: MethodInfo, request, timeout: Optional[float],
                    recipient: str):
        pb2 = omd_pb2()
        rpc = self._channel.unary_unary(
            info.path, request_serializer=pb2.Envelope.SerializeToString,
            response_deserializer=pb2.Envelope.FromString)
        sent = self._seal(info, request, recipient)
        envelope = rpc(sent.envelope,
                       timeout=self.timeout if timeout is None else timeout)
        return self._open(info, sent, envelope)

    def call_opened(self, method: str, request=None, timeout: Optional[float] = None):
        """Like `call`, but returns (typed reply, OpenedEnvelope) for inspection."""
        info = method_info(method)
        if info.server_streaming:
            raise ValueError(f"{method} is server streaming: use stream()")
        recipient = self._recipient_for(info, timeout)
        reply, opened = self._call_unary(info, request, timeout, recipient)
        if not recipient:  # an Identify sent to any node: bind to the answer
            self._bind(opened.nodename)
        return reply, opened

    def call(self, method: str, request=None, timeout: Optional[float] = None):
        """Calls a unary method by name ("BlacklistStatus"); returns the typed reply.

        `request` defaults to an empty message of the method's request type.
        """
        return self.call_opened(method, request, timeout)[0]

    def stream(self, method: str, request=None,
               timeout: Optional[float] = None) -> Iterator[object]:
        """Calls a server-streaming method; yields each checked, typed reply."""
        info = method_info(method)
        if not info.server_streaming:
            raise ValueError(f"{method} is unary: use call()")
        pb2 = omd_pb2()
        rpc = self._channel.unary_stream(
            info.path, request_serializer=pb2.Envelope.SerializeToString,
            response_deserializer=pb2.Envelope.FromString)
        sent = self._seal(info, request, self._recipient_for(info, timeout))
        # Section 5: the n-th reply of the stream has sequence n; a gap, a repeat
        # or a reordering ends the stream with EnvelopeError.
        for sequence, envelope in enumerate(rpc(sent.envelope, timeout=timeout), 1):
            yield self._open(info, sent, envelope, sequence)[0]
