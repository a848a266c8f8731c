/**
 * A local AWS emulator (moto_server: S3 + CloudFront) for the integration tests and `npm run demo`.
 *
 * startEmulator() starts `moto_server` on a free loopback port in its own process group, waits
 * until it answers HTTP, and returns { endpoint, stop() }. The server never outlives the process
 * that started it: stop() kills the whole group (TERM, then KILL), an 'exit' hook does the same
 * when the process ends without calling stop(), and a small guard process kills the group when
 * the parent dies in a way no hook sees (SIGKILL, a crashed Jest worker).
 *
 * setupWorld() builds what the action is deployed to, as the tutorial does it: a private,
 * versioned bucket with its public access blocked and a lifecycle rule that aborts incomplete
 * multipart uploads, an Origin Access Control, a distribution whose origin is the bucket, a
 * bucket policy that lets only that distribution read, and optionally a trusted key group.
 *
 * moto 5.2 drops two things pre-flight reads, so by default the server runs with MOTO_PATCH
 * (below): GetDistribution returns each origin's OriginAccessControlId and S3OriginConfig as
 * created, GetKeyGroup/GetPublicKey of an unknown id answer 404 NoSuchResource/NoSuchPublicKey
 * as AWS does, instead of a 500, and public key ids start with K as AWS's do.
 *
 * The action relies on S3 conditional writes, which moto 5.2 only partly honours, so MOTO_PATCH
 * also makes them answer as AWS's do: CompleteMultipartUpload honours If-Match (moto completes
 * over a stale ETag), CopyObject honours If-None-Match: * and If-Match on its destination (moto
 * ignores both), each answering 412 PreconditionFailed, or 404 NoSuchKey for If-Match on a
 * missing key. And each conditional check happens atomically with its write under one lock:
 * moto_server answers on threads, and without it two concurrent `If-None-Match: *` PutObjects of
 * one key can both succeed (seen with bodies over 5 MiB, which moto writes to a temporary file
 * between its check and its write), which S3 never allows.
 *
 * For `s3://` sources, MOTO_PATCH makes CopyObject and UploadPartCopy honour
 * x-amz-copy-source-if-match (412 for a source replaced since it was listed; moto ignores it, and
 * answers an UploadPartCopy from a missing key with a bare 404, not NoSuchKey), stores a checksum
 * header sent without x-amz-sdk-checksum-algorithm (moto drops it), names the checksum type in
 * HeadObject (FULL_OBJECT, or COMPOSITE with the value's -<parts>; moto gives the bare value), and
 * gives a CopyObject of a multipart object the full-object checksum AWS computes (moto keeps the
 * composite value). And, for speed alone, moto reads an object's body once for a run of ranged
 * reads of it (UploadPartCopy, ranged GETs) instead of once per range.
 *
 * For `setup`, MOTO_PATCH makes these answer as AWS does: HeadBucket from another region (301
 * with the bucket's region; moto answers 200), a public bucket policy under BlockPublicPolicy
 * (403; moto stores it), an abort rule with a tag filter (400; moto accepts it), ListDistributions
 * (each summary with its configuration, Comment and Origins, which moto leaves out), and the
 * UpdateKeyGroup and AddClientIDToOpenIDConnectProvider handlers moto 5.2 lacks (500s).
 */
import { spawn } from 'node:child_process'
import {
  accessSync,
  closeSync,
  constants,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync
} from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  CreateBucketCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketPolicyCommand,
  PutBucketVersioningCommand,
  PutPublicAccessBlockCommand,
  S3Client
} from '@aws-sdk/client-s3'
import {
  CloudFrontClient,
  CreateDistributionCommand,
  CreateKeyGroupCommand,
  CreateOriginAccessControlCommand,
  CreatePublicKeyCommand
} from '@aws-sdk/client-cloudfront'

