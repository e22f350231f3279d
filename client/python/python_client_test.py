"""The Python client (omd_envelope.AgentClient) against the real daemon.

Each test of PythonClientTest starts `daemon/omd` on a fresh root with a node.conf
written here (node1 of cluster `test`, members node1 and node2, listening on
127.0.0.1 with an ephemeral port), talks to it only as PROTOCOL.md describes, and
stops it with SIGTERM (a test may also restart it on the same root). The client
connects from 127.0.0.1, the daemon's own host: a blacklisted sender there gets
PERMISSION_DENIED per request and its connections are never refused (section 4.2).

BindingTest runs the client against a stand-in daemon written here (a gRPC server
that answers every Agent method as whichever node the test says), to show that the
client refuses a reply from a node it did not call. AccessOptionTest reads the
`(omd.v1.access)` option from the descriptor.
"""

import concurrent.futures
import os
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

import omd_envelope
from omd_envelope import EnvelopeError

SECRET = "python-client-test-secret-0123456789abcdef"
WRONG_SECRET = "python-client-test-secret-0123456789abcdeX"
MEMBERS = ["node1", "node2"]
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0

NODE_CONF = """\
[node]
name = node1
[cluster]
name = test
secret = {secret}
nodes = node1 node2
[listener]
addr = 127.0.0.1
port = 0
"""


def omd_binary() -> str:
    """$OMD_BINARY, else daemon/omd in the Bazel runfiles, else in bazel-bin."""
    if os.environ.get("OMD_BINARY"):
        return os.environ["OMD_BINARY"]
    for base in (os.environ.get("TEST_SRCDIR"), os.environ.get("RUNFILES_DIR")):
        if base and os.path.exists(os.path.join(base, "omd", "daemon", "omd")):
            return os.path.join(base, "omd", "daemon", "omd")
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, os.pardir, os.pardir, "bazel-bin", "daemon", "omd")


def _code(call) -> grpc.StatusCode:
    """Runs call() and returns the gRPC status code it failed with."""
    return _status(call)[0]


def _status(call):
    """Runs call() and returns the (code, details) it failed with."""
    try:
        call()
    except grpc.RpcError as e:
        return e.code(), e.details()
    raise AssertionError("the call succeeded")


class _RecordingInterceptor(grpc.UnaryUnaryClientInterceptor,
                            grpc.UnaryStreamClientInterceptor):
    """Records (method, request Envelope) of every call made through its channel."""

    def __init__(self):
        self.sent = []

    def intercept_unary_unary(self, continuation, details, request):
        self.sent.append((details.method, request))
        return continuation(details, request)

    def intercept_unary_stream(self, continuation, details, request):
        self.sent.append((details.method, request))
        return continuation(details, request)

    def recipients(self):
        return [(method.rsplit("/", 1)[1], envelope.recipient)
                for method, envelope in self.sent]


