import { DeployError } from '../common/errors.js'
import { parsePolicyDocument, samePolicy } from './policy-document.js'

const statement = { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*' }

describe('parsePolicyDocument', () => {
  it('reads IAM’s URL-encoded documents and plain JSON alike', () => {
    const doc = { Version: '2012-10-17', Statement: [statement] }
    expect(parsePolicyDocument(encodeURIComponent(JSON.stringify(doc)), 'x')).toEqual(doc)
    expect(parsePolicyDocument(JSON.stringify(doc, null, 2), 'x')).toEqual(doc)
  })

  it('makes a single statement a list of one', () => {
    const text = JSON.stringify({ Version: '2012-10-17', Statement: statement })
    expect(parsePolicyDocument(text, 'x').Statement).toEqual([statement])
  })

  it('says which document is not JSON', () => {
    const read = () => parsePolicyDocument('%7Bnope', 'the trust policy of IAM role "r"')
    expect(read).toThrow(DeployError)
    expect(read).toThrow(
      'Could not read the trust policy of IAM role "r": IAM returned a policy document that is not JSON.'
    )
  })
})

describe('samePolicy', () => {
  it('ignores key order, not list order or values', () => {
    const reordered = { Resource: 'arn:aws:s3:::b/*', Action: 's3:GetObject', Effect: 'Allow' }
    expect(samePolicy(statement, reordered)).toBe(true)
    expect(samePolicy({ Action: ['a', 'b'] }, { Action: ['b', 'a'] })).toBe(false)
    expect(samePolicy(statement, { ...statement, Action: ['s3:GetObject'] })).toBe(false)
  })
})
