"""AWS's reference CloudFront signer, for the tests: botocore's CloudFrontSigner with an RSA
signer from `cryptography` (PKCS#1 v1.5, SHA-1), as the tutorial builds it.

Reads a JSON list of requests on stdin, writes a JSON list of results on stdout:
  {"privateKey": PEM, "keyPairId": str, "url": str, "expires": epoch seconds}
    -> {"signedUrl": canned-policy URL}
  the same with "policyResource": str
    -> {"policy": custom policy JSON, "signedUrl": custom-policy URL (Policy=, Signature=)}
"""
import datetime
import json
import sys

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def sign(request):
    key = serialization.load_pem_private_key(request["privateKey"].encode("ascii"), password=None)
    signer = CloudFrontSigner(
        request["keyPairId"], lambda message: key.sign(message, padding.PKCS1v15(), hashes.SHA1())
    )
    expires = datetime.datetime.fromtimestamp(request["expires"], tz=datetime.timezone.utc)
    if "policyResource" in request:
        policy = signer.build_policy(request["policyResource"], expires)
        return {"policy": policy, "signedUrl": signer.generate_presigned_url(request["url"], policy=policy)}
    return {"signedUrl": signer.generate_presigned_url(request["url"], date_less_than=expires)}


json.dump([sign(request) for request in json.load(sys.stdin)], sys.stdout)