class PythonClientTest(unittest.TestCase):

    def setUp(self):
        self.pb2 = omd_envelope.omd_pb2()
        self.root = tempfile.mkdtemp(prefix="omd_root_", dir=os.environ.get("TEST_TMPDIR"))
        os.makedirs(os.path.join(self.root, "etc"))
        conf = os.path.join(self.root, "etc", "node.conf")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(NODE_CONF.format(secret=SECRET))
        self.log_path = os.path.join(self.root, "omd.out")
        self.log = open(self.log_path, "wb")
        self.addCleanup(self.log.close)
        self.daemon = None
        self.channel = None
        self.clients = []
        self._start_daemon()

    def tearDown(self):
        self._close_clients()
        self._stop_daemon()

    def _start_daemon(self):
        """Starts omd on self.root and waits until it serves on a fresh address."""
        # A previous run's address file would name its port, not the new one.
        address_file = os.path.join(self.root, "var", "listener.address")
        if os.path.exists(address_file):
            os.remove(address_file)
        self.daemon = subprocess.Popen(
            [omd_binary(), "--root", self.root, "--dequeue_command", "/bin/true"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(self._kill_if_running, self.daemon)
        self.target = self._wait_for_address()
        self.channel = grpc.insecure_channel(self.target)
        self._wait_until_serving()

    def _stop_daemon(self, sig=signal.SIGTERM):
        """Stops omd with `sig`; with SIGTERM, it must exit 0."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        self.daemon.send_signal(sig)
        try:
            code = self.daemon.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.fail(f"omd did not stop within {STOP_TIMEOUT_S} s of {sig!r}")
        if sig == signal.SIGTERM:
            self.assertEqual(0, code, f"omd exit status; its output:\n{self._output()}")

    def _close_clients(self):
        for client in self.clients:
            client.close()
        self.clients = []

    @staticmethod
    def _kill_if_running(daemon):
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()

    def _output(self) -> str:
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def _wait_for_address(self) -> str:
        path = os.path.join(self.root, "var", "listener.address")
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                self.fail(f"omd exited with {self.daemon.returncode}:\n{self._output()}")
            try:
                with open(path) as f:
                    text = f.read()
                if text.endswith("\n"):
                    return text.strip()
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        self.fail(f"no {path} after {START_TIMEOUT_S} s:\n{self._output()}")

    def _wait_until_serving(self):
        # grpc.health.v1.Health/Check, hand-encoded: an empty HealthCheckRequest asks
        # about the whole server; the reply {status: SERVING} is 08 01.
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                         request_serializer=lambda b: b,
                                         response_deserializer=lambda b: b)
        self.assertEqual(b"\x08\x01",
                         check(b"", timeout=START_TIMEOUT_S, wait_for_ready=True))

    def client(self, nodename="node2", secret=SECRET, trusted=MEMBERS,
               recipient="node1", channel=None):
        """An AgentClient; recipient=None: one that knows the daemon by address only."""
        client = omd_envelope.AgentClient(self.target, cluster="test", nodename=nodename,
                                          secret=secret, trusted_nodenames=trusted,
                                          recipient=recipient, channel=channel)
        self.clients.append(client)
        return client

    def raw_call(self, method: str, envelope):
        """Sends an envelope we built ourselves; returns the reply Envelope."""
        rpc = self.channel.unary_unary(
            f"/omd.v1.Agent/{method}",
            request_serializer=self.pb2.Envelope.SerializeToString,
            response_deserializer=self.pb2.Envelope.FromString)
        return rpc(envelope, timeout=10)

    def raw_bytes(self, method: str, data: bytes):
        """Sends arbitrary bytes as the request message of an Agent method."""
        rpc = self.channel.unary_unary(f"/omd.v1.Agent/{method}",
                                       request_serializer=lambda b: b,
                                       response_deserializer=lambda b: b)
        return rpc(data, timeout=10)

    def entries(self):
        """BlacklistStatus as node1 (a fresh client, so its own calls reset nothing
        but node1's count): [(nodename, address, invalid_messages, blocked)]."""
        observer = self.client(nodename="node1")
        return [(e.nodename, e.address, e.invalid_messages, e.blocked)
                for e in observer.call("BlacklistStatus").entries]

    def open_reply(self, method: str, sent, envelope, own_nodename="node2"):
        return omd_envelope.open_envelope(
            envelope, secrets={1: SECRET}, method=f"/omd.v1.Agent/{method}",
            direction="reply", cluster="test", own_nodename=own_nodename,
            trusted_nodenames=MEMBERS, in_reply_to=sent.request_id,
            expected_salt=sent.envelope.salt, expected_key_generation=1)

    def seal_request(self, method: str, nodename="node2", recipient="node1", **kwargs):
        return omd_envelope.seal(secret=SECRET, key_generation=1, cluster="test",
                                 nodename=nodename, recipient=recipient,
                                 method=f"/omd.v1.Agent/{method}",
                                 direction="request", **kwargs)

    # ------------------------------------------------------------------- tests

    def test_blacklist_status_reply_is_sealed_by_the_daemon(self):
        reply, opened = self.client().call_opened("BlacklistStatus")
        self.assertIsInstance(reply, self.pb2.BlacklistStatusReply)
        self.assertEqual([], list(reply.entries))
        self.assertEqual("node1", opened.nodename)

        # The same by hand, checking every binding of section 5.
        sent = self.seal_request("BlacklistStatus")
        envelope = self.raw_call("BlacklistStatus", sent.envelope)
        self.assertEqual(("test", "node1"), (envelope.cluster, envelope.nodename))
        self.assertEqual(sent.envelope.salt, envelope.salt)
        self.assertEqual(1, envelope.key_generation)
        self.assertNotEqual(sent.envelope.nonce, envelope.nonce)
        opened = omd_envelope.open_envelope(
            envelope, secrets={1: SECRET}, method="/omd.v1.Agent/BlacklistStatus",
            direction="reply", cluster="test", own_nodename="node2",
            trusted_nodenames=MEMBERS, in_reply_to=sent.request_id)
        self.assertEqual(sent.request_id, opened.in_reply_to)
        self.assertNotEqual(sent.request_id, opened.request_id)
        self.assertEqual(16, len(opened.request_id))
        self.assertEqual([], list(
            self.pb2.BlacklistStatusReply.FromString(opened.payload).entries))
        with self.assertRaises(EnvelopeError):  # sealed as a reply, not a request
            omd_envelope.open_envelope(
                envelope, secrets={1: SECRET}, method="/omd.v1.Agent/BlacklistStatus",
                direction="request", cluster="test")

    def test_request_for_another_node_is_refused(self):
        sent = self.seal_request("BlacklistStatus", recipient="node3")
        with self.assertRaises(grpc.RpcError) as raised:
            self.raw_call("BlacklistStatus", sent.envelope)
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED, raised.exception.code())
        self.assertEqual("envelope for another node", raised.exception.details())

    def test_wrong_secret_blacklists_the_sender_until_cleared(self):
        bad = self.client(secret=WRONG_SECRET)
        for i in range(5):
            with self.subTest(attempt=i + 1):
                self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                                 _code(lambda: bad.call("BlacklistStatus")))
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                         _code(lambda: bad.call("BlacklistStatus")))
        # Same claimed name, same address, right secret: still blacklisted.
        good = self.client()
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                         _code(lambda: good.call("BlacklistStatus")))

        node1 = self.client(nodename="node1")
        entries = node1.call("BlacklistStatus").entries
        self.assertEqual([("node2", "127.0.0.1", 5, True)],
                         [(e.nodename, e.address, e.invalid_messages, e.blocked)
                          for e in entries])
        self.assertEqual(1, node1.call("BlacklistClear").cleared)
        self.assertEqual([], list(node1.call("BlacklistStatus").entries))
        self.assertEqual([], list(good.call("BlacklistStatus").entries))

    def test_accepted_request_resets_the_count(self):
        bad, good = self.client(secret=WRONG_SECRET), self.client()
        observer = self.client(nodename="node1")

        def counts():
            return [(e.nodename, e.invalid_messages, e.blocked)
                    for e in observer.call("BlacklistStatus").entries]

        for _ in range(4):
            self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                             _code(lambda: bad.call("BlacklistStatus")))
        self.assertEqual([("node2", 4, False)], counts())
        good.call("EmptyPacket")  # accepted: node2's count goes back to zero
        self.assertEqual([], [c for c in counts() if c[1]])
        for _ in range(4):
            self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                             _code(lambda: bad.call("BlacklistStatus")))
        self.assertEqual([("node2", 4, False)], counts())  # not blacklisted at 8

    def test_empty_packet(self):
        reply, opened = self.client().call_opened("EmptyPacket")
        self.assertIsInstance(reply, self.pb2.EmptyPacketReply)
        self.assertEqual(b"", opened.payload)

    def test_service_action_is_gated_then_validated(self):
        # An empty request: no service name, refused after the gate.
        self.assertEqual(grpc.StatusCode.INVALID_ARGUMENT,
                         _code(lambda: self.client().call("ServiceAction")))
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                         _code(lambda: self.client(secret=WRONG_SECRET).call("ServiceAction")))

    def test_node_monitor_freeze_and_thaw_as_section_7_2_says(self):
        client = self.client()
        freeze = self.pb2.SetNodeMonitorRequest(local_expect="frozen")
        self.assertEqual([], list(client.call("SetNodeMonitor", freeze).info))
        self.assertEqual(["the node is already frozen"],
                         list(client.call("SetNodeMonitor", freeze).info))
        self.assertTrue(client.call("DaemonStatus").node_monitor.frozen)
        self.assertEqual(grpc.StatusCode.INVALID_ARGUMENT, _code(lambda: client.call(
            "SetNodeMonitor", self.pb2.SetNodeMonitorRequest(local_expect="started"))))
        client.call("SetNodeMonitor", self.pb2.SetNodeMonitorRequest(status="thawing"))
        self.assertFalse(client.call("DaemonStatus").node_monitor.frozen)

    def test_service_monitor_of_an_unknown_service_is_not_found(self):
        client = self.client()
        self.assertEqual(grpc.StatusCode.NOT_FOUND, _code(lambda: client.call(
            "GetServiceMonitor", self.pb2.GetServiceMonitorRequest(svcname="nosuch"))))
        self.assertEqual(grpc.StatusCode.INVALID_ARGUMENT, _code(lambda: client.call(
            "SetServiceMonitor",
            self.pb2.SetServiceMonitorRequest(svcname="../etc/node", local_expect="started"))))
        self.assertEqual(grpc.StatusCode.NOT_FOUND, _code(lambda: client.call(
            "ListActions", self.pb2.ListActionsRequest(session_id="00"))))

    def test_reply_from_an_untrusted_node_is_refused(self):
        with self.assertRaises(EnvelopeError):
            self.client(trusted=["node2"]).call("BlacklistStatus")

    def test_replayed_request_is_refused_and_not_counted(self):
        sent = self.seal_request("BlacklistStatus")
        self.raw_call("BlacklistStatus", sent.envelope)
        for _ in range(6):  # more than 5: were replays counted, node2 would be blocked
            self.assertEqual(
                (grpc.StatusCode.UNAUTHENTICATED, "replayed request"),
                _status(lambda: self.raw_call("BlacklistStatus", sent.envelope)))
        self.assertEqual([], self.entries())
        self.client().call("EmptyPacket")  # node2 is not blacklisted

    def test_request_id_is_accepted_once_whatever_its_sent_at(self):
        # Section 4.4: a new, authentic envelope (fresh nonce, sent_at 1.5 s later)
        # that reuses an admitted request_id is a replay, and is not counted.
        first = self.seal_request("BlacklistStatus")
        self.raw_call("BlacklistStatus", first.envelope)
        for i in range(6):
            with self.subTest(attempt=i + 1):
                again = self.seal_request(
                    "BlacklistStatus", request_id=first.request_id,
                    sent_at_unix_ms=first.sent_at_unix_ms + 1500 + i)
                self.assertNotEqual(first.envelope.nonce, again.envelope.nonce)
                self.assertEqual(
                    (grpc.StatusCode.UNAUTHENTICATED, "replayed request"),
                    _status(lambda: self.raw_call("BlacklistStatus", again.envelope)))
        # Nor on another method: the id was admitted, whatever it came with.
        other = self.seal_request("EmptyPacket", request_id=first.request_id)
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                         _code(lambda: self.raw_call("EmptyPacket", other.envelope)))
        self.assertEqual([], self.entries())
        self.client().call("EmptyPacket")

    def test_request_for_another_method_is_refused(self):
        sent = self.seal_request("BlacklistStatus")
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                         _code(lambda: self.raw_call("BlacklistClear", sent.envelope)))

    def test_send_time_outside_the_window_is_refused(self):
        now = omd_envelope.now_unix_ms()
        for offset in (-61_000, 61_000):
            with self.subTest(offset_ms=offset):
                sent = self.seal_request("BlacklistStatus", sent_at_unix_ms=now + offset)
                self.assertEqual(
                    grpc.StatusCode.UNAUTHENTICATED,
                    _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))

    def test_authentic_but_stale_envelope_is_refused_and_not_counted(self):
        # Section 4, step 7: an authentic envelope sent 5 minutes ago (a capture
        # replayed late) is refused, and must not get its real sender blacklisted.
        sent_at = omd_envelope.now_unix_ms() - 5 * 60_000
        for i in range(6):
            with self.subTest(attempt=i + 1):
                sent = self.seal_request("BlacklistStatus", sent_at_unix_ms=sent_at + i)
                self.assertEqual(
                    grpc.StatusCode.UNAUTHENTICATED,
                    _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))
        self.assertEqual([], self.entries())
        self.client().call("EmptyPacket")  # node2 is not blacklisted

    def test_non_member_is_refused(self):
        sent = self.seal_request("BlacklistStatus", nodename="node3")
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                         _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))

    def test_non_members_are_counted_per_source_alone(self):
        # Section 4: any name outside cluster.nodes (or not a valid name at all)
        # is counted as the source alone: one entry, nodename empty.
        for i, name in enumerate(["node3", "stranger", "..bad", "node4"]):
            sent = self.seal_request("BlacklistStatus", nodename=name)
            self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                             _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))
            self.assertEqual([("", "127.0.0.1", i + 1, False)], self.entries())
        sent = self.seal_request("BlacklistStatus", nodename="node5")
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                         _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))
        self.assertEqual([("", "127.0.0.1", 5, True)], self.entries())
        # Members are senders of their own: node2 at this source is not blocked.
        self.client().call("EmptyPacket")

    def test_payload_of_the_wrong_type_is_invalid_argument(self):
        sent = self.seal_request("BlacklistStatus", payload=b"\xff\xff")
        self.assertEqual(grpc.StatusCode.INVALID_ARGUMENT,
                         _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))

    def test_oversized_request_is_resource_exhausted(self):
        sent = self.seal_request("EmptyPacket", payload=b"\0" * (1 << 20))
        self.assertEqual(grpc.StatusCode.RESOURCE_EXHAUSTED,
                         _code(lambda: self.raw_call("EmptyPacket", sent.envelope)))

    # ---------------------------------------------------- Identify and binding

    def test_identify_with_an_empty_recipient_names_the_node(self):
        for nodename in ("node2", "joiner"):  # a member, and a non-member
            with self.subTest(sender=nodename):
                sent = self.seal_request("Identify", nodename=nodename, recipient="")
                envelope = self.raw_call("Identify", sent.envelope)
                self.assertEqual(("test", "node1", nodename),
                                 (envelope.cluster, envelope.nodename, envelope.recipient))
                opened = self.open_reply("Identify", sent, envelope,
                                         own_nodename=nodename)
                self.assertEqual("node1", opened.nodename)
                self.assertEqual(b"", opened.payload)
                self.pb2.IdentifyReply.FromString(opened.payload)
        # Naming the recipient is allowed too; naming another node is not.
        sent = self.seal_request("Identify", recipient="node1")
        self.assertEqual("node1", self.raw_call("Identify", sent.envelope).nodename)
        sent = self.seal_request("Identify", recipient="node3")
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                         _code(lambda: self.raw_call("Identify", sent.envelope)))
        # The client's own call.
        client = self.client(recipient=None)
        self.assertIsNone(client.node)
        self.assertEqual("node1", client.identify())
        self.assertEqual("node1", client.node)

    def test_client_without_recipient_identifies_then_binds(self):
        recorder = _RecordingInterceptor()
        channel = grpc.intercept_channel(grpc.insecure_channel(self.target), recorder)
        self.addCleanup(channel.close)
        client = self.client(recipient=None, channel=channel)
        self.assertIsNone(client.node)
        self.assertEqual("", client.recipient)

        reply, opened = client.call_opened("BlacklistStatus")
        self.assertIsInstance(reply, self.pb2.BlacklistStatusReply)
        self.assertEqual("node1", opened.nodename)
        self.assertEqual("node1", client.node)
        self.assertEqual([("Identify", ""), ("BlacklistStatus", "node1")],
                         recorder.recipients())

        client.call("EmptyPacket")
        client.call("Identify")  # once bound, Identify names the node too
        self.assertEqual([("Identify", ""), ("BlacklistStatus", "node1"),
                          ("EmptyPacket", "node1"), ("Identify", "node1")],
                         recorder.recipients())
        self.assertEqual("node1", client.node)

    def test_client_binds_on_an_identify_it_sends_itself(self):
        recorder = _RecordingInterceptor()
        channel = grpc.intercept_channel(grpc.insecure_channel(self.target), recorder)
        self.addCleanup(channel.close)
        client = self.client(recipient=None, channel=channel)
        _, opened = client.call_opened("Identify")
        self.assertEqual("node1", opened.nodename)
        self.assertEqual("node1", client.node)
        client.call("BlacklistStatus")
        self.assertEqual([("Identify", ""), ("BlacklistStatus", "node1")],
                         recorder.recipients())

    def test_identify_answered_by_an_untrusted_node_binds_nothing(self):
        client = self.client(recipient=None, trusted=["node2"])
        with self.assertRaises(EnvelopeError):
            client.call("BlacklistStatus")
        self.assertIsNone(client.node)

    def test_request_without_recipient_is_refused_and_counted(self):
        # Section 4, step 4: only Identify may leave the recipient empty.
        for i, method in enumerate(["BlacklistStatus", "EmptyPacket", "Join"]):
            with self.subTest(method=method):
                sent = self.seal_request(method, recipient="")
                self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                                 _code(lambda: self.raw_call(method, sent.envelope)))
                self.assertEqual([("node2", "127.0.0.1", i + 1, False)], self.entries())
        # The client refuses to seal one.
        with self.assertRaisesRegex(ValueError, "needs a recipient"):
            omd_envelope.check_recipient("BlacklistStatus", "")

    # ---------------------------------------------------------------- joiners

    def test_joiner_identifies_and_learns_the_cluster(self):
        # Section 6.3: no cluster, generation 0; the reply names the cluster.
        joiner = omd_envelope.AgentClient.joiner(self.target, nodename="node3",
                                                 secret=SECRET)
        self.clients.append(joiner)
        self.assertEqual("", joiner.cluster)
        self.assertEqual("node1", joiner.identify())
        self.assertEqual("test", joiner.cluster)

        # By hand: the reply keeps the request's salt and generation 0.
        sent = omd_envelope.seal(secret=SECRET, key_generation=0, cluster="",
                                 nodename="node3", recipient="",
                                 method="/omd.v1.Agent/Identify", direction="request")
        envelope = self.raw_call("Identify", sent.envelope)
        self.assertEqual(("test", "node1", "node3", 0, sent.envelope.salt),
                         (envelope.cluster, envelope.nodename, envelope.recipient,
                          envelope.key_generation, envelope.salt))
        omd_envelope.open_envelope(
            envelope, secrets={0: SECRET}, method="/omd.v1.Agent/Identify",
            direction="reply", cluster="", own_nodename="node3",
            trust_any_nodename=True, in_reply_to=sent.request_id,
            expected_salt=sent.envelope.salt, expected_key_generation=0)
        self.assertEqual([], self.entries())

    def test_joiner_joins_and_gets_the_cluster_sections(self):
        # Section 7.1: node3, a joiner, asks node1 to add it; node2 (a member
        # without a daemon here) is skipped, and the reply says so.
        joiner = omd_envelope.AgentClient.joiner(self.target, nodename="node3",
                                                 secret=SECRET, timeout=60)
        self.clients.append(joiner)
        reply = joiner.call("Join", self.pb2.JoinRequest(address="127.0.0.3:1214"))
        self.assertEqual("node1", joiner.node)
        self.assertEqual("test", joiner.cluster)
        cluster = dict(reply.cluster.values)
        self.assertEqual("test", cluster["name"])
        self.assertEqual(SECRET, cluster["secret"])
        self.assertEqual("node1 node2 node3", cluster["nodes"])
        self.assertEqual("127.0.0.3:1214", cluster["addr@node3"])
        self.assertEqual("1", cluster["nodes_version"])
        self.assertEqual([], list(reply.sections))
        self.assertEqual(1, len(reply.info))
        self.assertTrue(reply.info[0].startswith("node2: skipped ("), reply.info)
        # node3 is a member now: its own envelopes get in.
        node3 = self.client(nodename="node3", trusted=["node1"])
        self.assertEqual([], list(node3.call("BlacklistStatus").entries))
        with open(os.path.join(self.root, "etc", "node.conf")) as f:
            self.assertIn("nodes = node1 node2 node3\n", f.read())

    def test_joiner_envelopes_are_refused_elsewhere_and_counted(self):
        def joiner_request(method, nodename, secret=SECRET):
            return omd_envelope.seal(secret=secret, key_generation=0, cluster="",
                                     nodename=nodename, recipient="node1",
                                     method=f"/omd.v1.Agent/{method}",
                                     direction="request").envelope

        # A member's name on a member's method: its cluster is missing.
        self.assertEqual(
            (grpc.StatusCode.UNAUTHENTICATED, "envelope of another cluster"),
            _status(lambda: self.raw_call("BlacklistStatus",
                                          joiner_request("BlacklistStatus", "node2"))))
        self.assertEqual([("node2", "127.0.0.1", 1, False)], self.entries())
        # A non-member on a member's method: not a member.
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED, _code(
            lambda: self.raw_call("BlacklistStatus",
                                  joiner_request("BlacklistStatus", "node3"))))
        # A joiner with the wrong secret, where joiners are welcome.
        self.assertEqual(
            (grpc.StatusCode.UNAUTHENTICATED, "message authentication failed"),
            _status(lambda: self.raw_call(
                "Identify", joiner_request("Identify", "node3", WRONG_SECRET))))
        self.assertEqual([("", "127.0.0.1", 2, False), ("node2", "127.0.0.1", 1, False)],
                         self.entries())
        # An empty cluster with a real generation is no joiner's envelope.
        odd = omd_envelope.seal(secret=SECRET, key_generation=1, cluster="",
                                nodename="node3", recipient="",
                                method="/omd.v1.Agent/Identify", direction="request")
        self.assertEqual(
            (grpc.StatusCode.UNAUTHENTICATED,
             "a joiner's envelope must have key generation 0"),
            _status(lambda: self.raw_call("Identify", odd.envelope)))

    # ------------------------------------------------ bytes that are no envelope

    def test_bytes_that_are_not_an_envelope_are_counted_against_the_source(self):
        garbage = [
            b"\xff\xff\xff",                # a truncated varint, as a tag
            b"\x0a\x05node1\x12",           # a field cut short
            b"\x12\x02\xc3\x28",            # nodename is not valid UTF-8
            b"\x07",                        # field number 0
            b"\x0a\x7f",                    # a length past the end
        ]
        for i, data in enumerate(garbage):
            with self.subTest(attempt=i + 1):
                self.assertEqual(grpc.StatusCode.INVALID_ARGUMENT,
                                 _code(lambda: self.raw_bytes("BlacklistStatus", data)))
                self.assertEqual([("", "127.0.0.1", i + 1, i == 4)], self.entries())
        # The source's non-member sender is blacklisted: a non-member's Identify
        # (open to non-members) now gets PERMISSION_DENIED, on the same connection
        # (this host's source is never refused at the connection, section 4.2).
        identify = self.seal_request("Identify", nodename="joiner", recipient="")
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                         _code(lambda: self.raw_call("Identify", identify.envelope)))
        # A member at the same source is another sender.
        self.client().call("EmptyPacket")
        self.assertEqual("node1", self.client(recipient=None).identify())
        # Until cleared.
        self.assertEqual(1, self.client(nodename="node1").call("BlacklistClear").cleared)
        identify = self.seal_request("Identify", nodename="joiner", recipient="")
        self.assertEqual("node1", self.raw_call("Identify", identify.envelope).nodename)
        self.assertEqual([], self.entries())

    def test_garbage_on_an_unknown_method_is_unimplemented(self):
        # Section 1: a path the service does not have never reaches the gate.
        for _ in range(6):
            self.assertEqual(grpc.StatusCode.UNIMPLEMENTED,
                             _code(lambda: self.raw_bytes("NoSuchMethod", b"\xff")))
        self.assertEqual([], self.entries())

    # --------------------------------------------------------------- restarts

    def test_restart_does_not_reopen_the_window(self):
        self._restart_keeps_admitted_ids(signal.SIGTERM)

    def test_crash_does_not_reopen_the_window(self):
        self._restart_keeps_admitted_ids(signal.SIGKILL)

    def _restart_keeps_admitted_ids(self, sig):
        before = self.seal_request("BlacklistStatus")
        self.raw_call("BlacklistStatus", before.envelope)
        self.assertEqual((grpc.StatusCode.UNAUTHENTICATED, "replayed request"),
                         _status(lambda: self.raw_call("BlacklistStatus", before.envelope)))
        self.assertTrue(os.path.exists(os.path.join(self.root, "var", "replay.journal")))

        self._close_clients()
        self._stop_daemon(sig)
        self._start_daemon()
        # Still within the clock window: only the reloaded journal refuses it.
        self.assertLess(omd_envelope.now_unix_ms() - before.sent_at_unix_ms,
                        omd_envelope.DEFAULT_CLOCK_SKEW_MS)
        self.assertEqual((grpc.StatusCode.UNAUTHENTICATED, "replayed request"),
                         _status(lambda: self.raw_call("BlacklistStatus", before.envelope)))
        # The same id under a new sent_at, too.
        again = self.seal_request("BlacklistStatus", request_id=before.request_id,
                                  sent_at_unix_ms=before.sent_at_unix_ms + 1500)
        self.assertEqual((grpc.StatusCode.UNAUTHENTICATED, "replayed request"),
                         _status(lambda: self.raw_call("BlacklistStatus", again.envelope)))
        # A fresh request is admitted, and the refusals were not counted.
        self.assertEqual([], self.entries())

    def test_client_checks_the_request_type(self):
        with self.assertRaises(TypeError):
            self.client().call("BlacklistStatus", self.pb2.BlacklistClearRequest())


