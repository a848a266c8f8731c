import {
  buildManifest,
  compareCodeUnits,
  gitContextFromEnv,
  manifestKey,
  serializeManifest
} from './manifest.js'
import type { Manifest, ManifestFile, PublishedFile } from '../common/types.js'

function published(relativePath: string, overrides: Partial<PublishedFile> = {}): PublishedFile {
  return {
    absolutePath: `/work/out/${relativePath}`,
    relativePath,
    size: 100,
    key: `resnet50/v3/${relativePath}`,
    sha256: 'a'.repeat(64),
    contentType: 'application/octet-stream',
    action: 'upload',
    existed: false,
    url: `https://models.example.com/resnet50/v3/${relativePath}`,
    ...overrides
  }
}

const createdAt = new Date(Date.UTC(2026, 10, 20, 8, 30, 0))

describe('buildManifest', () => {
  it('lists the files sorted by path with their key, url, size, sha256, type and metadata', () => {
    const manifest = buildManifest({
      versionPrefix: 'resnet50/v3',
      bucket: 'acme-models',
      files: [
        published('weights/model.safetensors', { size: 2_000_000_000, sha256: 'b'.repeat(64) }),
        published('config.json', { size: 512, contentType: 'application/json', action: 'skip' })
      ],
      metadata: { 'model-version': '2.0.1', framework: 'onnx' },
      distribution: { id: 'E1A2B3C4D5E6F7', domain: 'd111.cloudfront.net' },
      git: { sha: 'abc123', runId: '42' },
      createdAt
    })

    expect(manifest).toEqual({
      schemaVersion: 1,
      versionPrefix: 'resnet50/v3',
      bucket: 'acme-models',
      createdAt: '2026-11-20T08:30:00.000Z',
      git: { sha: 'abc123', runId: '42' },
      distribution: { id: 'E1A2B3C4D5E6F7', domain: 'd111.cloudfront.net' },
      files: [
        {
          path: 'config.json',
          key: 'resnet50/v3/config.json',
          url: 'https://models.example.com/resnet50/v3/config.json',
          size: 512,
          sha256: 'a'.repeat(64),
          contentType: 'application/json',
          metadata: { framework: 'onnx', 'model-version': '2.0.1' }
        },
        {
          path: 'weights/model.safetensors',
          key: 'resnet50/v3/weights/model.safetensors',
          url: 'https://models.example.com/resnet50/v3/weights/model.safetensors',
          size: 2_000_000_000,
          sha256: 'b'.repeat(64),
          contentType: 'application/octet-stream',
          metadata: { framework: 'onnx', 'model-version': '2.0.1' }
        }
      ]
    })
  })

  it('records a null distribution and shares no objects with its input', () => {
    const metadata = { team: 'vision' }
    const git = { sha: 'abc123' }
    const manifest = buildManifest({
      versionPrefix: 'v1',
      bucket: 'b',
      files: [published('a.onnx')],
      metadata,
      distribution: null,
      git,
      createdAt
    })
    metadata.team = 'changed'
    git.sha = 'changed'

    expect(manifest.distribution).toBeNull()
    expect(manifest.files[0].metadata).toEqual({ team: 'vision' })
    expect(manifest.git).toEqual({ sha: 'abc123' })
  })

  it('sorts paths by code unit, not by locale (upper case before lower case)', () => {
    const manifest = buildManifest({
      versionPrefix: 'v1',
      bucket: 'b',
      files: [published('b.bin'), published('a.bin'), published('B.bin'), published('ä.bin')],
      metadata: {},
      distribution: null,
      git: {},
      createdAt
    })
    expect(manifest.files.map((f) => f.path)).toEqual(['B.bin', 'a.bin', 'b.bin', 'ä.bin'])
    expect(compareCodeUnits('B', 'a')).toBe(-1)
    expect(compareCodeUnits('a', 'a')).toBe(0)
  })
})

