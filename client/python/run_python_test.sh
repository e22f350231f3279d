#!/bin/bash
# Runs one Python unittest module under Bazel with the system interpreter.
#
# Usage (from an sh_test): run_python_test.sh MODULE
#
# Bazel's py rules would pick another interpreter, so this runs /usr/bin/python3
# (which has grpcio, protobuf, cryptography and xmlrunner) through xmlrunner, so that
# Bazel's test.xml lists every test case. The omd_pb2 module is generated from
# proto/omd.proto into $TEST_TMPDIR at test time (omd_envelope.omd_pb2()).
set -euo pipefail

module="$1"
runfiles="${TEST_SRCDIR:?run me with bazel test}/omd"
export PYTHONPATH="${runfiles}/client/python"
export OMD_PROTO="${runfiles}/proto/omd.proto"
export PYTHONDONTWRITEBYTECODE=1

cd "${TEST_TMPDIR:?}"
exec /usr/bin/python3 -m xmlrunner --output-file "${XML_OUTPUT_FILE:-${TEST_TMPDIR}/test.xml}" \
  "${module}"
