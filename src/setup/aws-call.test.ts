import { jest } from '@jest/globals'
import { AwsError } from '../common/errors.js'
import { awsError, denied } from '../../__fixtures__/preflight-world.js'
import { setupContext } from '../../__fixtures__/setup-context.js'
import { applyChanges, awsCall, listAll } from './aws-call.js'
import type { SetupChange } from './types.js'

const call = { doing: 'doing x', permission: 'cloudfront:X' }

describe('awsCall', () => {
  it('explains any other AWS error with what setup was doing', async () => {
    const err = await awsCall({}, call, () =>
      Promise.reject(awsError('Throttling', 400, 'Rate exceeded'))
    ).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AwsError)
    expect((err as AwsError).message).toContain(
      'Failed doing x (cloudfront:X): AWS said Throttling'
    )
  })

  it('names the IAM action a refusal needs, with a hint for setup', async () => {
    const bucketCall = { ...call, permission: 's3:PutBucketPolicy', bucket: 'models' }
    const err = (await awsCall({}, bucketCall, () => Promise.reject(denied())).catch(
      (e: unknown) => e
    )) as AwsError
    expect(err).toBeInstanceOf(AwsError)
    expect(err.message).toContain('Failed doing x (s3:PutBucketPolicy): AWS said AccessDenied')
    expect(err.hint).toContain('may not call s3:PutBucketPolicy on bucket "models"')
  })

  it('does not take a 403 about the credentials themselves for a refusal', async () => {
    const err = (await awsCall({}, call, () =>
      Promise.reject(awsError('InvalidClientTokenId', 403, 'bad'))
    ).catch((e: unknown) => e)) as AwsError
    expect(err.hint).toContain('credentials are missing, wrong or expired')
  })

  it('answers undefined for an error that means "not there"', async () => {
    const missing = () => Promise.reject(awsError('NoSuchTagSet', 404))
    await expect(awsCall({}, call, missing, ['NoSuchTagSet'])).resolves.toBeUndefined()
    await expect(awsCall({}, call, missing, ['NoSuchBucketPolicy'])).rejects.toThrow('NoSuchTagSet')
  })

  it('passes the run’s abort signal on', async () => {
    const signal = new AbortController().signal
    const send = jest.fn(async (options: { abortSignal?: AbortSignal }) => options.abortSignal)
    await expect(awsCall({ signal }, call, send)).resolves.toBe(signal)
  })
})

describe('applyChanges', () => {
  const change: SetupChange = { resource: 'r', action: 'create', detail: 'd' }

  it('records a change only once it is made', async () => {
    const { ctx, changes } = setupContext()
    await expect(
      applyChanges(ctx, [change], () => Promise.reject(new Error('no')))
    ).rejects.toThrow('no')
    expect(changes).toEqual([])
    await expect(applyChanges(ctx, [change], async () => 'made')).resolves.toBe('made')
    expect(changes).toEqual([change])
  })

  it('in a dry run, records it without making it; with nothing to change, writes nothing', async () => {
    const write = jest.fn(async () => 'made')
    const dry = setupContext(true)
    await expect(applyChanges(dry.ctx, [change], write)).resolves.toBeUndefined()
    expect(dry.changes).toEqual([change])
    const real = setupContext()
    await expect(applyChanges(real.ctx, [], write)).resolves.toBeUndefined()
    expect(write).not.toHaveBeenCalled()
  })
})

describe('listAll', () => {
  it('reads page after page until there is no next marker', async () => {
    const pages: Record<string, { Items: number[]; NextMarker?: string }> = {
      first: { Items: [1, 2], NextMarker: 'm2' },
      m2: { Items: [3], NextMarker: '' }
    }
    await expect(listAll(async (marker) => pages[marker ?? 'first'])).resolves.toEqual([1, 2, 3])
  })
})