class AccessOptionTest(unittest.TestCase):
    """(omd.v1.access), read from the descriptor (section 7's table)."""

    def test_access_of_each_method(self):
        pb2 = omd_envelope.omd_pb2()
        for method in pb2.DESCRIPTOR.services_by_name["Agent"].methods:
            info = omd_envelope.method_info(method.name)
            with self.subTest(method=method.name):
                self.assertEqual(method.name in ("Identify", "Join"), info.non_members)
                self.assertEqual(method.name == "Identify", info.any_recipient)
        self.assertEqual(omd_envelope.method_info("Identify"),
                         omd_envelope.method_info("/omd.v1.Agent/Identify"))

    def test_check_recipient(self):
        omd_envelope.check_recipient("Identify", "")
        omd_envelope.check_recipient("BlacklistStatus", "node1")
        for method in ("BlacklistStatus", "Join", "ServiceLogs"):
            with self.subTest(method=method):
                with self.assertRaisesRegex(ValueError, "needs a recipient"):
                    omd_envelope.check_recipient(method, "")

    def test_open_envelope_enforces_access_as_section_4_reads(self):
        # Steps 3 and 4 as PROTOCOL.md reads: a valid name always, membership unless
        # non_members, a recipient unless any_recipient. (The daemon was seen to
        # admit invalid names such as "..x" on Identify: step 3 is ambiguous there.)
        def request(method, nodename="node2", recipient="node1"):
            return omd_envelope.seal(
                secret=SECRET, key_generation=1, cluster="test", nodename=nodename,
                recipient=recipient, method=f"/omd.v1.Agent/{method}",
                direction="request").envelope

        def open_(method, envelope):
            return omd_envelope.open_envelope(
                envelope, secrets={1: SECRET}, method=f"/omd.v1.Agent/{method}",
                direction="request", cluster="test", own_nodename="node1",
                trusted_nodenames=MEMBERS, enforce_access=True)

        open_("BlacklistStatus", request("BlacklistStatus"))
        open_("Identify", request("Identify", recipient=""))
        open_("Identify", request("Identify", nodename="joiner", recipient=""))
        open_("Join", request("Join", nodename="joiner"))
        for method, envelope in [
                ("BlacklistStatus", request("BlacklistStatus", recipient="")),
                ("Join", request("Join", nodename="joiner", recipient="")),
                ("BlacklistStatus", request("BlacklistStatus", nodename="joiner")),
                ("Identify", request("Identify", nodename="..x", recipient="")),
                ("BlacklistStatus", request("BlacklistStatus", recipient="node3"))]:
            with self.subTest(method=method, nodename=envelope.nodename,
                              recipient=envelope.recipient):
                with self.assertRaises(EnvelopeError):
                    open_(method, envelope)


