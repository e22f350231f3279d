"""The Python client (omd_envelope.AgentClient) against the real daemon.

Each test starts `server/omd` on a fresh root with a node.conf written here (node1 of
cluster `test`, members node1 and node2, listening on 127.0.0.1 with an ephemeral
port), talks to it only as PROTOCOL.md describes, and stops it with SIGTERM.
"""

import os
import signal
import subprocess
import tempfile
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
    """$OMD_BINARY, else server/omd in the Bazel runfiles, else in bazel-bin."""
    if os.environ.get("OMD_BINARY"):
        return os.environ["OMD_BINARY"]
    for base in (os.environ.get("TEST_SRCDIR"), os.environ.get("RUNFILES_DIR")):
        if base and os.path.exists(os.path.join(base, "omd", "server", "omd")):
            return os.path.join(base, "omd", "server", "omd")
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, os.pardir, os.pardir, "bazel-bin", "server", "omd")


def _code(call) -> grpc.StatusCode:
    """Runs call() and returns the gRPC status code it failed with."""
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    raise AssertionError("the call succeeded")


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
        self.daemon = subprocess.Popen(
            [omd_binary(), "--root", self.root, "--dequeue_command", "/bin/true"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.addCleanup(self._kill_if_running)
        self.target = self._wait_for_address()
        self.channel = grpc.insecure_channel(self.target)
        self._wait_until_serving()
        self.clients = []

    def tearDown(self):
        for client in self.clients:
            client.close()
        self.channel.close()
        self.daemon.send_signal(signal.SIGTERM)
        try:
            code = self.daemon.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.fail(f"omd did not stop within {STOP_TIMEOUT_S} s of SIGTERM")
        self.assertEqual(0, code, f"omd exit status; its output:\n{self._output()}")

    def _kill_if_running(self):
        if self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        self.log.close()

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

    def client(self, nodename="node2", secret=SECRET, trusted=MEMBERS):
        client = omd_envelope.AgentClient(self.target, cluster="test", nodename=nodename,
                                          secret=secret, trusted_nodenames=trusted,
                                          recipient="node1")
        self.clients.append(client)
        return client

    def raw_call(self, method: str, envelope):
        """Sends an envelope we built ourselves; returns the reply Envelope."""
        rpc = self.channel.unary_unary(
            f"/omd.v1.Agent/{method}",
            request_serializer=self.pb2.Envelope.SerializeToString,
            response_deserializer=self.pb2.Envelope.FromString)
        return rpc(envelope, timeout=10)

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

    def test_unimplemented_method_is_still_gated(self):
        self.assertEqual(grpc.StatusCode.UNIMPLEMENTED,
                         _code(lambda: self.client().call("Leave")))
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                         _code(lambda: self.client(secret=WRONG_SECRET).call("Leave")))

    def test_reply_from_an_untrusted_node_is_refused(self):
        with self.assertRaises(EnvelopeError):
            self.client(trusted=["node2"]).call("BlacklistStatus")

    def test_replayed_request_is_refused(self):
        sent = self.seal_request("BlacklistStatus")
        self.raw_call("BlacklistStatus", sent.envelope)
        self.assertEqual(grpc.StatusCode.UNAUTHENTICATED,
                         _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))

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

    def test_non_member_is_refused(self):
        sent = self.seal_request("BlacklistStatus", nodename="node3")
        self.assertEqual(grpc.StatusCode.PERMISSION_DENIED,
                         _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))

    def test_payload_of_the_wrong_type_is_invalid_argument(self):
        sent = self.seal_request("BlacklistStatus", payload=b"\xff\xff")
        self.assertEqual(grpc.StatusCode.INVALID_ARGUMENT,
                         _code(lambda: self.raw_call("BlacklistStatus", sent.envelope)))

    def test_oversized_request_is_resource_exhausted(self):
        sent = self.seal_request("EmptyPacket", payload=b"\0" * (1 << 20))
        self.assertEqual(grpc.StatusCode.RESOURCE_EXHAUSTED,
                         _code(lambda: self.raw_call("EmptyPacket", sent.envelope)))

    def test_client_checks_the_request_type(self):
        with self.assertRaises(TypeError):
            self.client().call("BlacklistStatus", self.pb2.BlacklistClearRequest())


if __name__ == "__main__":
    unittest.main()
