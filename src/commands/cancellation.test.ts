import { jest } from '@jest/globals'
import { EventEmitter } from 'node:events'
import fs from 'node:fs'
import {
  CreateInvalidationCommand,
  GetDistributionCommand,
  GetInvalidationCommand
} from '@aws-sdk/client-cloudfront'
import {
  AbortMultipartUploadCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput
} from '@aws-sdk/client-s3'
import { cancelOnSignals, type Cancellation } from './cancellation.js'
import { deploy } from './deploy/deploy.js'
import { DeployError } from '../common/errors.js'
import { parseInputs } from '../inputs/parse.js'
import type { MultipartUpload } from '../aws/multipart-tracker.js'
import { silentLogger } from '../../__fixtures__/logger.js'
import { dataPuts, makeWorkspace, mockAwsClients } from '../../__fixtures__/aws-mocks.js'
import { deployedDistribution, invalidation } from '../../__fixtures__/cloudfront.js'

const {
  s3Mock,
  cfMock,
  clients: { s3, cloudfront }
} = mockAwsClients()

const upload = (UploadId: string, Key = 'v1/a.bin'): MultipartUpload => ({
  Bucket: 'models',
  Key,
  UploadId
})

let emitter: EventEmitter
let cancellation: Cancellation | undefined
let exit: jest.Mock<(message: string) => void>
let logger: ReturnType<typeof silentLogger>
let open: MultipartUpload[]

function listen(forcedAbortTimeoutMs?: number): Cancellation {
  cancellation = cancelOnSignals({
    logger,
    s3,
    uploads: { open: () => open },
    exit,
    emitter,
    forcedAbortTimeoutMs
  })
  return cancellation
}

/** Resolves once exit() has been called. */
const exited = () =>
  new Promise<string>((resolve) => exit.mockImplementation((message) => resolve(message)))

beforeEach(() => {
  s3Mock.on(AbortMultipartUploadCommand).resolves({})
  emitter = new EventEmitter()
  exit = jest.fn<(message: string) => void>()
  logger = silentLogger()
  open = []
})

afterEach(() => cancellation?.dispose())

describe('cancelOnSignals', () => {
  it('on the first signal, cancels in order: aborts the signal, calls nothing, exits nothing', () => {
    const { signal } = listen()
    open = [upload('u1')]
    emitter.emit('SIGINT', 'SIGINT')

    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBeInstanceOf(DeployError)
    expect((signal.reason as Error).message).toBe('The workflow run was cancelled (SIGINT).')
    expect(logger.warnings).toEqual([
      'Received SIGINT: the workflow run was cancelled. Stopping the deploy: no new file starts, ' +
        'transfers in flight are cancelled and their multipart uploads aborted.'
    ])
    expect(s3Mock.calls()).toHaveLength(0)
    expect(exit).not.toHaveBeenCalled()
  })

  it('on the second signal, aborts every open upload at once and exits failed', async () => {
    listen()
    open = [upload('u1'), upload('u2', 'v1/b.bin'), upload('u3', 'v1/c.bin')]
    s3Mock
      .on(AbortMultipartUploadCommand, { UploadId: 'u3' })
      .rejects(Object.assign(new Error('Access Denied'), { name: 'AccessDenied' }))
    const message = exited()

    emitter.emit('SIGINT', 'SIGINT')
    emitter.emit('SIGTERM', 'SIGTERM')
    emitter.emit('SIGTERM', 'SIGTERM') // ignored: already stopping

    expect(await message).toBe(
      'The workflow run was cancelled (SIGINT, then SIGTERM) and the deploy stopped at once: ' +
        '2 of 3 open multipart upload(s) aborted; the post step retries the others.'
    )
    expect(exit).toHaveBeenCalledTimes(1)
    expect(
      s3Mock.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input.UploadId)
    ).toEqual(['u1', 'u2', 'u3'])
    expect(logger.warnings[1]).toBe(
      'Received SIGTERM after SIGINT: aborting the 3 multipart upload(s) still open and exiting now.'
    )
    expect(logger.warnings[2]).toMatch(
      /^Failed aborting multipart upload u3 of s3:\/\/models\/v1\/c\.bin: AWS said AccessDenied.*lifecycle rule/
    )
  })

  it('exits once the forced aborts time out', async () => {
    listen(100)
    open = [upload('u1')]
    s3Mock.on(AbortMultipartUploadCommand).callsFake(() => new Promise(() => undefined))
    const message = exited()
    emitter.emit('SIGTERM', 'SIGTERM')
    emitter.emit('SIGINT', 'SIGINT')
    expect(await message).toMatch(/cancelled \(SIGTERM, then SIGINT\).*0 of 1 open multipart/)
    expect(logger.warnings[2]).toMatch(/u1 .*no answer in time/)
  })

  it('does not exit when the run ended on its own while the forced aborts were sent', async () => {
    const run = listen()
    open = [upload('u1')]
    let answer!: () => void
    s3Mock
      .on(AbortMultipartUploadCommand)
      .callsFake(() => new Promise((resolve) => (answer = () => resolve({}))))
    emitter.emit('SIGINT', 'SIGINT')
    emitter.emit('SIGTERM', 'SIGTERM')
    await new Promise((resolve) => setImmediate(resolve))
    run.dispose()
    answer()
    await new Promise((resolve) => setImmediate(resolve))
    expect(s3Mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1)
    expect(exit).not.toHaveBeenCalled()
  })

  it('ends its sleeps when cancelled, rejecting with the reason', async () => {
    const { sleep, signal } = listen()
    await expect(sleep(1)).resolves.toBeUndefined()
    const started = Date.now()
    const long = sleep(60_000)
    emitter.emit('SIGINT', 'SIGINT')
    await expect(long).rejects.toBe(signal.reason)
    expect(Date.now() - started).toBeLessThan(1000)
    await expect(sleep(1)).rejects.toBe(signal.reason)
  })

  it('stops listening when disposed', () => {
    listen().dispose()
    expect(emitter.listenerCount('SIGINT') + emitter.listenerCount('SIGTERM')).toBe(0)
  })
})