export const TEST_REGION = 'us-east-1'
/** The emulator accepts any credentials; these are the ones the tests and the demo use. */
export const TEST_ACCESS_KEY_ID = 'test'
export const TEST_SECRET_ACCESS_KEY = 'test'

const INSTALL_HINT =
  "Install it with: python3 -m pip install 'moto[server]'   (moto 5.x; then `moto_server --help` must work)"

/** Kills a process group when the parent's pipe closes, i.e. when the parent dies in any way. */
const GUARD_SOURCE = `
const pgid = Number(process.argv[1])
const alive = () => { try { process.kill(-pgid, 0); return true } catch { return false } }
const kill = (signal) => { try { process.kill(-pgid, signal) } catch {} }
const reap = () => {
  kill('SIGTERM')
  setTimeout(() => { kill('SIGKILL'); process.exit(0) }, 3000).unref()
  const poll = setInterval(() => { if (!alive()) process.exit(0) }, 100)
  poll.unref()
}
process.stdin.on('end', reap)
process.stdin.on('error', reap)
process.stdin.resume()
setInterval(() => { if (!alive()) process.exit(0) }, 1000)
`

/**
 * Run before moto's server: makes moto 5.2 answer as AWS does where pre-flight, conditional
 * writes and copies depend on it. Each fix is additive (a field moto dropped, a 404 where moto
 * failed with a 500, a precondition moto ignored, a lock where moto's threads could interleave),
 * or a checksum stored as AWS stores it.
 */