class _StandInDaemon:
    """A gRPC server that answers every omd.v1.Agent method as `self.answer_as`,
    opening each request and sealing the reply as section 5 says."""

    def __init__(self):
        self.pb2 = omd_envelope.omd_pb2()
        self.answer_as = "node1"
        self._server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers([self])
        port = self._server.add_insecure_port("127.0.0.1:0")
        self.target = f"127.0.0.1:{port}"
        self._server.start()

    def stop(self):
        self._server.stop(grace=None)

    def service(self, handler_call_details):  # grpc.GenericRpcHandler
        method = handler_call_details.method

        def answer(envelope, context):
            opened = omd_envelope.open_envelope(
                envelope, secrets={1: SECRET}, method=method, direction="request",
                cluster="test")
            info = omd_envelope.method_info(method)
            return omd_envelope.seal(
                secret=SECRET, key_generation=1, cluster="test",
                nodename=self.answer_as, recipient=opened.nodename, method=method,
                direction="reply", payload=info.reply_type().SerializeToString(),
                in_reply_to=opened.request_id, salt=envelope.salt).envelope

        return grpc.unary_unary_rpc_method_handler(
            answer, request_deserializer=self.pb2.Envelope.FromString,
            response_serializer=self.pb2.Envelope.SerializeToString)


