import type { S3Client } from '@aws-sdk/client-s3'
import { ConcurrentPublishError } from '../common/errors.js'
import { headObject, objectDifference, type IntendedObject } from './stored-objects.js'

/**
 * Every write of a key is conditional, so that a key another run wrote after this run's plan is
 * never replaced unseen: a new key is created only if still absent (`If-None-Match: *`), an
 * overwrite replaces only the object the plan saw (`If-Match`). Without the ETag (a store that
 * lists none) the overwrite is unconditional.
 */
export function writeCondition(target: { existed: boolean; storedETag?: string }): {
  IfNoneMatch?: string
  IfMatch?: string
} {
  if (!target.existed) return { IfNoneMatch: '*' }
  return target.storedETag ? { IfMatch: target.storedETag } : {}
}

/** Thrown by a write whose condition failed; the caller then reads the key again (settleLostRace). */
export class LostRace extends Error {
  constructor(
    readonly key: string,
    options?: { cause?: unknown }
  ) {
    super(`The conditional write of ${key} lost a race with another writer.`, options)
    this.name = 'LostRace'
  }
}

/**
 * After a lost race the key is read again, never written blindly: if it holds what this run
 * would have written, the file counts as already there (skipped); otherwise the run fails, naming
 * the key and what the other run left in it.
 */
export async function settleLostRace(
  s3: S3Client,
  where: { bucket: string; prefix: string; relativePath: string; key: string },
  intended: IntendedObject
): Promise<void> {
  const stored = await headObject(s3, where.bucket, where.key)
  const difference = stored
    ? objectDifference(stored, intended)
    : 'the object was deleted after this run planned it'
  if (difference === undefined) return
  throw new ConcurrentPublishError(
    `Another run wrote s3://${where.bucket}/${where.key} (${where.relativePath}) while this run was ` +
      `publishing ${where.prefix}: ${difference}. That run's object was kept; this run stopped.`,
    `Two runs published ${where.prefix} at once. Publish different bytes under a new \`version-prefix\`; ` +
      'a run of the same bytes succeeds once it runs again.'
  )
}