const MOTO_PATCH = `
from moto.cloudfront import models
from moto.cloudfront.exceptions import CloudFrontException

origin_init = models.Origin.__init__

def keep_origin_access(self, origin):
    origin_init(self, origin)
    self.origin_access_control_id = origin.get("OriginAccessControlId") or ""
    if "S3OriginConfig" in origin:
        oai = origin["S3OriginConfig"].get("OriginAccessIdentity") or ""
        self.s3_origin_config = {"OriginAccessIdentity": oai}

def lookup(store, code, message):
    def get(self, **kwargs):
        (key,) = kwargs.values()
        if key not in getattr(self, store):
            raise CloudFrontException(code, message)
        return getattr(self, store)[key]
    return get

# AWS public key ids start with K (the action checks it); moto draws any first letter.
public_key_init = models.PublicKey.__init__

def aws_shaped_public_key(self, *args, **kwargs):
    public_key_init(self, *args, **kwargs)
    self.id = "K" + self.id[1:]
    self.location = f"https://cloudfront.amazonaws.com/2020-05-31/public-key/{self.id}"

models.Origin.__init__ = keep_origin_access
models.PublicKey.__init__ = aws_shaped_public_key
models.CloudFrontBackend.get_key_group = lookup(
    "key_groups", "NoSuchResource", "A resource that was specified is not valid."
)
models.CloudFrontBackend.get_public_key = lookup(
    "public_keys", "NoSuchPublicKey", "The specified public key does not exist."
)

# S3 conditional writes (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
# moto's put_object and delete_object honour If-Match / If-None-Match: *, and its
# CompleteMultipartUpload honours If-None-Match: *; the rest is checked here, before moto's
# handler writes, with moto's own exceptions so the status and the XML error are AWS's.
import threading
from functools import wraps
from moto.s3.exceptions import MissingKey, PreconditionFailed
from moto.s3.responses import S3Response

def check_if_match(response, key_name, existing):
    if_match = response.headers.get("If-Match")
    if not if_match:
        return
    if existing is None:
        raise MissingKey(key=key_name)
    # Quotes do not matter, as in moto's put_object.
    if if_match.replace('"', "") != existing.etag.replace('"', ""):
        raise PreconditionFailed("If-Match")

# CopyObject and UploadPartCopy name their source in x-amz-copy-source (bucket/key[?versionId=]).
from urllib.parse import parse_qs, unquote, urlparse

def copy_source(response):
    source = response.headers.get("x-amz-copy-source")
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    parsed = urlparse(source)
    bucket, key = unquote(parsed.path).lstrip("/").split("/", 1)
    version = parse_qs(parsed.query).get("versionId", [None])[0]
    return key, response.backend.get_object(bucket, key, version_id=version)

# x-amz-copy-source-if-match: a source replaced since it was listed fails the copy (412), as on
# AWS; moto checks only x-amz-copy-source-if-none-match, and UploadPartCopy not even that.
def check_copy_source_if_match(response, source):
    if_match = response.headers.get("x-amz-copy-source-if-match")
    if if_match and source is not None and if_match.replace('"', "") != source.etag.replace('"', ""):
        raise PreconditionFailed("x-amz-copy-source-If-Match")

# CopyObject: moto checks no condition on the destination, and of the source's only If-None-Match.
copy_object = S3Response.copy_object

def conditional_copy_object(self):
    key_name = self.parse_key_name()
    existing = self.backend.get_object(self.bucket_name, key_name)
    check_if_match(self, key_name, existing)
    if self.headers.get("If-None-Match") == "*" and existing is not None:
        raise PreconditionFailed("If-None-Match")
    check_copy_source_if_match(self, copy_source(self)[1])
    return copy_object(self)

# UploadPartCopy: moto answers a missing source with a bare 404 (AWS: NoSuchKey) and ignores
# x-amz-copy-source-if-match.
upload_part_copy = S3Response.upload_part_copy

def conditional_upload_part_copy(self):
    key, source = copy_source(self)
    if source is None:
        raise MissingKey(key=key)
    check_copy_source_if_match(self, source)
    return upload_part_copy(self)

# CompleteMultipartUpload: moto checks If-None-Match: * but completes over any If-Match. A retried
# completion of an upload that already completed stays moto's idempotent success, as for
# If-None-Match. The check runs before moto's, so a 412 leaves the upload open to retry.
key_response_post = S3Response._key_response_post

def conditional_complete(self, request, body, bucket_name, query, key_name):
    upload_id = (query.get("uploadId") or [None])[0]
    if upload_id:
        existing = self.backend.get_object(bucket_name, key_name)
        multipart = existing.multipart if existing is not None else None
        if multipart is None or multipart.id != upload_id:
            check_if_match(self, key_name, existing)
    return key_response_post(self, request, body, bucket_name, query, key_name)

# moto_server answers each request on its own thread (werkzeug threaded=True) and checks a
# precondition some statements before it writes; a body over 5 MiB - 1 KiB (moto's default
# MOTO_S3_DEFAULT_KEY_BUFFER_SIZE), which it writes to a temporary file, lets other threads run in
# between, so several If-None-Match: * PutObjects of one key could succeed. One lock around every handler that replaces or removes a key's current object
# makes each check and its write atomic, as in S3. Bodies are read before the handler runs, so
# the lock is never held while a client is still sending.
write_lock = threading.RLock()

def atomic(handler):
    @wraps(handler)
    def locked(*args, **kwargs):
        with write_lock:
            return handler(*args, **kwargs)
    return locked

S3Response.put_object = atomic(S3Response.put_object)
S3Response.copy_object = atomic(conditional_copy_object)
# Its source check and its read of the source, so a source replaced meanwhile cannot slip through.
S3Response.upload_part_copy = atomic(conditional_upload_part_copy)
# CreateMultipartUpload and CompleteMultipartUpload (and RestoreObject, SelectObjectContent).
S3Response._key_response_post = atomic(conditional_complete)
S3Response.delete_object = atomic(S3Response.delete_object)
# DeleteObjects and browser-form (POST) uploads.
S3Response._bucket_response_post = atomic(S3Response._bucket_response_post)

# --- S3 checksums (https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html) ---
from moto.s3.models import S3Backend
from moto.s3.utils import compute_checksum

# A checksum header without x-amz-sdk-checksum-algorithm (the SDK's ChecksumSHA256 alone, as the
# deploy sends on AWS): AWS stores it; moto reads only the algorithm the SDK header names. Neither
# moto nor this checks the value against the body (AWS answers 400 BadDigest).
CHECKSUM_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
get_checksum = S3Response._get_checksum

def checksum_named_by_its_header(self, response_headers):
    if not self.headers.get("x-amz-sdk-checksum-algorithm"):
        for algorithm in CHECKSUM_ALGORITHMS:
            header = f"x-amz-checksum-{algorithm.lower()}"
            if self.headers.get(header):
                response_headers[header] = self.headers[header]
                return algorithm, self.headers[header]
    return get_checksum(self, response_headers)

S3Response._get_checksum = checksum_named_by_its_header

# HeadObject with x-amz-checksum-mode: ENABLED: AWS names the type (FULL_OBJECT, or COMPOSITE
# with the value ending in -<parts>); moto gives the bare value.
head_object = S3Response.head_object

def head_object_with_checksum_type(self, bucket_name, query, key_name, headers):
    status, response_headers, body = head_object(self, bucket_name, query, key_name, headers)
    if status != 200 or headers.get("x-amz-checksum-mode") != "ENABLED":
        return status, response_headers, body
    version_id = query.get("versionId", [None])[0]
    key = self.backend.get_object(bucket_name, key_name, version_id=version_id)
    if key is not None and key.checksum_algorithm and key.checksum_value:
        if key.checksum_type == "COMPOSITE":
            header = f"x-amz-checksum-{key.checksum_algorithm.lower()}"
            response_headers[header] = f"{key.checksum_value}-{key.checksum_parts}"
        response_headers["x-amz-checksum-type"] = key.checksum_type or "FULL_OBJECT"
    return status, response_headers, body

S3Response.head_object = head_object_with_checksum_type

# CopyObject of an object with a composite (multipart) checksum: AWS copies in one action and
# stores a checksum of the full object, same algorithm; moto keeps the composite value unlabelled.
backend_copy_object = S3Backend.copy_object

def copy_object_full_checksum(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs):
    backend_copy_object(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)
    if src_key.checksum_type == "COMPOSITE":
        copied = self.get_object(dest_bucket_name, dest_key_name)
        value = compute_checksum(copied.value, algorithm=src_key.checksum_algorithm)
        copied.checksum_value = value.decode("utf-8")
        copied.checksum_type = "FULL_OBJECT"

S3Backend.copy_object = copy_object_full_checksum

# Cost, not behaviour: moto reads an object's whole body for every request of it, a range too, so
# the 128 part copies (UploadPartCopy) or ranged GETs of a 1 GiB object read 128 GiB, minutes
# where S3 takes seconds (npm run bench, scenario 7). The body last read is kept for the next
# read of the same object: one read then serves all its ranges. Objects get a new FakeKey when
# written; the setter forgets the kept body all the same.
from moto.s3.models import FakeKey

last_read = (None, b"")

def value_read_once(self):
    global last_read
    with self.lock:
        key, value = last_read
        if key is not self:
            self._value_buffer.seek(0)
            value = self._value_buffer.read()
            last_read = (self, value)
        return value

set_value = FakeKey.value.fset

def set_value_forgetting_last_read(self, new_value):
    global last_read
    if last_read[0] is self:
        last_read = (None, b"")
    set_value(self, new_value)

FakeKey.value = property(value_read_once, set_value_forgetting_last_read)

# --- setup (model-cdn-deploy setup) ---
import json
from moto.s3.exceptions import S3ClientError
from moto.core.responses import ActionResult, EmptyResult
from moto.cloudfront import responses as cloudfront_responses
from moto.iam.responses import IamResponse

# HeadBucket of a bucket in another region: AWS answers 301 with x-amz-bucket-region (setup
# names that region); moto answers 200 from any region.
head_bucket = S3Response.head_bucket

def regional_head_bucket(self):
    status, headers, body = head_bucket(self)
    region = headers.get("x-amz-bucket-region")
    if status == 200 and region and region != self.region:
        return 301, {"x-amz-bucket-region": region}, ""
    return status, headers, body

S3Response.head_bucket = regional_head_bucket

# BlockPublicPolicy: AWS refuses (403) a bucket policy that grants anyone access; moto stores it.
# The plain case is enough here: Allow to "*" (or {"AWS": "*"}) without a Condition.
class PublicPolicyBlocked(S3ClientError):
    def __init__(self):
        super().__init__(
            "AccessDenied",
            "User is not authorized to perform: s3:PutBucketPolicy because public policies are "
            "blocked by the BlockPublicPolicy block public access setting.",
        )

def grants_anyone(statement):
    principal = statement.get("Principal")
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    everyone = principal == "*" or aws == "*" or (isinstance(aws, list) and "*" in aws)
    return statement.get("Effect") == "Allow" and everyone and not statement.get("Condition")

put_bucket_policy = S3Backend.put_bucket_policy

def guarded_put_bucket_policy(self, bucket_name, policy):
    block = self.get_bucket(bucket_name).public_access_block
    statements = json.loads(policy).get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    if block and block.block_public_policy and any(grants_anyone(s) for s in statements):
        raise PublicPolicyBlocked()
    return put_bucket_policy(self, bucket_name, policy)

S3Backend.put_bucket_policy = guarded_put_bucket_policy

# A lifecycle rule with a tag filter cannot abort incomplete multipart uploads (AWS: 400
# InvalidRequest); moto accepts it.
class TaggedAbortRule(S3ClientError):
    def __init__(self):
        super().__init__("InvalidRequest", "AbortIncompleteMultipartUpload cannot be specified with Tags.")

put_lifecycle = S3Backend.put_bucket_lifecycle_configuration

def checked_put_lifecycle(self, bucket_name, rules):
    for rule in rules:
        rule_filter = rule.get("Filter") or {}
        tagged = "Tag" in rule_filter or "Tag" in (rule_filter.get("And") or {})
        if tagged and rule.get("AbortIncompleteMultipartUpload"):
            raise TaggedAbortRule()
    return put_lifecycle(self, bucket_name, rules)

S3Backend.put_bucket_lifecycle_configuration = checked_put_lifecycle

# ListDistributions: moto's summaries lack the configuration (Comment, Origins, behaviours...);
# AWS's DistributionSummary carries them, and setup finds its distribution again by them.
for member in ("Comment", "Origins", "OriginGroups", "DefaultCacheBehavior", "CacheBehaviors",
               "Aliases", "Enabled", "PriceClass", "HttpVersion", "IsIPV6Enabled",
               "ViewerCertificate", "Restrictions", "WebACLId", "CustomErrorResponses"):
    setattr(models.Distribution, member,
            property(lambda self, m=member: getattr(self.distribution_config, m)))

# UpdateKeyGroup: no handler in moto 5.2 (a 500); IfMatch unchecked, like moto's other updates.
def update_key_group(self):
    group = self.backend.get_key_group(group_id=self._get_param("Id"))
    group.name = self._get_param("KeyGroupConfig.Name")
    group.items = self._get_param("KeyGroupConfig.Items", [])
    group.etag = models.random_id(length=14)
    return ActionResult({"KeyGroup": group, "ETag": group.etag})

cloudfront_responses.CloudFrontResponse.update_key_group = update_key_group

# IAM AddClientIDToOpenIDConnectProvider: no handler in moto 5.2 (a 500).
def add_client_id_to_open_id_connect_provider(self):
    provider = self.backend.get_open_id_connect_provider(self._get_param("OpenIDConnectProviderArn"))
    client_id = self._get_param("ClientID")
    if client_id not in provider.client_id_list:
        provider.client_id_list.append(client_id)
    return EmptyResult()

IamResponse.add_client_id_to_open_id_connect_provider = add_client_id_to_open_id_connect_provider

from moto.server import main
main()
`

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/** `name` itself when it is a path, else the first executable called `name` on PATH. */
function findOnPath(name) {
  if (name.includes('/')) return isExecutable(name) ? name : undefined
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name)
  }
  return undefined
}

