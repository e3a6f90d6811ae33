"""``hydranet serve``: a local web page to drop an image or a video and see segmentation and depth.

Open the printed address in a browser, drop a picture or a short video on the page (or
pick an example street) and get the same panel as `hydranet predict` (image |
segmentation | overlay | depth, with the legend and the depth bar). Hover over or click
the panel to read the class and the depth in metres of any pixel; choose the weights,
the backend, the input size and the camera; download the raw outputs (label PNG, 16-bit
depth PNG, PLY point cloud) and, for videos, the MP4.

It needs the web extra: pip install "hydranet[app]" (FastAPI, uvicorn, python-multipart).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from ..errors import HydranetError
from ..serve import INSTALL_HINT, missing_packages

EPILOG = """\
examples:
  hydranet serve                                   # http://127.0.0.1:7860, the bundled model
  hydranet serve --weights kitti6 --weights runs/x/best.safetensors
  hydranet serve --port 8000 --max-upload-mb 200 --max-frames 900

The page lists the bundled model, the released weights already downloaded (`hydranet
weights download kitti6`) and every --weights given (the first is selected). Nothing
leaves the machine: the page loads nothing from the internet, the server listens on
127.0.0.1 only unless --host says otherwise, and every upload and result lives in one
temporary folder that is removed when the server stops (Ctrl-C). The last 12 results are
kept there for pixel readings and downloads."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="a local web page: drop an image or a video, see segmentation and depth",
        description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", action="append", default=[], metavar="W",
                        help="weights file or registered name to offer besides the bundled model and "
                             "the downloaded released weights; repeat for several (the first is "
                             "selected on the page)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 "
                             "lets anyone on your network use the page)")
    parser.add_argument("--port", type=int, default=7860,
                        help="port to listen on (default 7860; 0 picks a free one)")
    parser.add_argument("--max-upload-mb", type=float, default=50, metavar="MB",
                        help="largest upload accepted, in MB (default 50)")
    parser.add_argument("--max-frames", type=int, default=300, metavar="N",
                        help="longest video accepted, in frames (default 300, 12 s at 25 fps)")
    parser.add_argument("--examples", type=int, default=3, metavar="N",
                        help="example streets rendered at start-up for the page (0-4, default 3)")
    parser.set_defaults(func=run)


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or a one-line error (port in use, unknown host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise HydranetError(f"--host {host}: unknown address ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise HydranetError(f"cannot listen on {host}:{port} ({exc.strerror}); is another server "
                            "using it? pass --port N") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    try:
        shown = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        shown = host
    return f"http://{shown}:{port}"


def run(args: argparse.Namespace) -> int:
    missing = missing_packages()
    if missing:
        raise HydranetError(f"hydranet serve needs the web extra ({', '.join(missing)} missing): "
                            f"{INSTALL_HINT}")
    if not 0 <= args.port <= 65535:
        raise HydranetError(f"--port {args.port}: must be 0 to 65535")
    if not args.max_upload_mb > 0:
        raise HydranetError(f"--max-upload-mb {args.max_upload_mb:g}: must be more than 0")
    if args.max_frames < 1:
        raise HydranetError(f"--max-frames {args.max_frames}: must be 1 or more")
    if not 0 <= args.examples <= 4:
        raise HydranetError(f"--examples {args.examples}: must be 0 to 4")

    import uvicorn

    from ..serve.app import create_app
    from ..serve.service import MB, ServeSettings, Service

    # Weights are checked before anything listens, so a typo costs one line and no server.
    service = Service(ServeSettings(weights=tuple(args.weights),
                                    max_upload_bytes=int(args.max_upload_mb * MB),
                                    max_frames=args.max_frames, examples=args.examples))
    try:
        sock = _listen(args.host, args.port)
        port = sock.getsockname()[1]
        url = _url(args.host, port)
        config = uvicorn.Config(create_app(service=service), log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2, lifespan="on")

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                if self.started:  # the address only once it answers
                    if not ipaddress.ip_address(sock.getsockname()[0]).is_loopback:
                        print(f"hydranet serve: listening on {args.host}: anyone who can reach this "
                              "machine can use the page", flush=True)
                    print(f"hydranet serve: open {url} (temporary folder {service.workdir}, "
                          "removed at exit; Ctrl-C stops)", flush=True)

        try:
            Server(config).run(sockets=[sock])
        except KeyboardInterrupt:
            pass  # uvicorn has shut down cleanly and passes the signal on
        finally:
            sock.close()
        print("hydranet serve: stopped", file=sys.stderr)
        return 0
    finally:
        service.close()
