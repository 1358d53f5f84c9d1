"""An HTTP component in Python, built with componentize-py for the standard
`wasi:http/proxy` world (which imports `wasi:http/outgoing-handler` whether the code sends
requests or not). crates/cli/tests/toolchains.rs builds and serves it."""

from wit_world import exports
from componentize_py_types import Ok
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = request.path_with_query() or "/"
        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(f"Hello from Python at {path}\n".encode())
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