/** The interpreter a Python console script runs with, from its `#!` line; else undefined. */
function shebangPython(script) {
  let first = ''
  try {
    const fd = openSync(script, 'r')
    try {
      const buffer = Buffer.alloc(256)
      first = buffer
        .subarray(0, readSync(fd, buffer, 0, 256, 0))
        .toString('utf8')
        .split('\n')[0]
    } finally {
      closeSync(fd)
    }
  } catch {
    return undefined
  }
  const match = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first)
  if (!match) return undefined
  const interpreter = match[1].endsWith('/env') ? match[2] && findOnPath(match[2]) : match[1]
  return interpreter && /python[\d.]*$/.test(interpreter) ? interpreter : undefined
}

/**
 * The Python that has moto: `$MOTO_PYTHON`, the one moto_server's script names, or python3 on PATH
 * (a pyenv shim resolves python3 and moto_server to the same version).
 */
function motoPython(executable) {
  const python =
    (process.env.MOTO_PYTHON && findOnPath(process.env.MOTO_PYTHON)) ??
    shebangPython(executable) ??
    findOnPath('python3')
  if (!python) {
    throw new Error(
      `Found ${executable} but not the Python that runs it (needed to apply MOTO_PATCH). ` +
        'Set MOTO_PYTHON to that interpreter, or pass { patchMoto: false }.'
    )
  }
  return python
}

