import { jest } from '@jest/globals'
import {
  AccessDenied,
  CloudFrontClient,
  CloudFrontServiceException,
  CreateInvalidationCommand,
  GetInvalidationCommand,
  NoSuchInvalidation,
  TooManyInvalidationsInProgress
} from '@aws-sdk/client-cloudfront'
import { mockClient } from 'aws-sdk-client-mock'
import { AwsError, InputError } from '../common/errors.js'
import {
  callerReference,
  createInvalidations,
  planInvalidation,
  toBatches,
  toInvalidationPath,
  validateExtraPath,
  waitForInvalidations
} from './invalidation.js'
import type { Logger } from '../common/types.js'

const cfMock = mockClient(CloudFrontClient)
const cf = new CloudFrontClient({ region: 'us-east-1' })
const DIST = 'E2EXAMPLE123'

function recordingLogger() {
  const lines: { info: string[]; warning: string[] } = { info: [], warning: [] }
  const logger: Logger = {
    info: (m) => void lines.info.push(m),
    warning: (m) => void lines.warning.push(m),
    debug: () => undefined
  }
  return { logger, lines }
}

const tooMany = () =>
  new TooManyInvalidationsInProgress({
    message: 'Processing your request will cause you to exceed the maximum number of invalidations',
    $metadata: { httpStatusCode: 400 }
  })
const accessDenied = () =>
  new AccessDenied({ message: 'User is not authorized', $metadata: { httpStatusCode: 403 } })

beforeEach(() => cfMock.reset())

describe('toInvalidationPath', () => {
  it('adds the leading slash and leaves plain keys alone', () => {
    expect(toInvalidationPath('models/v1/model.onnx')).toBe('/models/v1/model.onnx')
  })

  it('encodes spaces and non-ASCII characters as upper-case UTF-8 escapes', () => {
    expect(toInvalidationPath('models/v1/my model.onnx')).toBe('/models/v1/my%20model.onnx')
    expect(toInvalidationPath('modèles/日本語 v2.onnx')).toBe(
      '/mod%C3%A8les/%E6%97%A5%E6%9C%AC%E8%AA%9E%20v2.onnx'
    )
    expect(toInvalidationPath('v1/😀.bin')).toBe('/v1/%F0%9F%98%80.bin')
  })

  it('encodes ~ ? # % and a literal * so none of them changes the meaning of the path', () => {
    expect(toInvalidationPath('v1/~user/a?b#c%d*e.bin')).toBe('/v1/%7Euser/a%3Fb%23c%25d%2Ae.bin')
    expect(toInvalidationPath('v1/*')).toBe('/v1/%2A')
  })

  it('encodes the other RFC 1738 unsafe characters and control characters', () => {
    expect(toInvalidationPath('a"<>{}|\\^[]`b')).toBe('/a%22%3C%3E%7B%7D%7C%5C%5E%5B%5D%60b')
    expect(toInvalidationPath('a\tb\x7fc')).toBe('/a%09b%7Fc')
  })

  it('does not encode the characters CloudFront wants verbatim', () => {
    const verbatim = "v1/a-b_c.d!e$f&g'h(i)j+k,l;m=n:o@p/Q9.onnx"
    expect(toInvalidationPath(verbatim)).toBe('/' + verbatim)
  })
})

