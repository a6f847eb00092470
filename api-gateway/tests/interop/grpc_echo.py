"""A real gRPC server and client (grpcio, unmodified) for the gateway's
gRPC interop test.

    grpc_echo.py server [CERT KEY] serves echo.Echo on a free port (over TLS
                                   with CERT and KEY, else cleartext HTTP/2),
                                   prints {"port": N}, stops when stdin closes
    grpc_echo.py client HOST:PORT  calls echo.Echo over cleartext HTTP/2
                                   (an insecure channel) and prints what it got

Messages are raw bytes (no protobuf): the gateway never looks inside them.
"""
import json
import sys
from concurrent import futures

import grpc

SERVICE = "echo.Echo"


def say(request, context):
    context.set_trailing_metadata((("x-served-by", "python-grpcio"),))
    return b"hello " + request


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


def count(request, context):
    for i in range(int(request)):
        yield str(i).encode()


def collect(request_iterator, context):
    return b",".join(request_iterator)


def serve(cert_file=None, key_file=None):
    handlers = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Say": grpc.unary_unary_rpc_method_handler(say),
            "Fail": grpc.unary_unary_rpc_method_handler(fail),
            "Count": grpc.unary_stream_rpc_method_handler(count),
            "Collect": grpc.stream_unary_rpc_method_handler(collect),
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handlers,))
    if cert_file:
        with open(cert_file, "rb") as f:
            cert = f.read()
        with open(key_file, "rb") as f:
            key = f.read()
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(json.dumps({"port": port}), flush=True)
    sys.stdin.read()
    server.stop(0)


def call(target):
    out = {}
    with grpc.insecure_channel(target) as channel:
        reply, c = channel.unary_unary(f"/{SERVICE}/Say").with_call(b"world", timeout=20)
        out["say"] = reply.decode()
        out["say_trailers"] = dict(c.trailing_metadata() or ())
        try:
            channel.unary_unary(f"/{SERVICE}/Fail")(b"", timeout=20)
            out["fail"] = "no error"
        except grpc.RpcError as e:
            out["fail"] = {"code": e.code().name, "details": e.details()}
        out["count"] = [m.decode() for m in channel.unary_stream(f"/{SERVICE}/Count")(b"3", timeout=20)]
        out["collect"] = channel.stream_unary(f"/{SERVICE}/Collect")(iter([b"a", b"b", b"c"]), timeout=20).decode()
    print(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(*sys.argv[2:4])
    else:
        call(sys.argv[2])