describe('deploy, cancelled', () => {
  let workspace: string

  beforeEach(() => {
    workspace = makeWorkspace('mcd-cancel-', { 'models/a.onnx': 'A', 'models/b.json': '{"b":2}' })
    s3Mock.on(ListObjectsV2Command).resolves({})
    s3Mock.on(PutObjectCommand).resolves({})
    cfMock.on(GetDistributionCommand).resolves(deployedDistribution)
    cfMock.on(CreateInvalidationCommand).resolves(invalidation('InProgress'))
  })
  afterEach(() => fs.rmSync(workspace, { recursive: true, force: true }))

  const run = () => {
    const { signal, sleep } = cancellation!
    const inputs = parseInputs(
      (name) =>
        ({
          artifacts: 'models/**',
          bucket: 'models',
          'version-prefix': 'v1',
          'distribution-id': 'E2ABCDEFGHIJKL',
          invalidate: 'all',
          preflight: 'false',
          verify: 'false'
        })[name] ?? '',
      { GITHUB_WORKSPACE: workspace }
    )
    return deploy(inputs, { s3, cloudfront }, { logger, sleep, env: {}, signal })
  }
  const putKeys = () => dataPuts(s3Mock).map((p) => p.Key)

  it('never writes the manifest when cancelled as the last file lands', async () => {
    listen()
    s3Mock.on(PutObjectCommand).callsFake(async (input: PutObjectCommandInput) => {
      if (input.Key === 'v1/b.json') emitter.emit('SIGINT', 'SIGINT')
      return {}
    })
    await expect(run()).rejects.toThrow(/cancelled/)
    expect(putKeys()).not.toContain('v1/manifest.json')
    expect(cfMock.commandCalls(CreateInvalidationCommand)).toHaveLength(0)
  })

  it('creates no invalidation when cancelled while the manifest is written', async () => {
    listen()
    s3Mock.on(PutObjectCommand, { Key: 'v1/manifest.json' }).callsFake(async () => {
      emitter.emit('SIGINT', 'SIGINT')
      return {}
    })
    await expect(run()).rejects.toThrow(
      'Cancelled after publishing the files and the manifest, before invalidating 2 path(s): ' +
        'edge caches may serve their old bytes until they expire.'
    )
    expect(putKeys().sort()).toEqual(['v1/a.onnx', 'v1/b.json', 'v1/manifest.json'])
    expect(cfMock.commandCalls(CreateInvalidationCommand)).toHaveLength(0)
  })

  it('stops waiting for the invalidation at once', async () => {
    listen()
    cfMock.on(GetInvalidationCommand).callsFake(async () => {
      setImmediate(() => emitter.emit('SIGTERM', 'SIGTERM'))
      return { Invalidation: { Id: 'I1', Status: 'InProgress', CreateTime: new Date() } }
    })
    const started = Date.now()
    await expect(run()).rejects.toThrow('The workflow run was cancelled (SIGTERM).')
    // The first poll waits 5 s; the cancel ends it.
    expect(Date.now() - started).toBeLessThan(4000)
    expect(cfMock.commandCalls(GetInvalidationCommand)).toHaveLength(1)
  })
})
