"""The seed tutorial's upload path, as `npm run bench` runs it as a peer.

usage: python3 boto3_seed.py BUCKET PREFIX PATH...   (a PATH that is a directory: its files)

Each file goes through the tutorial's deploy_model() upload code unchanged: one module-level
boto3 client, a TransferConfig of 50 MB threshold and parts with 10 threads, and upload_file
with ContentType application/octet-stream. Several files are deployed one after another in a
loop, as a user of the tutorial would write it. Its CloudFront invalidation is left out: the
bench's endpoint is no CloudFront, and the transfer is what is compared.

The endpoint and the certificate come from the environment (AWS_ENDPOINT_URL, AWS_CA_BUNDLE),
as the bench sets them for the AWS CLI, so the client is created exactly as the tutorial does.
"""

import os
import sys

import boto3
from boto3.s3.transfer import TransferConfig

s3 = boto3.client("s3", region_name="us-east-1")
bucket_name = sys.argv[1]


def deploy_model(local_path: str, s3_key: str) -> None:
    """The tutorial's upload, without its invalidation."""
    file_size_mb = os.path.getsize(local_path) / (1024 * 1024)
    print(f"Uploading {local_path} ({file_size_mb:.1f} MB) to s3://{bucket_name}/{s3_key}")
    transfer_config = TransferConfig(
        multipart_threshold=50 * 1024 * 1024,  # 50 MB
        multipart_chunksize=50 * 1024 * 1024,
        max_concurrency=10,
    )
    s3.upload_file(
        Filename=local_path,
        Bucket=bucket_name,
        Key=s3_key,
        Config=transfer_config,
        ExtraArgs={"ContentType": "application/octet-stream"},
    )
    print(f"Upload complete: s3://{bucket_name}/{s3_key}")


def files(paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += [os.path.join(path, name) for name in sorted(os.listdir(path))]
        else:
            found.append(path)
    return found


if __name__ == "__main__":
    prefix = sys.argv[2]
    for local_path in files(sys.argv[3:]):
        deploy_model(local_path, f"{prefix}/{os.path.basename(local_path)}")