async function freePort(host) {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Resolves true when anything answers HTTP at host:port. */
function answers(host, port) {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/moto-api/', method: 'GET', timeout: 1000 }, (res) => {
      res.resume()
      resolve(true)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(false))
    req.end()
  })
}

function tail(file, max = 4000) {
  try {
    const text = readFileSync(file, 'utf8')
    return text.length > max ? `…${text.slice(-max)}` : text
  } catch {
    return ''
  }
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * Starts moto_server on a free loopback port.
 * @param {{ command?: string, host?: string, readyTimeoutMs?: number, patchMoto?: boolean }} [options]
 */
export async function startEmulator(options = {}) {
  const command = options.command ?? process.env.MOTO_SERVER_COMMAND ?? 'moto_server'
  const host = options.host ?? '127.0.0.1'
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000

  const executable = findOnPath(command)
  if (!executable) {
    throw new Error(
      `The AWS emulator \`${command}\` was not found on PATH. The integration tests and the demo ` +
        `need it (they are never skipped). ${INSTALL_HINT}`
    )
  }

  // The patched server is moto's own, started from its Python with MOTO_PATCH applied first.
  const [program, args] =
    options.patchMoto === false ? [executable, []] : [motoPython(executable), ['-c', MOTO_PATCH]]

  let lastError
  // A port found free can be taken before moto binds it: try a few.
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort(host)
    try {
      return await launch(program, args, host, port, readyTimeoutMs)
    } catch (err) {
      lastError = err
      if (!err.portInUse) break
    }
  }
  throw lastError
}

