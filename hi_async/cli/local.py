"""``local serve`` and ``local seed``: the embedded local stack."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    local = sub.add_parser(
        "local",
        help="the embedded local stack (HealthImaging emulator + S3, IAM, STS, SSM, "
        "CloudFormation)",
        description="Run or seed the embedded local stack.",
    )
    lsub = local.add_subparsers(dest="local_command", metavar="COMMAND", required=True)

    serve = lsub.add_parser(
        "serve",
        help="serve HealthImaging, S3, IAM, STS, SSM and CloudFormation on one endpoint",
        description="Serve the HealthImaging API and moto's S3, IAM, STS, SSM Parameter Store "
        "and CloudFormation on one HTTP endpoint, routed by the SigV4 credential scope.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=4566, help="port (0 picks a free one)")
    serve.add_argument("--data-dir", default=None, help="keep state here across restarts")
    serve.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    serve.add_argument("--jitter-ms", type=float, default=0.0, help="random extra latency")
    serve.add_argument("--bandwidth-mbps", type=float, default=0.0,
                       help="per-response bandwidth cap in Mbit/s (0 = none)")
    serve.add_argument("--throttle-rps", type=float, default=0.0,
                       help="data-plane token bucket rate (0 = none)")
    serve.add_argument("--error-rate", type=float, default=0.0, help="share of 500/503 answers")
    serve.add_argument("--drop-rate", type=float, default=0.0, help="share of dropped connections")
    serve.add_argument("--truncate-rate", type=float, default=0.0,
                       help="share of bodies cut short")
    serve.add_argument("--corrupt-rate", type=float, default=0.0,
                       help="share of frame bodies with flipped bytes")
    serve.add_argument("--drip-rate", type=float, default=0.0,
                       help="share of frame bodies sent a byte at a time (100 bytes/s)")
    serve.add_argument("--fault-seed", type=int, default=None, help="seed for injected faults")
    serve.add_argument("--datastore-delay", type=float, default=None, metavar="SECONDS",
                       help="time a data store stays CREATING or DELETING (default 0.3)")
    serve.add_argument("--lock-delay", type=float, default=None, metavar="SECONDS",
                       help="time an image set stays LOCKED after an update, copy or delete "
                       "(default 0)")
    serve.add_argument("--import-max-bytes", default=None, metavar="BYTES",
                       help="input limit per import job (default 10GiB, the service's)")
    serve.add_argument("--import-max-frame-bytes", default=None, metavar="BYTES",
                       help="decoded size one frame may have, read from headers before "
                       "decoding (default 1GiB)")
    serve.add_argument("--import-max-instance-bytes", default=None, metavar="BYTES",
                       help="decoded pixel data one instance may have, and what a deflated "
                       "file may inflate to (default 4GiB, the most DICOM's native pixel "
                       "data holds)")
    serve.add_argument("--import-worker-memory", default=None, metavar="BYTES",
                       help="memory each import worker may take beyond its start-up size "
                       "(default: an equal share of the machine's memory; 0: no cap)")
    serve.add_argument("--bare-account", action="store_true",
                       help="act as an account never bootstrapped with 'cdk bootstrap' (no "
                       "/cdk-bootstrap/hnb659fds/version parameter in SSM); by default the "
                       "account is bootstrapped, so CDK-made templates deploy")
    serve.add_argument("--verify-signatures", action="store_true",
                       help="check the signatures of every request (HealthImaging, S3, IAM, "
                       "STS, CloudFormation) against HI_ASYNC_LOCAL_CREDENTIALS")
    serve.set_defaults(handler=_serve)

    seed = lsub.add_parser(
        "seed",
        help="upload a folder of DICOM files or a synthetic series to a bucket",
        description="Upload DICOM files to a bucket of the local stack (or any S3), concurrently.",
    )
    seed.add_argument("--endpoint-url", required=True)
    seed.add_argument("--bucket", required=True)
    seed.add_argument("--prefix", default="")
    src = seed.add_mutually_exclusive_group(required=True)
    src.add_argument("--dicom-dir", help="folder of DICOM files to upload (recursively)")
    src.add_argument("--synthetic", choices=["ct", "mr"], help="generate a synthetic series")
    seed.add_argument("--instances", type=int, default=10)
    seed.add_argument("--rows", type=int, default=None)
    seed.add_argument("--columns", type=int, default=None)
    seed.set_defaults(handler=_seed)


def _serve(args: argparse.Namespace) -> int:
    from ..local.serve import serve_from_args

    return serve_from_args(args)


def _seed(args: argparse.Namespace) -> int:
    from ..local.data.seed import seed_from_args

    return seed_from_args(args)