describe('gitContextFromEnv', () => {
  it('reads the five GitHub variables', () => {
    expect(
      gitContextFromEnv({
        GITHUB_SHA: 'f00dbabe',
        GITHUB_REF: 'refs/tags/v3.0.0',
        GITHUB_REPOSITORY: 'acme/models',
        GITHUB_RUN_ID: '123456',
        GITHUB_RUN_ATTEMPT: '2',
        GITHUB_TOKEN: 'not-copied'
      })
    ).toEqual({
      sha: 'f00dbabe',
      ref: 'refs/tags/v3.0.0',
      repository: 'acme/models',
      runId: '123456',
      runAttempt: '2'
    })
  })

  it('omits absent and empty variables', () => {
    const git = gitContextFromEnv({ GITHUB_SHA: 'f00dbabe', GITHUB_REF: '' })
    expect(git).toEqual({ sha: 'f00dbabe' })
    expect(Object.keys(git)).toEqual(['sha'])
    expect(gitContextFromEnv({})).toEqual({})
  })
})

describe('manifestKey', () => {
  it('puts manifest.json under the version prefix', () => {
    expect(manifestKey('resnet50/v3')).toBe('resnet50/v3/manifest.json')
    expect(manifestKey('v1')).toBe('v1/manifest.json')
  })
})

describe('serializeManifest', () => {
  const manifest = buildManifest({
    versionPrefix: 'v1',
    bucket: 'acme-models',
    files: [
      published('model.onnx', { key: 'v1/model.onnx', url: 'https://cdn.example/v1/model.onnx' })
    ],
    metadata: { b: '2', a: '1' },
    distribution: null,
    git: { runId: '7', sha: 'abc' },
    createdAt
  })

  it('writes pretty JSON in schema order with a trailing newline', () => {
    expect(serializeManifest(manifest)).toBe(
      [
        '{',
        '  "schemaVersion": 1,',
        '  "versionPrefix": "v1",',
        '  "bucket": "acme-models",',
        '  "createdAt": "2026-11-20T08:30:00.000Z",',
        '  "git": {',
        '    "sha": "abc",',
        '    "runId": "7"',
        '  },',
        '  "distribution": null,',
        '  "files": [',
        '    {',
        '      "path": "model.onnx",',
        '      "key": "v1/model.onnx",',
        '      "url": "https://cdn.example/v1/model.onnx",',
        '      "size": 100,',
        `      "sha256": "${'a'.repeat(64)}",`,
        '      "contentType": "application/octet-stream",',
        '      "metadata": {',
        '        "a": "1",',
        '        "b": "2"',
        '      }',
        '    }',
        '  ]',
        '}',
        ''
      ].join('\n')
    )
  })

  it('gives the same bytes whatever order the fields and files were built in', () => {
    const files: ManifestFile[] = [
      {
        metadata: { y: '2', x: '1' },
        contentType: 't',
        sha256: 's2',
        size: 2,
        url: 'u2',
        key: 'k2',
        path: 'z'
      },
      { metadata: {}, contentType: 't', sha256: 's1', size: 1, url: 'u1', key: 'k1', path: 'a' }
    ]
    const shuffled: Manifest = {
      files,
      distribution: { domain: 'd.cloudfront.net', id: 'E1' },
      git: { runAttempt: '1', sha: 'abc' },
      createdAt: '2026-11-20T08:30:00.000Z',
      bucket: 'b',
      versionPrefix: 'v1',
      schemaVersion: 1
    }
    const ordered: Manifest = {
      schemaVersion: 1,
      versionPrefix: 'v1',
      bucket: 'b',
      createdAt: '2026-11-20T08:30:00.000Z',
      git: { sha: 'abc', runAttempt: '1' },
      distribution: { id: 'E1', domain: 'd.cloudfront.net' },
      files: [...files].reverse()
    }
    expect(serializeManifest(shuffled)).toBe(serializeManifest(ordered))
    expect(
      JSON.parse(serializeManifest(shuffled)).files.map((f: { path: string }) => f.path)
    ).toEqual(['a', 'z'])
  })

  it('round-trips through JSON.parse', () => {
    expect(JSON.parse(serializeManifest(manifest))).toEqual(manifest)
  })
})
