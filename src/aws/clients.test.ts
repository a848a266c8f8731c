import type { S3Client } from '@aws-sdk/client-s3'
import { createClients } from './clients.js'
import { silentLogger } from '../../__fixtures__/logger.js'

/** The agents an S3 client's handler was given (resolved on first use, so awaited here). */
async function agentsOf(client: S3Client): Promise<unknown> {
  const handler = client.config.requestHandler as unknown as {
    configProvider: Promise<{ httpsAgent: unknown; httpAgent: unknown }>
  }
  return (await handler.configProvider).httpsAgent
}

const retryLogged = (client: S3Client) =>
  client.middlewareStack.identify().some((name) => name.startsWith('logRetriesMiddleware'))

describe('createClients: S3 clients per region', () => {
  it('gives the deploy client for its own region and one client per other region, made once', () => {
    const clients = createClients({ region: 'us-east-1', concurrency: 4 }, {})
    expect(clients.s3In?.('us-east-1')).toBe(clients.s3)
    const eu = clients.s3In?.('eu-west-1')
    expect(eu).toBeDefined()
    expect(eu).not.toBe(clients.s3)
    expect(clients.s3In?.('eu-west-1')).toBe(eu)
  })

  it('makes a regional client like the deploy one: endpoint, path style, checksums, retries, connections', async () => {
    const clients = createClients(
      { region: 'us-east-1', concurrency: 4, endpointUrl: 'http://127.0.0.1:5000' },
      {},
      { logger: silentLogger() }
    )
    const eu = clients.s3In!('eu-west-1')
    expect(await eu.config.region()).toBe('eu-west-1')
    expect(await clients.s3.config.region()).toBe('us-east-1')
    expect(await eu.config.endpoint?.()).toEqual(await clients.s3.config.endpoint?.())
    expect(eu.config.forcePathStyle).toBe(true)
    expect(await eu.config.requestChecksumCalculation()).toBe('WHEN_REQUIRED')
    expect(await eu.config.responseChecksumValidation()).toBe('WHEN_REQUIRED')
    expect(await eu.config.maxAttempts()).toBe(await clients.s3.config.maxAttempts())
    expect(retryLogged(eu)).toBe(true)
    // Shared agents: destroying the deploy client (as main does) closes the regional ones' sockets.
    expect(await agentsOf(eu)).toBe(await agentsOf(clients.s3))
  })

  it('keeps AWS defaults for a regional client without a custom endpoint or logger', async () => {
    const clients = createClients({ region: 'us-east-1', concurrency: 4 }, {})
    const ap = clients.s3In!('ap-southeast-2')
    expect(await ap.config.region()).toBe('ap-southeast-2')
    expect(ap.config.forcePathStyle).toBe(false)
    expect(await ap.config.requestChecksumCalculation()).toBe('WHEN_SUPPORTED')
    expect(retryLogged(ap)).toBe(false)
  })
})
