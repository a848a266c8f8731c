/**
 * A small CloudFormation evaluator for the template's unit tests: it resolves the intrinsic
 * functions the template uses (Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Equals, Fn::Not, Fn::And,
 * Condition, Fn::Join, Fn::Select, Fn::Split) for given parameters, as CloudFormation would,
 * and fails on a reference to anything the template does not define. A created resource's Ref
 * and attributes are stand-ins (`<Distribution>`, `<Bucket.RegionalDomainName>`), except the
 * bucket's, which are known from its name.
 */
import type { CloudFormationTemplate } from '../src/setup/template.js'

export const STACK_ACCOUNT = '123456789012'
export const STACK_UUID = '51af3dc0-da77-11e4-872e-1234567db123'
const STACK_ID = `arn:aws:cloudformation:us-east-1:${STACK_ACCOUNT}:stack/models/${STACK_UUID}`
const NO_VALUE = Symbol('AWS::NoValue')

export interface Stack {
  /** The resources whose condition holds, by logical id, with their properties resolved. */
  resources: Record<string, { Type: string; Properties: Record<string, unknown> }>
  outputs: Record<string, unknown>
}

/** What CloudFormation would create from `template` with `parameters` (others at their default). */
export function resolveTemplate(
  template: CloudFormationTemplate,
  parameters: Record<string, string> = {}
): Stack {
  const values: Record<string, string> = {}
  for (const [name, spec] of Object.entries(template.Parameters)) {
    const value = parameters[name] ?? spec.Default
    if (value === undefined) throw new Error(`Parameter ${name} has no value`)
    values[name] = String(value)
  }
  const evaluator = new Evaluator(template, values)
  const holds = (entry: Record<string, unknown>) =>
    typeof entry.Condition !== 'string' || evaluator.condition(entry.Condition)
  const resources = Object.entries(template.Resources)
    .filter(([, resource]) => holds(resource))
    .map(([id, resource]) => [id, evaluator.resolve(resource)])
  const outputs = Object.entries(template.Outputs)
    .filter(([, output]) => holds(output))
    .map(([id, output]) => [id, evaluator.resolve(output.Value)])
  return { resources: Object.fromEntries(resources), outputs: Object.fromEntries(outputs) }
}

class Evaluator {
  constructor(
    private readonly template: CloudFormationTemplate,
    private readonly parameters: Record<string, string>
  ) {}

  condition(name: string): boolean {
    const condition = this.template.Conditions[name]
    if (!condition) throw new Error(`No condition ${name}`)
    return this.resolve(condition) === true
  }

  resolve(value: unknown): unknown {
    if (Array.isArray(value)) {
      return value.map((item) => this.resolve(item)).filter((item) => item !== NO_VALUE)
    }
    if (typeof value !== 'object' || value === null) return value
    const entries = Object.entries(value)
    const [key, argument] = entries[0] ?? []
    if (entries.length === 1 && (key === 'Ref' || key === 'Condition' || key.startsWith('Fn::'))) {
      return this.intrinsic(key, argument)
    }
    const resolved = entries.map(([k, v]) => [k, this.resolve(v)])
    return Object.fromEntries(resolved.filter(([, v]) => v !== NO_VALUE))
  }

  private intrinsic(name: string, argument: unknown): unknown {
    const args = argument as unknown[]
    switch (name) {
      case 'Ref':
        return this.ref(argument as string)
      case 'Condition':
        return this.condition(argument as string)
      case 'Fn::Sub':
        return (argument as string).replace(/\$\{([^}]+)\}/g, (_, ref: string) => {
          const [id, attribute] = ref.split('.')
          return String(attribute ? this.attribute(id, attribute) : this.ref(id))
        })
      case 'Fn::GetAtt':
        return this.attribute(args[0] as string, args[1] as string)
      case 'Fn::If':
        return this.resolve(this.condition(args[0] as string) ? args[1] : args[2])
      case 'Fn::Equals':
        return this.resolve(args[0]) === this.resolve(args[1])
      case 'Fn::Not':
        return !this.resolve(args[0])
      case 'Fn::And':
        return args.every((arg) => this.resolve(arg) === true)
      case 'Fn::Join':
        return (this.resolve(args[1]) as string[]).join(args[0] as string)
      case 'Fn::Select':
        return (this.resolve(args[1]) as unknown[])[args[0] as number]
      case 'Fn::Split':
        return (this.resolve(args[1]) as string).split(args[0] as string)
    }
    throw new Error(`Unsupported intrinsic function ${name}`)
  }

  private ref(name: string): unknown {
    const pseudo: Record<string, unknown> = {
      'AWS::Partition': 'aws',
      'AWS::AccountId': STACK_ACCOUNT,
      'AWS::StackId': STACK_ID,
      'AWS::NoValue': NO_VALUE
    }
    if (name in pseudo) return pseudo[name]
    if (name in this.parameters) return this.parameters[name]
    if (name === 'Bucket') return this.parameters.BucketName
    if (name in this.template.Resources) return `<${name}>`
    throw new Error(`Ref to unknown ${name}`)
  }

  private attribute(id: string, attribute: string): string {
    if (!(id in this.template.Resources)) throw new Error(`GetAtt of unknown resource ${id}`)
    if (id === 'Bucket' && attribute === 'Arn') return `arn:aws:s3:::${this.parameters.BucketName}`
    return `<${id}.${attribute}>`
  }
}