class BindingTest(unittest.TestCase):
    """Section 5, check 4: a reply must come from the node the request was for."""

    def setUp(self):
        self.daemon = _StandInDaemon()
        self.addCleanup(self.daemon.stop)

    def client(self, recipient=None, trusted=MEMBERS):
        client = omd_envelope.AgentClient(
            self.daemon.target, cluster="test", nodename="node2", secret=SECRET,
            trusted_nodenames=trusted, recipient=recipient)
        self.addCleanup(client.close)
        return client

    def test_bound_client_refuses_a_reply_from_another_node(self):
        client = self.client()
        client.call("BlacklistStatus")
        self.assertEqual("node1", client.node)
        # Another member now answers at that address: trusted, but not the one bound.
        self.daemon.answer_as = "node2"
        with self.assertRaisesRegex(EnvelopeError, "request was for 'node1'"):
            client.call("BlacklistStatus")
        with self.assertRaises(EnvelopeError):
            client.identify()
        self.assertEqual("node1", client.node)

    def test_client_with_a_recipient_refuses_a_reply_from_another_node(self):
        self.daemon.answer_as = "node2"
        with self.assertRaisesRegex(EnvelopeError, "request was for 'node1'"):
            self.client(recipient="node1").call("EmptyPacket")

    def test_identify_accepts_any_trusted_node_only(self):
        self.daemon.answer_as = "node2"
        self.assertEqual("node2", self.client().identify())
        self.daemon.answer_as = "node3"
        client = self.client()
        with self.assertRaisesRegex(EnvelopeError, "untrusted"):
            client.call("EmptyPacket")
        self.assertIsNone(client.node)

    def test_concurrent_first_calls_bind_to_one_node(self):
        client = self.client()
        errors = []

        def call():
            try:
                client.call("EmptyPacket")
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual([], errors)
        self.assertEqual("node1", client.node)


if __name__ == "__main__":
    unittest.main()
