#!/usr/bin/env python3
"""A third-party client of the Wayline API, written only against what the server publishes.

It starts a real `wayline server run`, discovers the `wayline.v1.Wayline` service through gRPC
server reflection (no generated code, no copy of the .proto), bootstraps a token, checks that
a bad token is refused, queues a noop job and reads it back. Exits non-zero on any failure.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

SERVICE = "wayline.v1.Wayline"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wayline", required=True)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="wayline-pyclient-")
    sock = os.path.join(tmp, "server.sock")
    cmd = [
        args.wayline, "server", "run",
        "--data-dir", tmp,
        "--listen-grpc", f"127.0.0.1:{free_port()}",
        "--listen-http", f"127.0.0.1:{free_port()}",
        "--listen-unix", sock,
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        while not os.path.exists(sock):
            if server.poll() is not None or time.time() > deadline:
                out = server.stdout.read().decode(errors="replace") if server.stdout else ""
                raise SystemExit(f"server did not start:\n{out}")
            time.sleep(0.05)
        run_checks(f"unix://{sock}")
        print("third-party client: OK (reflection, bootstrap, bad token refused, noop job queued and read back)")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def run_checks(target):
    # A unix-socket target would otherwise be sent as the :authority, which HTTP/2 servers reject.
    channel = grpc.insecure_channel(target, options=[("grpc.default_authority", "localhost")])
    grpc.channel_ready_future(channel).result(timeout=10)

    db = ProtoReflectionDescriptorDatabase(channel)
    services = db.get_services()
    assert SERVICE in services, f"{SERVICE} not offered by reflection: {services}"
    pool = descriptor_pool.DescriptorPool(db)
    service = pool.FindServiceByName(SERVICE)

    def method(name):
        m = service.methods_by_name[name]
        req = message_factory.GetMessageClass(m.input_type)
        resp = message_factory.GetMessageClass(m.output_type)
        call = channel.unary_unary(
            f"/{SERVICE}/{name}",
            request_serializer=lambda msg: msg.SerializeToString(),
            response_deserializer=resp.FromString,
        )
        return req, call

    req, bootstrap = method("BootstrapToken")
    token = bootstrap(req()).token
    assert token, "bootstrap returned an empty token"

    # Bootstrap works exactly once.
    try:
        bootstrap(req())
        raise SystemExit("a second BootstrapToken succeeded")
    except grpc.RpcError as e:
        assert e.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS), e

    req, queue = method("QueueJob")
    job_req = req()
    job_req.job.application.project = "pyproject"
    job_req.job.application.application = "pyapp"
    job_req.job.workspace = "default"
    job_req.job.target_runner.labels.labels["pool"] = "python"
    job_req.job.noop.SetInParent()

    try:
        queue(job_req, metadata=[("authorization", "Bearer not-a-token")])
        raise SystemExit("a call with a bad token succeeded")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e

    auth = [("authorization", f"Bearer {token}")]
    job_id = queue(job_req, metadata=auth).job_id
    assert job_id, "QueueJob returned no id"

    req, get_job = method("GetJob")
    r = req()
    r.job_id = job_id
    job = get_job(r, metadata=auth)
    assert job.id == job_id, job
    state = job.DESCRIPTOR.fields_by_name["state"].enum_type.values_by_number[job.state].name
    assert state in ("QUEUED", "WAITING"), state
    assert "pool=python" in job.wait_reason, f"wait reason does not name the labels: {job.wait_reason!r}"
    print(f"job {job_id}: {state}; {job.wait_reason}")


if __name__ == "__main__":
    sys.exit(main())