describe('validateExtraPath', () => {
  it('returns valid paths unchanged', () => {
    for (const path of [
      '/index.html',
      '/models/*',
      '/*',
      '/a%20b.onnx',
      '/docs?lang=en',
      '/img*'
    ]) {
      expect(validateExtraPath(path)).toBe(path)
    }
  })

  it.each([
    ['models/*', /does not start with "\/"/, /"\/models\/\*"/],
    ['/models/*/a.onnx', /"\*" before its end/, /only as the last character/],
    ['/a b.onnx', /unencoded character " "/, /%20/],
    ['/a\tb', /unencoded character "\\t"/, /%09/],
    ['/日本.onnx', /unencoded character "日"/, /%E6%97%A5/],
    ['/' + 'a'.repeat(4000), /is 4001 characters long/, /at most 4000/]
  ])('rejects %j with an actionable InputError', (path, message, hint) => {
    let error: unknown
    try {
      validateExtraPath(path)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(InputError)
    expect((error as InputError).message).toMatch(message)
    expect((error as InputError).hint).toMatch(hint)
  })
})

describe('planInvalidation', () => {
  it('keeps single paths when an unchanged key shares the directory', () => {
    const paths = planInvalidation({
      keys: ['m/v1/a/x.onnx', 'm/v1/a/y.onnx'],
      keysUnderPrefix: ['m/v1/a/x.onnx', 'm/v1/a/y.onnx', 'm/v1/a/deep/old.onnx'],
      extraPaths: []
    })
    expect(paths).toEqual(['/m/v1/a/x.onnx', '/m/v1/a/y.onnx'])
  })

  it('collapses the highest directory whose keys all changed, and nothing above the listed prefix', () => {
    const keysUnderPrefix = [
      'm/v1/a/b/1.bin',
      'm/v1/a/b/2.bin',
      'm/v1/a/c/3.bin',
      'm/v1/a/c/4.bin',
      'm/v1/a/5.bin',
      'm/v1/d/6.bin'
    ]
    const changedButD = keysUnderPrefix.slice(0, 5)
    expect(planInvalidation({ keys: changedButD, keysUnderPrefix, extraPaths: [] })).toEqual([
      '/m/v1/a/*'
    ])
    // Everything changed: the version prefix itself, never /m/* (other versions live there) or /*.
    expect(planInvalidation({ keys: keysUnderPrefix, keysUnderPrefix, extraPaths: [] })).toEqual([
      '/m/v1/*'
    ])
  })

  it('needs at least two paths to replace and encodes the directory', () => {
    const paths = planInvalidation({
      keys: ['v1/my models/a.onnx', 'v1/my models/b.onnx', 'v1/solo/c.onnx'],
      keysUnderPrefix: [
        'v1/my models/a.onnx',
        'v1/my models/b.onnx',
        'v1/solo/c.onnx',
        'v1/keep.json'
      ],
      extraPaths: []
    })
    expect(paths).toEqual(['/v1/my%20models/*', '/v1/solo/c.onnx'])
  })

  it('never uses the bucket root as a wildcard', () => {
    const keys = ['a.bin', 'b.bin']
    expect(planInvalidation({ keys, keysUnderPrefix: keys, extraPaths: [] })).toEqual([
      '/a.bin',
      '/b.bin'
    ])
  })

  // 17 fully changed directories: dir dNN holds NN + 2 files, so larger NN saves more paths.
  const seventeenDirs = () => {
    const keys: string[] = []
    for (let d = 0; d < 17; d++) {
      const dir = `v1/d${String(d).padStart(2, '0')}`
      for (let f = 0; f < d + 2; f++) keys.push(`${dir}/f${f}.bin`)
    }
    return { keys, keysUnderPrefix: [...keys, 'v1/unchanged.json'] }
  }

  it('uses at most 15 wildcards, keeping the directories that save the most paths', () => {
    const paths = planInvalidation({ ...seventeenDirs(), extraPaths: [] })
    const wildcards = paths.filter((p) => p.endsWith('/*'))
    expect(wildcards).toHaveLength(15)
    expect(wildcards).not.toContain('/v1/d00/*')
    expect(wildcards).not.toContain('/v1/d01/*')
    expect(wildcards).toContain('/v1/d02/*')
    expect(wildcards).toContain('/v1/d16/*')
    // d00 (2 files) and d01 (3 files) stay as single paths.
    expect(paths.filter((p) => !p.endsWith('/*'))).toEqual([
      '/v1/d00/f0.bin',
      '/v1/d00/f1.bin',
      '/v1/d01/f0.bin',
      '/v1/d01/f1.bin',
      '/v1/d01/f2.bin'
    ])
  })

  it('counts wildcards in the extra paths against the limit', () => {
    const paths = planInvalidation({ ...seventeenDirs(), extraPaths: ['/x/*', '/y/*', '/z.html'] })
    const planned = paths.filter((p) => p.startsWith('/v1/d') && p.endsWith('/*'))
    expect(planned).toHaveLength(13)
    expect(planned).not.toContain('/v1/d03/*')
    expect(planned).toContain('/v1/d04/*')
    expect(paths).toEqual(expect.arrayContaining(['/x/*', '/y/*', '/z.html']))
    expect(planInvalidation({ ...seventeenDirs(), extraPaths: [], maxWildcards: 0 })).toHaveLength(
      seventeenDirs().keys.length
    )
  })

  it('appends extra paths once, sorted with the planned ones', () => {
    const paths = planInvalidation({
      keys: ['v1/b.onnx', 'v1/a.onnx'],
      keysUnderPrefix: ['v1/a.onnx', 'v1/b.onnx', 'v1/c.onnx'],
      extraPaths: ['/index.html', '/v1/a.onnx', '/index.html']
    })
    expect(paths).toEqual(['/index.html', '/v1/a.onnx', '/v1/b.onnx'])
  })

  it('drops planned paths an extra wildcard already covers', () => {
    const paths = planInvalidation({
      keys: ['v1/a/x.bin', 'v1/a/y.bin', 'v1/b.bin', 'latest.json'],
      keysUnderPrefix: ['v1/a/x.bin', 'v1/a/y.bin', 'v1/b.bin', 'v1/c.bin'],
      extraPaths: ['/v1/*']
    })
    expect(paths).toEqual(['/latest.json', '/v1/*'])
  })

  it('keeps keys outside the listed prefix as single paths', () => {
    const paths = planInvalidation({
      keys: ['latest/a.bin', 'latest/b.bin', 'v1/a.bin'],
      keysUnderPrefix: ['v1/a.bin', 'v1/b.bin'],
      extraPaths: []
    })
    expect(paths).toEqual(['/latest/a.bin', '/latest/b.bin', '/v1/a.bin'])
  })

  it('splits 7,000 single paths into batches of 3,000, 3,000 and 1,000', () => {
    const keys = Array.from(
      { length: 7000 },
      (_, i) => `v1/shard/${String(i).padStart(4, '0')}.bin`
    )
    const paths = planInvalidation({
      keys,
      keysUnderPrefix: [...keys, 'v1/shard/unchanged.bin'],
      extraPaths: []
    })
    const batches = toBatches(paths)
    expect(batches.map((b) => b.length)).toEqual([3000, 3000, 1000])
    expect(batches.flat()).toEqual(keys.map((k) => `/${k}`))
    expect(() => toBatches(paths, 0)).toThrow(RangeError)
  })
})

describe('callerReference', () => {
  it('is the same for the same batch in any order and changes with the paths or attempt', () => {
    const ref = callerReference('9876', '2', ['/v1/a', '/v1/b'])
    expect(ref).toMatch(/^9876-2-[0-9a-f]{16}$/)
    expect(callerReference('9876', '2', ['/v1/b', '/v1/a'])).toBe(ref)
    expect(callerReference('9876', '2', ['/v1/a', '/v1/c'])).not.toBe(ref)
    expect(callerReference('9876', '3', ['/v1/a', '/v1/b'])).not.toBe(ref)
  })
})

describe('createInvalidations', () => {
  const opts = (logger: Logger, sleep = async (_ms: number) => undefined) => ({
    runId: '42',
    runAttempt: '1',
    logger,
    sleep,
    random: () => 0.5
  })

  it('sends one request per batch and returns the ids in order', async () => {
    cfMock
      .on(CreateInvalidationCommand)
      .resolvesOnce({
        Invalidation: {
          Id: 'I1',
          Status: 'InProgress',
          CreateTime: new Date(),
          InvalidationBatch: undefined
        }
      })
      .resolvesOnce({
        Invalidation: {
          Id: 'I2',
          Status: 'InProgress',
          CreateTime: new Date(),
          InvalidationBatch: undefined
        }
      })
    const batches = [['/v1/a', '/v1/b'], ['/v1/c']]
    const ids = await createInvalidations(cf, DIST, batches, opts(recordingLogger().logger))
    expect(ids).toEqual(['I1', 'I2'])
    const inputs = cfMock.commandCalls(CreateInvalidationCommand).map((c) => c.args[0].input)
    expect(inputs).toEqual([
      {
        DistributionId: DIST,
        InvalidationBatch: {
          CallerReference: callerReference('42', '1', batches[0]),
          Paths: { Quantity: 2, Items: ['/v1/a', '/v1/b'] }
        }
      },
      {
        DistributionId: DIST,
        InvalidationBatch: {
          CallerReference: callerReference('42', '1', batches[1]),
          Paths: { Quantity: 1, Items: ['/v1/c'] }
        }
      }
    ])
  })

  it('retries TooManyInvalidationsInProgress with growing waits and the same CallerReference', async () => {
    cfMock
      .on(CreateInvalidationCommand)
      .rejectsOnce(tooMany())
      .rejectsOnce(tooMany())
      .resolves({
        Invalidation: {
          Id: 'I9',
          Status: 'InProgress',
          CreateTime: new Date(),
          InvalidationBatch: undefined
        }
      })
    const waits: number[] = []
    const { logger, lines } = recordingLogger()
    const ids = await createInvalidations(
      cf,
      DIST,
      [['/v1/a']],
      opts(logger, async (ms) => void waits.push(ms))
    )
    expect(ids).toEqual(['I9'])
    const refs = cfMock
      .commandCalls(CreateInvalidationCommand)
      .map((c) => c.args[0].input.InvalidationBatch?.CallerReference)
    expect(refs).toEqual(Array(3).fill(callerReference('42', '1', ['/v1/a'])))
    // Equal jitter with random 0.5: 3/4 of 5 s, then 3/4 of 10 s.
    expect(waits).toEqual([3750, 7500])
    expect(lines.info.filter((l) => l.includes('TooManyInvalidationsInProgress'))).toEqual([
      expect.stringContaining('retry 1 of 7 in 3.8 s'),
      expect.stringContaining('retry 2 of 7 in 7.5 s')
    ])
  })

  it('gives up after maxAttempts with the quota hint', async () => {
    cfMock.on(CreateInvalidationCommand).rejects(tooMany())
    const error = await createInvalidations(cf, DIST, [['/v1/a']], {
      ...opts(recordingLogger().logger),
      maxAttempts: 3
    }).catch((err: unknown) => err)
    expect(cfMock.commandCalls(CreateInvalidationCommand)).toHaveLength(3)
    expect(error).toBeInstanceOf(AwsError)
    expect((error as AwsError).code).toBe('TooManyInvalidationsInProgress')
    expect((error as AwsError).hint).toContain('3,000 file paths')
  })

  it('fails at once on AccessDenied, naming the distribution and the permission', async () => {
    cfMock.on(CreateInvalidationCommand).rejects(accessDenied())
    const sleep = jest.fn(async (_ms: number) => undefined)
    const error = await createInvalidations(
      cf,
      DIST,
      [['/v1/a', '/v1/b']],
      opts(recordingLogger().logger, sleep)
    ).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(AwsError)
    const awsError = error as AwsError
    expect(awsError.code).toBe('AccessDenied')
    expect(awsError.httpStatus).toBe(403)
    expect(awsError.message).toContain(`for 2 paths on distribution ${DIST}`)
    expect(awsError.hint).toContain('cloudfront:CreateInvalidation')
    expect(cfMock.commandCalls(CreateInvalidationCommand)).toHaveLength(1)
    expect(sleep).not.toHaveBeenCalled()
  })
})

describe('waitForInvalidations', () => {
  const invalidation = (Id: string, Status: string) => ({
    Invalidation: { Id, Status, CreateTime: new Date(), InvalidationBatch: undefined }
  })

  /** A clock that only moves when the code under test sleeps. */
  function fakeClock() {
    let t = 1_000_000
    const sleeps: number[] = []
    return {
      sleeps,
      now: () => t,
      sleep: async (ms: number) => {
        sleeps.push(ms)
        t += ms
      }
    }
  }

  /** Waits for I1 with a ten-minute budget on a fake clock: the outcome, the sleeps and the log. */
  function waitForI1() {
    const clock = fakeClock()
    const { logger, lines } = recordingLogger()
    const outcome = waitForInvalidations(cf, DIST, ['I1'], { timeoutMs: 600_000, logger, ...clock })
    return { outcome, clock, lines }
  }

  it('completes at once for no ids without calling CloudFront', async () => {
    const result = await waitForInvalidations(cf, DIST, [], {
      timeoutMs: 60_000,
      logger: recordingLogger().logger,
      sleep: async () => undefined
    })
    expect(result).toEqual({ status: 'Completed', waitedMs: 0, pending: [] })
    expect(cfMock.calls()).toHaveLength(0)
  })

  it('treats an upper-case COMPLETED as done and grows the poll interval', async () => {
    cfMock
      .on(GetInvalidationCommand)
      .resolvesOnce(invalidation('I1', 'InProgress'))
      .resolvesOnce(invalidation('I1', 'InProgress'))
      .resolvesOnce(invalidation('I1', 'COMPLETED'))
    const { outcome, clock, lines } = waitForI1()
    expect(await outcome).toEqual({ status: 'Completed', waitedMs: 15_000, pending: [] })
    expect(clock.sleeps).toEqual([5000, 10_000])
    expect(cfMock.commandCalls(GetInvalidationCommand)[0].args[0].input).toEqual({
      DistributionId: DIST,
      Id: 'I1'
    })
    expect(lines.info).toEqual([
      'Invalidation I1: InProgress after 0.0 s',
      'Invalidation I1: InProgress after 5.0 s',
      'Invalidation I1: COMPLETED after 15.0 s'
    ])
  })

  it('returns InProgress with the pending ids at the timeout, never sleeping past it', async () => {
    cfMock
      .on(GetInvalidationCommand, { Id: 'DONE' })
      .resolves(invalidation('DONE', 'Completed'))
      .on(GetInvalidationCommand, { Id: 'SLOW' })
      .resolves(invalidation('SLOW', 'InProgress'))
    const clock = fakeClock()
    const result = await waitForInvalidations(cf, DIST, ['DONE', 'SLOW'], {
      timeoutMs: 30_000,
      logger: recordingLogger().logger,
      ...clock
    })
    expect(result).toEqual({ status: 'InProgress', waitedMs: 30_000, pending: ['SLOW'] })
    // 5 s, 10 s, then only the 15 s left (not the 20 s interval); a last poll at the deadline.
    expect(clock.sleeps).toEqual([5000, 10_000, 15_000])
    const polled = cfMock.commandCalls(GetInvalidationCommand).map((c) => c.args[0].input.Id)
    expect(polled).toEqual(['DONE', 'SLOW', 'SLOW', 'SLOW', 'SLOW'])
  })

  it('fails fast on AccessDenied with one call', async () => {
    cfMock.on(GetInvalidationCommand).rejects(accessDenied())
    const { outcome, clock } = waitForI1()
    const error = await outcome.catch((err: unknown) => err)
    expect(error).toBeInstanceOf(AwsError)
    expect((error as AwsError).message).toContain(
      `checking invalidation I1 on distribution ${DIST}`
    )
    expect((error as AwsError).hint).toContain('cloudfront:GetInvalidation')
    expect(cfMock.commandCalls(GetInvalidationCommand)).toHaveLength(1)
    expect(clock.sleeps).toEqual([])
  })

  it('fails fast on NoSuchInvalidation', async () => {
    cfMock
      .on(GetInvalidationCommand)
      .rejects(new NoSuchInvalidation({ message: 'gone', $metadata: { httpStatusCode: 404 } }))
    const error = await waitForI1().outcome.catch((err: unknown) => err)
    expect((error as AwsError).code).toBe('NoSuchInvalidation')
    expect(cfMock.commandCalls(GetInvalidationCommand)).toHaveLength(1)
  })

  it('logs a 503 or a dropped connection and polls again', async () => {
    const unavailable = new CloudFrontServiceException({
      name: 'ServiceUnavailable',
      $fault: 'server',
      message: 'Service Unavailable',
      $metadata: { httpStatusCode: 503 }
    })
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
    cfMock
      .on(GetInvalidationCommand)
      .rejectsOnce(unavailable)
      .rejectsOnce(reset)
      .resolves(invalidation('I1', 'Completed'))
    const { outcome, lines } = waitForI1()
    expect(await outcome).toEqual({ status: 'Completed', waitedMs: 15_000, pending: [] })
    expect(cfMock.commandCalls(GetInvalidationCommand)).toHaveLength(3)
    expect(lines.warning).toEqual([
      'Could not check invalidation I1 (ServiceUnavailable, HTTP 503: Service Unavailable); polling again',
      'Could not check invalidation I1 (ECONNRESET: socket hang up); polling again'
    ])
  })
})