async function launch(executable, args, host, port, readyTimeoutMs) {
  const logFile = join(tmpdir(), `moto-server-${process.pid}-${port}.log`)
  const logFd = openSync(logFile, 'w')
  const child = spawn(executable, [...args, '-H', host, '-p', String(port)], {
    detached: true, // own process group, so stop() also reaches the children of the pyenv shim
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, PYTHONUNBUFFERED: '1' }
  })
  closeSync(logFd)
  child.unref()

  let exited = false
  let exitInfo = ''
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = true
      exitInfo = signal ? `signal ${signal}` : `exit code ${code}`
      resolve()
    })
  })
  let spawnError
  child.on('error', (err) => {
    spawnError = err
    exited = true
  })
  // Wait for the spawn to settle so a missing executable surfaces as an error, not a hang.
  await new Promise((resolve) => {
    child.once('spawn', resolve)
    child.once('error', resolve)
  })
  if (spawnError) {
    rmSync(logFile, { force: true })
    const hint = spawnError.code === 'ENOENT' ? ` ${INSTALL_HINT}` : ''
    throw new Error(`Could not start ${executable}: ${spawnError.message}.${hint}`)
  }
  const pid = child.pid

  const guard = spawn(process.execPath, ['-e', GUARD_SOURCE, String(pid)], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore']
  })
  guard.unref()
  guard.stdin.on('error', () => undefined)
  guard.stdin.unref?.()

  const onExit = () => killGroup(pid, 'SIGKILL')
  process.on('exit', onExit)

  let stopped
  const stop = () => {
    stopped ??= (async () => {
      process.off('exit', onExit)
      if (!exited) {
        killGroup(pid, 'SIGTERM')
        const deadline = Date.now() + 5000
        while (!exited && Date.now() < deadline) await sleep(50)
      }
      killGroup(pid, 'SIGKILL') // stragglers of the group, if any
      guard.stdin.end()
      await Promise.race([exitPromise, sleep(1000)])
      rmSync(logFile, { force: true })
    })()
    return stopped
  }

  const deadline = Date.now() + readyTimeoutMs
  while (!(await answers(host, port))) {
    if (exited) {
      const log = tail(logFile)
      await stop()
      const portInUse = /address already in use/i.test(log)
      const err = new Error(
        `moto_server (${executable}) exited (${exitInfo}) before answering on ${host}:${port}.` +
          (portInUse ? '' : ` Is moto installed with its server extra? ${INSTALL_HINT}`) +
          (log ? `\n--- moto_server output ---\n${log}` : '')
      )
      err.portInUse = portInUse
      throw err
    }
    if (Date.now() > deadline) {
      const log = tail(logFile)
      await stop()
      throw new Error(
        `moto_server did not answer on ${host}:${port} within ${readyTimeoutMs} ms.` +
          (log ? `\n--- moto_server output ---\n${log}` : '')
      )
    }
    await sleep(100)
  }

  return { endpoint: `http://${host}:${port}`, host, port, pid, logFile, stop }
}

