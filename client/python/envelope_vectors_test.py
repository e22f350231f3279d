"""Checks omd_envelope.py against crypto/testdata/envelope_vectors.txt.

Each vector is regenerated from its inputs (every derived field must match the file),
opened back to its payload, and tampered with (every byte of the ciphertext, the
method, the direction and each clear field) to show that opening then fails.
"""

import configparser
import os
import unittest

import make_envelope_vectors
import omd_envelope
from omd_envelope import EnvelopeError

HERE = os.path.dirname(os.path.abspath(__file__))
INT_KEYS = {"key_generation", "sent_at_unix_ms", "sequence"}


def vectors_file() -> str:
    if os.environ.get("OMD_VECTORS"):
        return os.environ["OMD_VECTORS"]
    return os.path.join(HERE, os.pardir, os.pardir, "crypto", "testdata",
                        "envelope_vectors.txt")


def load_vectors():
    """{name: {key: str | int | bytes}} as section 9 describes the file."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",),
                                       comment_prefixes=("#",),
                                       inline_comment_prefixes=None)
    with open(vectors_file(), encoding="utf-8") as f:
        parser.read_file(f)
    vectors = {}
    for name in parser.sections():
        fields = {}
        for key, value in parser.items(name):
            if key in INT_KEYS:
                fields[key] = int(value)
            elif key in make_envelope_vectors.HEX_KEYS:
                fields[key] = bytes.fromhex(value)
            else:
                fields[key] = value
        vectors[name] = fields
    return vectors


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class EnvelopeVectorsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.pb2 = omd_envelope.omd_pb2()
        cls.vectors = load_vectors()

    def open(self, v, envelope=None, **overrides):
        """Opens vector v's envelope as its receiver would, at its send time."""
        args = dict(
            secrets={v["key_generation"]: v["secret"]}, method=v["method"],
            direction=v["direction"], cluster=v["cluster"],
            now_ms=v["sent_at_unix_ms"])
        if v["direction"] == "reply":
            args.update(trusted_nodenames=[v["nodename"]], in_reply_to=v["in_reply_to"],
                        own_nodename=v["recipient"])
        if v["key_generation"] == omd_envelope.JOINER_KEY_GENERATION:
            # Section 6.3: a joiner's request is opened by a member of a cluster it
            # does not name, whose current secret it has; the reply by the joiner,
            # whose own cluster is empty.
            if v["direction"] == "request":
                args.update(cluster="the-members-cluster", secrets={1: v["secret"]},
                            accept_joiners=True)
            else:
                args.update(cluster="")
        args.update(overrides)
        return omd_envelope.open_envelope(
            v["envelope"] if envelope is None else envelope, **args)

    def test_file_has_the_expected_vectors(self):
        self.assertTrue({"request", "reply", "rotated", "joiner_request",
                         "joiner_reply", "stream_reply"} <= set(self.vectors))
        for name, v in self.vectors.items():
            with self.subTest(vector=name):
                self.assertEqual(
                    set(make_envelope_vectors.INPUT_KEYS + make_envelope_vectors.DERIVED_KEYS),
                    set(v))

    def test_derived_fields_are_reproduced(self):
        for name, v in self.vectors.items():
            inputs = {k: v[k] for k in make_envelope_vectors.INPUT_KEYS}
            derived = make_envelope_vectors.derive(inputs)
            for key in make_envelope_vectors.DERIVED_KEYS:
                with self.subTest(vector=name, field=key):
                    self.assertEqual(v[key].hex(), derived[key].hex())

    def test_generator_reproduces_the_file(self):
        with open(vectors_file(), encoding="utf-8") as f:
            self.assertEqual(f.read(), make_envelope_vectors.render())

    def test_request_aad_is_the_protocol_example(self):
        # PROTOCOL.md section 3.3, verbatim.
        example = ("6f6d642e76312e656e76656c6f7065" "01"
                   "0000001d" "2f6f6d642e76312e4167656e742f426c61636b6c697374537461747573"
                   "00000004" "74657374"
                   "00000005" "6e6f646531"
                   "00000005" "6e6f646532"
                   "00000010" "000102030405060708090a0b0c0d0e0f"
                   "00000001")
        self.assertEqual(example, self.vectors["request"]["aad"].hex())

    def test_plaintext_follows_the_table_of_section_3_4(self):
        for name, v in self.vectors.items():
            with self.subTest(vector=name):
                expected = b"\x08" + _varint(v["sent_at_unix_ms"])
                expected += b"\x12\x10" + v["request_id"]
                if v["in_reply_to"]:
                    expected += b"\x1a\x10" + v["in_reply_to"]
                if v["payload"]:
                    expected += b"\x22" + _varint(len(v["payload"])) + v["payload"]
                if v["sequence"]:
                    expected += b"\x28" + _varint(v["sequence"])
                self.assertEqual(expected.hex(), v["plaintext"].hex())

    def test_envelope_carries_the_clear_fields(self):
        for name, v in self.vectors.items():
            with self.subTest(vector=name):
                envelope = self.pb2.Envelope.FromString(v["envelope"])
                self.assertEqual(v["cluster"], envelope.cluster)
                self.assertEqual(v["nodename"], envelope.nodename)
                self.assertEqual(v["salt"], envelope.salt)
                self.assertEqual(v["key_generation"], envelope.key_generation)
                self.assertEqual(v["nonce"], envelope.nonce)
                self.assertEqual(v["ciphertext"], envelope.ciphertext)

    def test_envelope_opens_to_its_payload(self):
        for name, v in self.vectors.items():
            with self.subTest(vector=name):
                opened = self.open(v)
                self.assertEqual(v["payload"], opened.payload)
                self.assertEqual(v["request_id"], opened.request_id)
                self.assertEqual(v["in_reply_to"], opened.in_reply_to)
                self.assertEqual(v["sent_at_unix_ms"], opened.sent_at_unix_ms)
                self.assertEqual(v["nodename"], opened.nodename)
                self.assertEqual(v["sequence"], opened.sequence)

    def test_payload_is_the_type_the_method_carries(self):
        for name, v in self.vectors.items():
            with self.subTest(vector=name):
                info = omd_envelope.method_info(v["method"].rsplit("/", 1)[1])
                self.assertEqual(v["method"], info.path)
                cls = info.reply_type if v["direction"] == "reply" else info.request_type
                message = cls.FromString(v["payload"])
                self.assertEqual(v["payload"], message.SerializeToString())
        reply = self.pb2.BlacklistStatusReply.FromString(self.vectors["reply"]["payload"])
        self.assertEqual(1, len(reply.entries))
        entry = reply.entries[0]
        self.assertEqual(("node3", "127.0.0.3", 5, True),
                         (entry.nodename, entry.address, entry.invalid_messages,
                          entry.blocked))
        action = self.pb2.ServiceActionRequest.FromString(
            self.vectors["rotated"]["payload"])
        self.assertEqual("svc1", action.svcname)
        self.assertEqual(["compliance", "fix", "--moduleset", "foo"], list(action.command))
        self.assertTrue(action.sync)

    def test_reply_uses_the_request_salt_generation_and_id(self):
        request, reply = self.vectors["request"], self.vectors["reply"]
        self.assertEqual(request["salt"], reply["salt"])
        self.assertEqual(request["key_generation"], reply["key_generation"])
        self.assertEqual(request["request_id"], reply["in_reply_to"])
        self.assertEqual(request["key"], reply["key"])

    def test_tampering_any_ciphertext_byte_fails(self):
        for name, v in self.vectors.items():
            envelope = self.pb2.Envelope.FromString(v["envelope"])
            for i in range(len(envelope.ciphertext)):
                with self.subTest(vector=name, byte=i):
                    tampered = self.pb2.Envelope()
                    tampered.CopyFrom(envelope)
                    data = bytearray(envelope.ciphertext)
                    data[i] ^= 0x01
                    tampered.ciphertext = bytes(data)
                    with self.assertRaises(EnvelopeError):
                        self.open(v, tampered)

    def test_tampering_any_serialized_envelope_byte_fails(self):
        for name, v in self.vectors.items():
            for i in range(len(v["envelope"])):
                with self.subTest(vector=name, byte=i):
                    data = bytearray(v["envelope"])
                    data[i] ^= 0x01  # keeps ASCII text valid UTF-8
                    with self.assertRaises((EnvelopeError, ValueError)):
                        self.open(v, bytes(data))

    def test_another_method_fails(self):
        for name, v in self.vectors.items():
            with self.subTest(vector=name):
                with self.assertRaises(EnvelopeError):
                    self.open(v, method="/omd.v1.Agent/BlacklistClear")

    def test_the_other_direction_fails(self):
        for name, v in self.vectors.items():
            with self.subTest(vector=name):
                other = "request" if v["direction"] == "reply" else "reply"
                extra = {}
                if other == "reply":
                    # Passes the recipient check, so that the tag is what fails.
                    extra = dict(trusted_nodenames=[v["nodename"]],
                                 in_reply_to=v["in_reply_to"] or bytes(16),
                                 own_nodename=v["recipient"])
                else:
                    extra = dict(trusted_nodenames=None, in_reply_to=None,
                                 own_nodename=None)
                with self.assertRaises(EnvelopeError):
                    self.open(v, direction=other, **extra)

    def test_changing_a_clear_field_fails(self):
        changes = {
            "nodename": "node9",
            "salt": bytes(16),
            "nonce": bytes(12),
        }
        for name, v in self.vectors.items():
            envelope = self.pb2.Envelope.FromString(v["envelope"])
            for field, value in changes.items():
                with self.subTest(vector=name, field=field):
                    tampered = self.pb2.Envelope()
                    tampered.CopyFrom(envelope)
                    setattr(tampered, field, value)
                    with self.assertRaises(EnvelopeError):
                        self.open(v, tampered, trusted_nodenames=None
                                  if v["direction"] == "request" else ["node9", v["nodename"]])
            with self.subTest(vector=name, field="key_generation"):
                tampered = self.pb2.Envelope()
                tampered.CopyFrom(envelope)
                tampered.key_generation += 1
                # Even with the same secret under the new generation number.
                with self.assertRaises(EnvelopeError):
                    self.open(v, tampered, secrets={tampered.key_generation: v["secret"]})
            with self.subTest(vector=name, field="cluster"):
                tampered = self.pb2.Envelope()
                tampered.CopyFrom(envelope)
                tampered.cluster = "other"
                with self.assertRaises(EnvelopeError):
                    self.open(v, tampered, cluster="other")

    def test_wrong_secret_or_unknown_generation_fails(self):
        for name, v in self.vectors.items():
            with self.subTest(vector=name, case="secret"):
                with self.assertRaises(EnvelopeError):
                    self.open(v, secrets={v["key_generation"]: v["secret"] + "x"})
            if name == "joiner_request":
                continue  # opened with the receiver's current secret, whatever its number
            with self.subTest(vector=name, case="generation"):
                with self.assertRaises(EnvelopeError):
                    self.open(v, secrets={v["key_generation"] + 1: v["secret"]})

    def test_stream_reply_answers_the_request_with_its_sequence(self):
        request, reply = self.vectors["request"], self.vectors["stream_reply"]
        self.assertEqual(request["salt"], reply["salt"])
        self.assertEqual(request["request_id"], reply["in_reply_to"])
        self.assertEqual(3, reply["sequence"])
        for name, v in self.vectors.items():
            if name != "stream_reply":
                with self.subTest(vector=name):
                    self.assertEqual(0, v["sequence"])
        self.assertEqual(3, self.open(reply, expected_sequence=3).sequence)

    def test_stream_reply_out_of_sequence_is_refused(self):
        # Section 5: the reader expects 1, 2, 3... A gap, a repeat or a unary
        # reader (which expects 0) refuses it.
        v = self.vectors["stream_reply"]
        for expected in (0, 1, 2, 4):
            with self.subTest(expected=expected):
                with self.assertRaisesRegex(EnvelopeError, "sequence"):
                    self.open(v, expected_sequence=expected)
        with self.assertRaisesRegex(EnvelopeError, "sequence"):
            self.open(self.vectors["reply"], expected_sequence=1)

    def test_only_replies_have_a_sequence(self):
        v = self.vectors["request"]
        with self.assertRaises(ValueError):
            omd_envelope.seal(secret=v["secret"], key_generation=1, cluster="test",
                              nodename="node1", recipient="node2", method=v["method"],
                              direction="request", sequence=1)

    def test_reply_to_another_request_is_refused(self):
        v = self.vectors["reply"]
        other = bytearray(v["in_reply_to"])
        other[-1] ^= 0x01
        with self.assertRaises(EnvelopeError):
            self.open(v, in_reply_to=bytes(other))

    def test_reply_from_an_untrusted_node_is_refused(self):
        v = self.vectors["reply"]
        with self.assertRaises(EnvelopeError):
            self.open(v, trusted_nodenames=["node1", "node3"])

    def test_reply_with_another_salt_than_the_request_is_refused(self):
        v = self.vectors["reply"]
        with self.assertRaises(EnvelopeError):
            self.open(v, expected_salt=bytes(16))

    def test_send_time_window(self):
        for name, v in self.vectors.items():
            sent = v["sent_at_unix_ms"]
            with self.subTest(vector=name, case="edges"):
                self.open(v, now_ms=sent + 60_000)
                self.open(v, now_ms=sent - 60_000)
            with self.subTest(vector=name, case="outside"):
                with self.assertRaises(EnvelopeError):
                    self.open(v, now_ms=sent + 60_001)
                with self.assertRaises(EnvelopeError):
                    self.open(v, now_ms=sent - 60_001)

    def test_seal_with_random_inputs_round_trips(self):
        method = "/omd.v1.Agent/EmptyPacket"
        request = omd_envelope.seal(secret="s" * 32, key_generation=1, cluster="c",
                                    nodename="n1", method=method, direction="request")
        again = omd_envelope.seal(secret="s" * 32, key_generation=1, cluster="c",
                                  nodename="n1", method=method, direction="request")
        self.assertNotEqual(request.envelope.salt, again.envelope.salt)
        self.assertNotEqual(request.envelope.nonce, again.envelope.nonce)
        self.assertNotEqual(request.request_id, again.request_id)
        opened = omd_envelope.open_envelope(
            request.envelope.SerializeToString(), secrets={1: "s" * 32}, method=method,
            direction="request", cluster="c")
        self.assertEqual(b"", opened.payload)
        reply = omd_envelope.seal(
            secret="s" * 32, key_generation=1, cluster="c", nodename="n2",
            method=method, direction="reply", recipient="n1",
            in_reply_to=request.request_id, salt=request.envelope.salt)
        omd_envelope.open_envelope(
            reply.envelope, secrets={1: "s" * 32}, method=method, direction="reply",
            cluster="c", own_nodename="n1", trusted_nodenames=["n2"],
            in_reply_to=request.request_id,
            expected_salt=request.envelope.salt, expected_key_generation=1)
        with self.assertRaises(EnvelopeError):
            omd_envelope.open_envelope(
                reply.envelope, secrets={1: "s" * 32}, method=method, direction="reply",
                cluster="c", own_nodename="n3", trusted_nodenames=["n2"],
                in_reply_to=request.request_id)

    def test_joiner_vectors(self):
        request, reply = self.vectors["joiner_request"], self.vectors["joiner_reply"]
        self.assertEqual(("", 0), (request["cluster"], request["key_generation"]))
        # The reply names the cluster, under the request's salt and generation.
        self.assertEqual(("test", 0), (reply["cluster"], reply["key_generation"]))
        self.assertEqual(request["salt"], reply["salt"])
        self.assertEqual(request["request_id"], reply["in_reply_to"])
        self.assertEqual(request["key"], reply["key"])
        # Section 3.3: an empty cluster is 00 00 00 00, generation 0 is 00 00 00 00.
        aad = request["aad"]
        cluster_at = len(b"omd.v1.envelope") + 1 + 4 + len(request["method"])
        self.assertEqual(b"\0\0\0\0", aad[cluster_at:cluster_at + 4])
        self.assertEqual(b"\0\0\0\0", aad[-4:])
        self.assertEqual("127.0.0.3:1214", self.pb2.JoinRequest.FromString(
            request["payload"]).address)
        welcome = self.pb2.JoinReply.FromString(reply["payload"])
        self.assertEqual("node1 node2 node3", welcome.cluster.values["nodes"])
        self.assertEqual("unicast", welcome.sections["hb#1"].values["type"])
        # A member opens the joiner's request only where joiners are accepted.
        with self.assertRaises(EnvelopeError):
            self.open(request, accept_joiners=False)
        with self.assertRaises(EnvelopeError):  # closed to non-members, so to joiners
            self.open(request, method="/omd.v1.Agent/BlacklistStatus",
                      enforce_access=True)
        self.open(request, enforce_access=True)
        # A member (its cluster named) does not take generation 0 from anyone else.
        with self.assertRaises(EnvelopeError):
            self.open(reply, cluster="test")
        # The joiner's reply check: any valid name, the node it called.
        self.open(reply, trusted_nodenames=None, trust_any_nodename=True,
                  expected_nodename="node1")
        with self.assertRaises(EnvelopeError):
            self.open(reply, trusted_nodenames=None, trust_any_nodename=True,
                      expected_nodename="node2")

    def test_request_for_another_node_is_refused(self):
        v = self.vectors["request"]
        self.assertEqual("node2", v["recipient"])
        self.open(v, own_nodename="node2")
        with self.assertRaises(EnvelopeError):
            self.open(v, own_nodename="node3")
        # "rotated" leaves its recipient empty, to exercise that field of the
        # associated data (a daemon would refuse it: PROTOCOL.md section 9).
        self.open(self.vectors["rotated"], own_nodename="whoever")


if __name__ == "__main__":
    unittest.main()
