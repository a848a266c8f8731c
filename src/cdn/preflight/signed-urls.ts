/**
 * The signed-urls check: every behaviour serving the version prefix requires signed URLs and
 * trusts a key group holding the public key they are signed with.
 */
import {
  GetKeyGroupCommand,
  GetPublicKeyCommand,
  ListKeyGroupsCommand,
  type CloudFrontClient,
  type KeyGroup
} from '@aws-sdk/client-cloudfront'
import { awsErrorCode } from '../../common/errors.js'
import { capitalise, type Behavior, type ServingBehavior } from './behaviors.js'
import { read, readFailure, type Read } from './read.js'
import type { PreflightFinding, PreflightTarget } from './types.js'

const CHECK = 'signed-urls'

/** The key groups the serving behaviours trust, by ID, as read. */
type KeyGroups = Map<string, Read<KeyGroup | undefined>>
/** Whether the key exists, and every key group of the account. */
type KeyWhereabouts = [publicKey: Read<unknown>, allGroups: Read<KeyGroup[]>]

interface SigningContext {
  target: PreflightTarget
  /** The distribution's ID. */
  id: string
  keyId: string
  groups: KeyGroups
  /** Read at most once, and only for a behaviour whose trusted groups lack the key. */
  locateKey: () => Promise<KeyWhereabouts>
}

export async function signedUrlChecks(
  cloudfront: CloudFrontClient,
  target: PreflightTarget,
  id: string,
  serving: ServingBehavior[],
  keyId: string,
  signal: AbortSignal | undefined
): Promise<PreflightFinding[]> {
  const ids = [...new Set(serving.flatMap((s) => trustedKeyGroupIds(s.behavior)))]
  const groups = await readKeyGroups(cloudfront, ids, signal)
  // Only when the key is in no trusted group: where it is, if anywhere, makes the fix exact.
  let whereabouts: Promise<KeyWhereabouts> | undefined
  const locateKey = () =>
    (whereabouts ??= Promise.all([
      read(cloudfront.send(new GetPublicKeyCommand({ Id: keyId }), { abortSignal: signal })),
      read(listKeyGroups(cloudfront, signal))
    ]))

  const context: SigningContext = { target, id, keyId, groups, locateKey }
  const findings: PreflightFinding[] = []
  for (const behavior of serving) findings.push(await behaviorCheck(context, behavior))
  return findings
}

function trustedKeyGroupIds(behavior: Behavior): string[] {
  return behavior.TrustedKeyGroups?.Enabled ? (behavior.TrustedKeyGroups.Items ?? []) : []
}

async function readKeyGroups(
  cloudfront: CloudFrontClient,
  ids: string[],
  signal: AbortSignal | undefined
): Promise<KeyGroups> {
  return new Map(
    await Promise.all(
      ids.map(
        async (g) =>
          [
            g,
            await read(
              cloudfront
                .send(new GetKeyGroupCommand({ Id: g }), { abortSignal: signal })
                .then((r) => r.KeyGroup)
            )
          ] as const
      )
    )
  )
}

async function listKeyGroups(
  cloudfront: CloudFrontClient,
  signal: AbortSignal | undefined
): Promise<KeyGroup[]> {
  const all: KeyGroup[] = []
  let marker: string | undefined
  do {
    const { KeyGroupList: list } = await cloudfront.send(
      new ListKeyGroupsCommand({ Marker: marker }),
      {
        abortSignal: signal
      }
    )
    for (const item of list?.Items ?? []) if (item.KeyGroup) all.push(item.KeyGroup)
    marker = list?.NextMarker || undefined
  } while (marker)
  return all
}

/** Where a finding is: `<behaviour label> of distribution <id>`. */
function behaviorOf(id: string, label: string): string {
  return `${label} of distribution ${id}`
}

function keyGroupNames(ids: string[], groups: KeyGroups): string {
  return ids
    .map((g) => {
      const name = groups.get(g)?.value?.KeyGroupConfig?.Name
      return name ? `${g} (${name})` : g
    })
    .join(', ')
}

/** One finding for one serving behaviour. */
async function behaviorCheck(
  context: SigningContext,
  serving: ServingBehavior
): Promise<PreflightFinding> {
  const { target, id, keyId, groups } = context
  const where = behaviorOf(id, serving.label)
  const groupIds = trustedKeyGroupIds(serving.behavior)
  if (groupIds.length === 0) return noKeyGroupCheck(context, serving)
  const holding = groupIds.filter((g) =>
    groups.get(g)?.value?.KeyGroupConfig?.Items?.includes(keyId)
  )
  if (holding.length > 0) {
    return {
      check: CHECK,
      status: 'ok',
      message: `${capitalise(where)} trusts key group ${keyGroupNames(holding.slice(0, 1), groups)}, which holds public key ${keyId}.`
    }
  }
  const unreadable = groupIds.find((g) => {
    const got = groups.get(g)
    return got?.ok === false && awsErrorCode(got.err) !== 'NoSuchResource'
  })
  if (unreadable !== undefined) {
    const what = `that public key ${keyId} is in a key group trusted by ${where}`
    return readFailure(CHECK, what, 'getKeyGroup', groups.get(unreadable)?.err, target)
  }
  return keyNotTrustedCheck(context, serving, groupIds)
}

