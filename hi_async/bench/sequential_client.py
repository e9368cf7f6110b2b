"""The baseline: a sequential client written the way AWS's example does it.

boto3, one GetImageFrame at a time: fetch, decode, CRC32, compare, next. Run as a
separate process by the benchmark so its CPU and memory are measured on their own:

    python -m hi_async.bench.sequential_client --endpoint-url URL --datastore-id D \
        --image-set-id ID [--image-set-id ID ...] [--limit N] [--per-set-limit K]

Prints one JSON object: frames, verified, bytes, seconds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import zlib

import boto3
import imagecodecs
import numpy as np
from botocore.config import Config

from hi_async.bench.args import add_target


def _frames(metadata: dict) -> list[tuple[str, int | None]]:
    """(frame ID, expected full-resolution CRC32) for every frame, in document order."""
    out: list[tuple[str, int | None]] = []
    for series in metadata["Study"]["Series"].values():
        for instance in series["Instances"].values():
            for frame in instance.get("ImageFrames", []):
                checksums = frame.get("PixelDataChecksumFromBaseToFullResolution") or []
                full = max(checksums, key=lambda c: c["Width"]) if checksums else None
                out.append((frame["ID"], None if full is None else full["Checksum"] & 0xFFFFFFFF))
    return out


def _decode(body: bytes, content_type: str) -> np.ndarray:
    if content_type in ("image/jph", "image/jphc"):
        return imagecodecs.htj2k_decode(body)
    if content_type == "image/j2c":
        return imagecodecs.jpeg2k_decode(body)
    if content_type == "image/jpeg":
        return imagecodecs.jpeg8_decode(body)
    raise ValueError(f"unsupported content type {content_type}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_target(p)
    p.add_argument("--limit", type=int, default=None, help="stop after this many frames")
    p.add_argument("--per-set-limit", type=int, default=None,
                   help="take only the first K frames of each image set (a sample that "
                   "keeps the study's mix of image sets)")
    args = p.parse_args(argv)

    started = time.perf_counter()
    client = boto3.client(
        "medical-imaging",
        endpoint_url=args.endpoint_url,
        region_name=args.region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(inject_host_prefix=False, retries={"mode": "standard"}),
    )
    frames = verified = nbytes = 0
    for image_set_id in args.image_set_id:
        resp = client.get_image_set_metadata(datastoreId=args.datastore_id,
                                             imageSetId=image_set_id)
        metadata = json.loads(gzip.decompress(resp["imageSetMetadataBlob"].read()))
        for n, (frame_id, expected) in enumerate(_frames(metadata)):
            if args.limit is not None and frames >= args.limit:
                break
            if args.per_set_limit is not None and n >= args.per_set_limit:
                break
            resp = client.get_image_frame(
                datastoreId=args.datastore_id,
                imageSetId=image_set_id,
                imageFrameInformation={"imageFrameId": frame_id},
            )
            body = resp["imageFrameBlob"].read()
            pixels = _decode(body, resp["contentType"])
            crc = zlib.crc32(np.ascontiguousarray(pixels).tobytes()) & 0xFFFFFFFF
            frames += 1
            nbytes += len(body)
            verified += int(expected is not None and crc == expected)
    seconds = time.perf_counter() - started
    json.dump({"frames": frames, "verified": verified, "bytes": nbytes, "seconds": seconds},
              sys.stdout)
    print()
    return 0 if verified == frames else 1


if __name__ == "__main__":
    sys.exit(main())
