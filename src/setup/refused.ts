import { operationOf } from '../aws/clients.js'
import { DeployError, awsErrorCode } from '../common/errors.js'

/** Where an API operation's IAM action has another name than the operation. */
const IAM_ACTION: Record<string, string> = {
  's3:HeadBucket': 's3:ListBucket',
  's3:ListObjectsV2': 's3:ListBucket',
  's3:GetBucketLifecycleConfiguration': 's3:GetLifecycleConfiguration',
  's3:PutBucketLifecycleConfiguration': 's3:PutLifecycleConfiguration',
  's3:GetPublicAccessBlock': 's3:GetBucketPublicAccessBlock',
  's3:PutPublicAccessBlock': 's3:PutBucketPublicAccessBlock',
  'cloudfront:CreateDistributionWithTags': 'cloudfront:CreateDistribution and cloudfront:TagResource'
}

const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'Forbidden'])

/**
 * A refused call as one clear error naming the IAM action to grant; undefined for any other
 * error. (S3 answers a HEAD with a bare 403, so the action is the only useful thing to say.)
 */
export function refusedPermission(err: unknown): DeployError | undefined {
  const operation = operationOf(err)
  if (!operation || !DENIED.has(awsErrorCode(err) ?? '')) return undefined
  const action = IAM_ACTION[operation] ?? operation
  return new DeployError(
    `AWS refused ${action} (${operation.split(':')[1]}): the credentials in use lack that permission.`,
    `Grant ${action} to the identity running setup, or run it with an administrator's credentials; docs/setup.md lists every permission setup uses.`
  )
}