/** A behaviour that trusts no key group: legacy trusted signers, or no restriction at all. */
function noKeyGroupCheck(
  { target, id, keyId }: SigningContext,
  { label, behavior }: ServingBehavior
): PreflightFinding {
  const where = behaviorOf(id, label)
  const signers = behavior.TrustedSigners
  if (signers?.Enabled && signers.Items?.length) {
    return {
      check: CHECK,
      status: 'warning',
      message: `${capitalise(where)} trusts legacy CloudFront key pairs of account(s) ${signers.Items.join(', ')} (trusted signers), not key groups: pre-flight cannot check that key ${keyId} is one of them.`,
      fix: `Move to a trusted key group: upload the public key (CloudFront → Key management → Public keys), put it in a key group, and select that group under Behaviors → Edit → Restrict viewer access → Trusted key groups.`
    }
  }
  return {
    check: CHECK,
    status: 'error',
    message: `${capitalise(where)} does not restrict viewer access: CloudFront serves /${target.versionPrefix}/… to anyone, signed URL or not, so signing protects nothing.`,
    fix:
      `Restrict it to a key group holding public key ${keyId}: CloudFront console → Distributions → ${id} → Behaviors → ${label} → Edit → ` +
      `Restrict viewer access: Yes → Trusted key groups → add the group (create it under Key management → Key groups). ` +
      `In the distribution config: TrustedKeyGroups = {"Enabled":true,"Quantity":1,"Items":["<key group id>"]}.`
  }
}

/**
 * A behaviour whose trusted key groups (those that exist) lack the key: the error, and a fix
 * that depends on where the key is, if anywhere.
 */
async function keyNotTrustedCheck(
  context: SigningContext,
  { label }: ServingBehavior,
  groupIds: string[]
): Promise<PreflightFinding> {
  const { id, keyId, groups } = context
  const missing = groupIds.filter((g) => groups.get(g)?.ok === false)
  const existing = groupIds.filter((g) => !missing.includes(g))
  const trustedText =
    (existing.length
      ? `it trusts key group(s) ${keyGroupNames(existing, groups)}`
      : 'it trusts no existing key group') +
    (missing.length ? ` (key group(s) ${missing.join(', ')} it names do not exist)` : '')
  const [publicKey, allGroups] = await context.locateKey()
  const message = (problem: string): string =>
    `${problem} ${capitalise(behaviorOf(id, label))} requires signed URLs, and ${trustedText}: CloudFront answers 403 to every URL signed with ${keyId}.`
  if (awsErrorCode(publicKey.err) === 'NoSuchPublicKey') {
    return {
      check: CHECK,
      status: 'error',
      message: message(`No public key with ID ${keyId} exists in this account.`),
      fix: `Set \`signing-key-pair-id\` to the ID of the public key that matches the private key (CloudFront → Key management → Public keys, or \`aws cloudfront list-public-keys\`), and make sure it is in ${existing[0] ?? 'a key group the behavior trusts'}.`
    }
  }
  const holder = (allGroups.value ?? []).find((g) => g.KeyGroupConfig?.Items?.includes(keyId))
  if (holder) {
    return {
      check: CHECK,
      status: 'error',
      message: message(
        `Public key ${keyId} is in key group ${holder.Id} (${holder.KeyGroupConfig?.Name}), which ${label} does not trust.`
      ),
      fix: trustHolderFix(context, label, holder, existing[0])
    }
  }
  return {
    check: CHECK,
    status: 'error',
    message: message(
      `Public key ${keyId} is not in any key group ${label} trusts${allGroups.value ? ' (nor in any other key group)' : ''}.`
    ),
    fix: addKeyFix(context, label, existing[0])
  }
}

/** The key is in a group the behaviour does not trust: trust that group, or move the key. */
function trustHolderFix(
  { id, keyId }: SigningContext,
  label: string,
  holder: KeyGroup,
  trustedGroup: string | undefined
): string {
  return (
    `Add key group ${holder.Id} to the trusted key groups of ${label}: CloudFront console → Distributions → ${id} → Behaviors → Edit → ` +
    `Trusted key groups → add "${holder.KeyGroupConfig?.Name}" (config: TrustedKeyGroups.Items += "${holder.Id}"), ` +
    `or add public key ${keyId} to ${trustedGroup ?? 'a trusted key group'}.`
  )
}

/** The key is in no group (as far as pre-flight can tell): add it to a trusted one. */
function addKeyFix(
  { keyId, groups }: SigningContext,
  label: string,
  addTo: string | undefined
): string {
  return addTo
    ? `Add public key ${keyId} to key group ${addTo}: CloudFront console → Key management → Key groups → ${keyGroupNames([addTo], groups)} → Edit → add the key ` +
        `(CLI: \`aws cloudfront get-key-group-config --id ${addTo}\`, add "${keyId}" to Items, then \`aws cloudfront update-key-group --id ${addTo} --if-match <ETag> --key-group-config file://key-group.json\`); ` +
        'or, if the URLs are signed with another key, set `signing-key-pair-id` to that public key ID.'
    : `Create a key group holding public key ${keyId} (CloudFront → Key management → Key groups) and trust it in ${label} (Behaviors → Edit → Trusted key groups).`
}