/** S3 and CloudFront clients for the emulator (path-style, test credentials, us-east-1). */
export function makeClients(endpoint) {
  const common = {
    endpoint,
    region: TEST_REGION,
    // A fresh object per client: the SDK annotates the credentials object it is given.
    credentials: { accessKeyId: TEST_ACCESS_KEY_ID, secretAccessKey: TEST_SECRET_ACCESS_KEY },
    maxAttempts: 2
  }
  return {
    s3: new S3Client({
      ...common,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED'
    }),
    cloudfront: new CloudFrontClient(common)
  }
}

/**
 * Creates the bucket and the distribution in front of it, as the tutorial does. With `signing`,
 * the public key goes into a key group that the default cache behavior trusts (signed URLs only).
 * @param {string} endpoint
 * @param {{ bucket: string, signing?: { publicKeyPem: string } }} options
 */
export async function setupWorld(endpoint, { bucket, signing }) {
  const { s3, cloudfront } = makeClients(endpoint)
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }))
    await s3.send(
      new PutBucketVersioningCommand({
        Bucket: bucket,
        VersioningConfiguration: { Status: 'Enabled' }
      })
    )
    await s3.send(
      new PutPublicAccessBlockCommand({
        Bucket: bucket,
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          IgnorePublicAcls: true,
          BlockPublicPolicy: true,
          RestrictPublicBuckets: true
        }
      })
    )
    // Parts of interrupted multipart uploads would otherwise stay stored (and billed) forever.
    await s3.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: {
          Rules: [
            {
              ID: 'abort-incomplete-multipart-uploads',
              Status: 'Enabled',
              Filter: { Prefix: '' },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 }
            }
          ]
        }
      })
    )

    let publicKeyId
    let keyGroupId
    if (signing) {
      const key = await cloudfront.send(
        new CreatePublicKeyCommand({
          PublicKeyConfig: {
            CallerReference: `${bucket}-key-${Date.now()}`,
            Name: `${bucket}-signing-key`,
            EncodedKey: signing.publicKeyPem
          }
        })
      )
      publicKeyId = key.PublicKey?.Id
      if (!publicKeyId) throw new Error('CreatePublicKey returned no id')
      const group = await cloudfront.send(
        new CreateKeyGroupCommand({
          KeyGroupConfig: { Name: `${bucket}-key-group`, Items: [publicKeyId] }
        })
      )
      keyGroupId = group.KeyGroup?.Id
      if (!keyGroupId) throw new Error('CreateKeyGroup returned no id')
    }

    const oac = await cloudfront.send(
      new CreateOriginAccessControlCommand({
        OriginAccessControlConfig: {
          Name: `${bucket}-oac`,
          Description: 'OAC for model artifact CDN',
          SigningProtocol: 'sigv4',
          SigningBehavior: 'always',
          OriginAccessControlOriginType: 's3'
        }
      })
    )
    const oacId = oac.OriginAccessControl?.Id
    if (!oacId) throw new Error('CreateOriginAccessControl returned no id')

    const originId = `${bucket}-s3-origin`
    const dist = await cloudfront.send(
      new CreateDistributionCommand({
        DistributionConfig: {
          CallerReference: `${bucket}-${Date.now()}`,
          Comment: 'Model artifact CDN',
          Enabled: true,
          PriceClass: 'PriceClass_100',
          HttpVersion: 'http2and3',
          Origins: {
            Quantity: 1,
            Items: [
              {
                Id: originId,
                DomainName: `${bucket}.s3.${TEST_REGION}.amazonaws.com`,
                S3OriginConfig: { OriginAccessIdentity: '' },
                OriginAccessControlId: oacId
              }
            ]
          },
          DefaultCacheBehavior: {
            TargetOriginId: originId,
            ViewerProtocolPolicy: 'redirect-to-https',
            AllowedMethods: {
              Quantity: 2,
              Items: ['GET', 'HEAD'],
              CachedMethods: { Quantity: 2, Items: ['GET', 'HEAD'] }
            },
            CachePolicyId: '658327ea-f89d-4fab-a63d-7e88639e58f6', // CachingOptimized
            Compress: true,
            TrustedKeyGroups: keyGroupId
              ? { Enabled: true, Quantity: 1, Items: [keyGroupId] }
              : { Enabled: false, Quantity: 0 }
          }
        }
      })
    )
    const distributionId = dist.Distribution?.Id
    const domain = dist.Distribution?.DomainName
    const distributionArn = dist.Distribution?.ARN
    if (!distributionId || !domain || !distributionArn) {
      throw new Error('CreateDistribution returned no id, domain or ARN')
    }

    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: bucket,
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'AllowCloudFrontServicePrincipal',
              Effect: 'Allow',
              Principal: { Service: 'cloudfront.amazonaws.com' },
              Action: 's3:GetObject',
              Resource: `arn:aws:s3:::${bucket}/*`,
              Condition: { StringEquals: { 'AWS:SourceArn': distributionArn } }
            }
          ]
        })
      })
    )

    return {
      bucket,
      distributionId,
      domain,
      distributionArn,
      oacId,
      originId,
      ...(signing ? { publicKeyId, keyGroupId } : {})
    }
  } finally {
    s3.destroy()
    cloudfront.destroy()
  }
}
